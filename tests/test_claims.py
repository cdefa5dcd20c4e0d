"""The claims ledger (modbal_lib.claims): its verdict words, its checks on given runs, the files it writes."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import numpy as np

from helpers import toy_features
from modbal_lib import claims, stats, theory
from modbal_lib.cggm_evidence import Part
from modbal_lib.cli import main
from modbal_lib.evaluate import ImpairmentTable
from modbal_lib.experiments import Run
from modbal_lib.train import train


# --- the ledger -----------------------------------------------------------------------------------------

class FakeResult:
    def __init__(self, history=None, step=0.01):
        self.history = history or {}
        self.median_step_seconds = step


def fake_runs(gaps, full=80.0, step=0.01, history=None):
    """Runs whose missing DeltaGap is each value of ``gaps`` (one per seed)."""
    return [Run("m", seed, FakeResult(history, step),
                ImpairmentTable("accuracy", full + seed, {"a": 50.0 + gap, "b": 50.0}, {"a": 60.0, "b": 60.0}))
            for seed, gap in enumerate(gaps)]


class FakeLedger(claims.Ledger):
    """A ledger whose runs are given, keyed by (dataset, method, options)."""

    def __init__(self, runs):
        super().__init__(fast=True, seeds=(0, 1, 2))
        self.cache = runs


def key(method, **options):
    return ("emoji", method, tuple(sorted(options.items())))


def test_directional_turns_the_kits_rule_into_ledger_verdicts():
    lower = stats.paired_difference([1.0, 2.0, 3.0], [5.0, 6.1, 7.3])
    assert claims.directional(lower, -1, "x").verdict == claims.HOLDS
    assert claims.directional(lower, +1, "x") == claims.Finding(f"x: {lower.text()}", claims.DOES_NOT_HOLD,
                                                                "the opposite direction")
    noise = stats.paired_difference([1.0, 2.0, 3.0], [1.5, 1.0, 3.2])
    assert claims.directional(noise, -1, "x").detail == "within seed noise"
    few = claims.directional(stats.paired_difference([1.0, 2.0], [3.0, 4.0]), -1, "x")
    assert few.verdict == claims.NOT_TESTABLE and "too few seeds (n=2" in few.detail


def test_combined_says_which_part_holds():
    holds, fails = claims.Finding("a", claims.HOLDS), claims.Finding("b", claims.DOES_NOT_HOLD)
    assert claims.combined({"p": holds, "q": holds}).verdict == claims.HOLDS
    assert claims.combined({"p": fails, "q": fails}).verdict == claims.DOES_NOT_HOLD
    partly = claims.combined({"p": holds, "q": fails})
    assert partly == claims.Finding("a; b", claims.PARTLY, "holds for p only")


def test_a_check_compares_the_ledgers_runs_seed_by_seed():
    ledger = FakeLedger({key("balgrad"): fake_runs([10.0, 11.0, 12.5]), key("joint"): fake_runs([20.0, 22.0, 23.0])})
    finding = claims.compared("emoji", claims.MISSING_GAP, -1, "gap", ("balgrad", {}), ("joint", {}))(ledger)
    assert finding.verdict == claims.HOLDS
    assert finding.measured == "gap on emoji: " + stats.paired_difference([10, 11, 12.5], [20, 22, 23]).text()


def test_step_cost_check_holds_when_not_dearer_than_the_papers_ratio():
    cheap = FakeLedger({key("goal"): fake_runs([1, 1, 1], step=0.0110), key("joint"): fake_runs([1, 1, 1], step=0.01)})
    cheap.cache[key("goal")][1].result.median_step_seconds = 0.0112
    assert claims.step_cost_check("emoji", "goal", "joint", 1.11)(cheap).verdict == claims.HOLDS
    dear = FakeLedger({key("goal"): fake_runs([1, 1, 1], step=0.02), key("joint"): fake_runs([1, 1, 1], step=0.01)})
    dear.cache[key("goal")][1].result.median_step_seconds = 0.021
    finding = claims.step_cost_check("emoji", "goal", "joint", 1.11)(dear)
    assert finding.verdict == claims.DOES_NOT_HOLD and "2.03 ± 0.06 (n=3)" in finding.measured


def test_unimodal_loss_gap_reads_the_last_fifth_of_training():
    history = {"loss_uni_a": [5.0] * 8 + [1.0, 1.0], "loss_uni_b": [0.0] * 8 + [0.5, 0.25]}
    assert claims.unimodal_loss_gap(fake_runs([0], history=history)[0]) == pytest.approx(0.625)
    with pytest.raises(ValueError, match="two modalities"):
        claims.unimodal_loss_gap(fake_runs([0], history={"loss_uni_a": [1.0]})[0])


def test_near_holds_inside_the_tolerance_and_not_outside():
    inside = claims.near([2.01, 1.99, 2.02], 2.0, 0.2, "slope")
    assert inside.verdict == claims.HOLDS and inside.detail == "within ±0.2 of 2"
    assert inside.measured.startswith("slope: 2.007 [") and "(n=3; theory 2)" in inside.measured
    outside = claims.near([1.01, 0.99, 1.0], 2.0, 0.2, "slope")
    assert outside.verdict == claims.DOES_NOT_HOLD and outside.detail == "outside ±0.2 of 2"
    wide = claims.near([1.5, 2.5, 2.0], 2.0, 0.2, "slope")      # mean on target, interval too wide to say
    assert wide.verdict == claims.DOES_NOT_HOLD and "reaches beyond" in wide.detail
    exact = claims.near([0.0, 0.0, 0.0], 0.0, 0.0, "share")
    assert exact.verdict == claims.HOLDS
    assert claims.near([2.0, 2.0], 2.0, 0.2, "slope").verdict == claims.NOT_TESTABLE


def test_directional_writes_the_digits_it_is_given():
    difference = stats.paired_difference([1.0, 2.0, 3.0], [1.25, 2.25, 3.5])
    assert claims.directional(difference, -1, "x", digits=3).measured == f"x: {difference.text(3)}"


# --- the motivating claims: first-order checks and Fig. 2, on small data ---------------------------------

MOTIVATING = ("balgrad-prop1", "balgrad-prop1-literal", "balgrad-prop2", "balgrad-fig2-emoji", "balgrad-fig2-seesaw",
              "goal-a3", "goal-a9", "goal-a14")


@pytest.fixture(scope="module")
def toy_trained():
    """Toy models per seed (0, 1, 2, 4) in place of the ledger's emoji ones: seed 2 has no batch where the task
    and KL gradients conflict, the others have one."""
    features = toy_features(n=64)
    return {method: theory.briefly_trained(features, [0, 1, 2, 4], method, epochs=1, batch_size=32)
            for method in ("joint_unimodal_heads", "goal")}


def toy_ledger(toy_trained, seeds):
    ledger = claims.Ledger(fast=True, seeds=seeds)
    for method, trained in toy_trained.items():
        ledger.cache[("briefly trained", claims.THEORY_DATASET, method, True)] = [t for t in trained if t.seed in seeds]
    return ledger


def claim(key):
    return next(c for c in claims.CLAIMS if c.key == key)


def test_first_order_claims_on_toy_models(toy_trained):
    ledger = toy_ledger(toy_trained, (0, 1, 4))
    found = {key: claim(key).run(ledger) for key in ("balgrad-prop1", "balgrad-prop1-literal", "balgrad-prop2",
                                                     "goal-a3", "goal-a9", "goal-a14")}
    assert {key: f.verdict for key, f in found.items()} == {
        "balgrad-prop1": claims.HOLDS, "balgrad-prop1-literal": claims.DOES_NOT_HOLD, "balgrad-prop2": claims.PARTLY,
        "goal-a3": claims.HOLDS, "goal-a9": claims.HOLDS, "goal-a14": claims.HOLDS}
    assert found["balgrad-prop1"].measured.startswith("residual slope, corrected reading: 2.00")
    assert found["balgrad-prop1-literal"].measured.startswith("residual slope, literal reading: 1.00")
    assert "a first-order error" in found["balgrad-prop1-literal"].detail
    # every toy seed's conflict slows its step, but by amounts too unequal (2 G^τ·G^kl from -0.0003 to -0.012) for
    # an interval from 3 seeds to exclude 0
    assert "on 3 of 3 seeds with a conflict" in found["balgrad-prop2"].measured
    assert found["balgrad-prop2"].detail == "holds for Eq. 5 to first order only"
    assert found["goal-a3"].measured.startswith("slope of u − Ṽ near uniform: 2.99")
    assert "share conflicting after GO: 0.000 [0.000, 0.000] (n=3; theory 0)" in found["goal-a9"].measured
    assert "relative-error slope (easy): 1.000" in found["goal-a14"].measured
    # seed 2 has no conflicting batch: the conflict part rests on 2 seeds, too few for the kit's rule
    partial = claim("balgrad-prop2").run(toy_ledger(toy_trained, (0, 1, 2)))
    assert partial.verdict == claims.NOT_TESTABLE and "on 2 of 3 seeds with a conflict" in partial.measured
    fast = claim("balgrad-prop1").run(toy_ledger(toy_trained, (0, 1)))
    assert fast.verdict == claims.NOT_TESTABLE and "too few seeds (n=2" in fast.detail


def test_proposition2_rule_conflicting_seeds_only(monkeypatch):
    """The conflict part pairs −ΔL/λ with ‖G^τ‖² + ‖G^kl‖² over the seeds that have a conflict only."""
    def rows(*inner):
        return [theory.Proposition2Seed(seed, 0, i, 2.0 + 0.01 * seed, 10.0, 10.0 + i + 0.001 * seed)
                for seed, i in enumerate(inner)]

    ledger = FakeLedger({("briefly trained", claims.THEORY_DATASET, "joint_unimodal_heads", True): []})
    monkeypatch.setattr(theory, "proposition2_over_seeds", lambda trained: rows(-0.3, -0.32, -0.29, 0.1))
    finding = claims.proposition2_check(ledger)
    assert finding.verdict == claims.HOLDS and "on 3 of 4 seeds with a conflict: -0.30" in finding.measured
    monkeypatch.setattr(theory, "proposition2_over_seeds", lambda trained: rows(0.3, 0.2, 0.1))
    finding = claims.proposition2_check(ledger)
    assert finding.verdict == claims.NOT_TESTABLE and "no seed had a conflicting batch" in finding.detail


def heads_runs(firsts, costliest):
    """joint_unimodal_heads runs on the toy modalities, one per seed: ``firsts[s]``'s loss falls first,
    ``costliest[s]``'s absence costs most."""
    iterations = np.arange(40)
    runs = []
    for seed, (first, dear) in enumerate(zip(firsts, costliest)):
        result = train(toy_features(n=64, seed=seed), "joint_unimodal_heads", epochs=1, batch_size=64, device="cpu",
                       record=False, show_progress=False)
        slow = next(m for m in ("easy", "hard") if m != first)
        result.history = {f"loss_uni_{first}": list(np.exp(-iterations / 4)),
                          f"loss_uni_{slow}": list(np.exp(-iterations / 20))}
        missing = {m: 30.0 if m == dear else 45.0 for m in ("easy", "hard")}
        runs.append(Run("joint_unimodal_heads", seed, result, ImpairmentTable("accuracy", 50.0, missing, {})))
    return runs


def test_fig2_claims_count_the_seeds_where_the_first_learned_is_the_costliest():
    fig2 = {("emoji", "joint_unimodal_heads", (), ("ratios", ())): heads_runs(["easy"] * 3, ["easy"] * 3),
            ("seesaw", "joint_unimodal_heads", (), ("ratios", ())): heads_runs(["easy"] * 3, ["hard"] * 3)}
    ledger = FakeLedger(fig2)
    emoji, seesaw = claim("balgrad-fig2-emoji").run(ledger), claim("balgrad-fig2-seesaw").run(ledger)
    assert emoji.verdict == claims.HOLDS and "first = costliest on 3 of 3 seeds" in emoji.measured
    assert seesaw == claims.Finding(
        "seesaw: first = costliest on 0 of 3 seeds (first/costliest: easy/hard, easy/hard, easy/hard); agreement − "
        f"chance: {stats.paired_difference([0.0] * 3, [0.5] * 3).text()}", claims.DOES_NOT_HOLD, "the opposite direction")
    mixed = FakeLedger({("emoji", "joint_unimodal_heads", (), ("ratios", ())):
                        heads_runs(["easy"] * 3, ["easy", "hard", "easy"])})
    assert claim("balgrad-fig2-emoji").run(mixed).detail == "within seed noise"


def test_the_motivating_claims_are_in_the_ledger():
    for key in MOTIVATING:
        record = claim(key)
        assert record.check is not None and record.paper in ("BalGrad", "GOAL")
        assert (claims.Path(__file__).resolve().parents[1] / "chapters" / record.chapter).is_file()


def test_every_claim_is_well_formed_and_keys_are_unique():
    keys = [claim.key for claim in claims.CLAIMS]
    assert len(keys) == len(set(keys)) and len(keys) >= 30
    for claim in claims.CLAIMS:
        assert claim.paper in claims.PAPERS and claim.where and claim.claim and claim.how and claim.chapter
        assert (claim.check is None) != (not claim.not_testable)
    assert {claim.paper for claim in claims.CLAIMS} == set(claims.PAPERS)
    with pytest.raises(ValueError, match="not both"):
        claims.Claim("x", "GOAL", "A.1", "c", "", "h", "06_goal.ipynb")
    with pytest.raises(ValueError, match="verdict must be one of"):
        claims.Finding("x", "maybe")


def test_write_and_read_round_trip(tmp_path):
    ledger = FakeLedger({key("balgrad"): fake_runs([10.0, 11.0, 12.5]), key("joint"): fake_runs([20.0, 22.0, 23.0])})
    chosen = [c for c in claims.CLAIMS if c.key in ("balgrad-table1-missing", "balgrad-hateful-memes")]
    markdown = claims.write(tmp_path, ledger, "test", chosen)
    text = markdown.read_text()
    assert "2 claims: 1 holds, 0 does not hold, 0 partly, 1 not testable here." in text
    assert "| Table 1, Missing ΔGap |" in text and "**holds**" in text
    links = re.findall(r"\]\(([^)]+\.ipynb)\)", text)  # the chapter links work from the folder CLAIMS.md is in
    assert links and all((tmp_path / link).resolve() == claims.CHAPTERS / Path(link).name for link in links)
    assert all((tmp_path / link).is_file() for link in links)
    rows, sizes = claims.read(tmp_path / "claims.json")
    assert sizes == {"seeds": [0, 1, 2], "epochs": {"emoji": 1, "seesaw": 1}, "fast": True}
    found = {row.claim.key: row.finding for row in rows}
    assert found["balgrad-table1-missing"].verdict == claims.HOLDS
    assert "not in claims.json yet" in found["goal-a11-cost"].detail
    assert found["balgrad-food101-image"] == claims.Finding("—", claims.NOT_TESTABLE, claims.NO_DATA)  # no check
    record = json.loads((tmp_path / "claims.json").read_text())
    record["findings"]["no-such-claim"] = record["findings"]["balgrad-table1-missing"]
    (tmp_path / "claims.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="no-such-claim"):
        claims.read(tmp_path / "claims.json")
    with pytest.raises(FileNotFoundError, match="python -m modbal_lib claims"):
        claims.read(tmp_path / "missing.json")


@pytest.mark.slow
def test_the_claims_command_regenerates_the_whole_ledger_in_fast_mode(tmp_path):
    done = subprocess.run([sys.executable, "-m", "modbal_lib", "claims", "--fast", "--out", str(tmp_path)],
                          capture_output=True, text=True, env={**os.environ, "MODBAL_PROGRESS": "0"})
    assert done.returncode == 0, done.stderr
    rows, sizes = claims.read(tmp_path / "claims.json")
    assert sizes["seeds"] == [0, 1] and len(rows) == len(claims.CLAIMS)
    assert all(row.finding.verdict in claims.VERDICTS for row in rows)
    assert f"{len(claims.CLAIMS)} claims:" in (tmp_path / "CLAIMS.md").read_text()


def test_from_parts_judges_each_part_and_names_the_ones_that_hold():
    lower = stats.paired_difference([1.0, 2.0, 3.0], [5.0, 6.1, 7.3])
    parts = {"a": (lower, -1, "gap a"), "b": (lower, +1, "gap b")}
    finding = claims.from_parts(parts, digits=2)
    assert finding.verdict == claims.PARTLY and finding.detail == "holds for a only"
    assert finding.measured.startswith(f"gap a: {lower.text(2)}; gap b: ")


def test_parts_table_shows_each_part_with_the_sign_the_paper_implies_and_its_verdict():
    lower = stats.paired_difference([1.0, 2.0, 3.0], [5.0, 6.1, 7.3])
    few = stats.paired_difference([1, 2], [3, 4])
    table = claims.parts_table({"gap": Part(lower, -1, "gap"), "few": Part(few, +1, "x")})
    lines = table.splitlines()
    assert lines[0] == "| part of the claim | the paper implies | the kit measured | verdict |"
    assert lines[2] == f"| gap | Δ < 0 | gap: {lower.text(2, verdict=False)} | holds |"
    assert lines[3].startswith("| few | Δ > 0 | x: ") and lines[3].endswith("| not testable here (too few seeds "
                                                                           "(n=2; the kit's rule needs 3)) |")
    assert claims.verdict_text(claims.Finding("m", claims.HOLDS)) == "holds"


def test_claims_command_refuses_a_file_as_its_folder_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(claims, "run_ledger", lambda *a, **k: pytest.fail("trained before checking --out"))
    (tmp_path / "results").write_text("not a folder")
    assert main(["claims", "--fast", "--out", str(tmp_path / "results")]) == 2
    assert "is a file; expected a folder" in capsys.readouterr().err


def fulls_runs(fulls):
    """Runs whose Full score is each value of ``fulls`` (one per seed)."""
    return [Run("m", seed, FakeResult(), ImpairmentTable("accuracy", full, {"a": 50.0, "b": 50.0}, {}))
            for seed, full in enumerate(fulls)]


def test_cggm_versatility_reads_three_modalities_and_the_regression_mae(monkeypatch):
    monkeypatch.setattr(claims, "compare", lambda *a, **k: pytest.fail("trained instead of reading the given runs"))
    regression = ("dataset_options", (("target", "regression"),))
    ledger = FakeLedger({("goal_evidence.table3", "cggm"): fulls_runs([71.0, 72.5, 70.0]),
                         ("goal_evidence.table3", "joint"): fulls_runs([70.0, 71.0, 69.2]),
                         ("seesaw", "cggm", (), ("ratios", ()), regression): fulls_runs([0.50, 0.61, 0.55]),
                         ("seesaw", "joint", (), ("ratios", ()), regression): fulls_runs([0.50, 0.60, 0.56])})
    finding = claim("cggm-versatility").run(ledger)
    three = stats.paired_difference([71.0, 72.5, 70.0], [70.0, 71.0, 69.2])
    assert finding.verdict == claims.PARTLY and finding.detail == "holds for three modalities only"
    assert finding.measured.startswith(f"Full, CGGM − joint, SeeSaw with 3 modalities: {three.text()}; "
                                       "MAE, CGGM − joint, SeeSaw regression: ")


# --- the chapters' boxes: one record per claim, the ledger's verdict next to the chapter's run ----------------

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"


def chapter_box_keys() -> dict[str, list[str]]:
    """The claim keys of every ``box("key", ...)`` call in chapters 01–07, per chapter source."""
    return {path.name: re.findall(r"\bbox\(\s*\"([^\"]+)\"", path.read_text())
            for path in sorted(CHAPTERS.glob("0[1-7]_*.py"))}


def test_every_chapter_box_names_a_claim_of_the_ledger():
    found = chapter_box_keys()
    assert len(found) == 7 and all(found.values()), f"a chapter without a box: {found}"
    known = {c.key for c in claims.CLAIMS}
    assert {name: sorted(set(keys) - known) for name, keys in found.items() if set(keys) - known} == {}
    assert sum(map(len, found.values())) >= 23  # the 23 boxes of the chapters, some split into one per claim
    for path in CHAPTERS.glob("0[1-7]_*.py"):
        assert "paper_vs_measured" not in path.read_text(), f"{path.name}: a box typed by hand"


@pytest.fixture
def published(tmp_path):
    """A claims.json with one finding (balgrad-table1-missing, holds on 3 seeds at reduced size)."""
    ledger = FakeLedger({key("balgrad"): fake_runs([10.0, 11.0, 12.5]), key("joint"): fake_runs([20.0, 22.0, 23.0])})
    claims.write(tmp_path, ledger, "test", [claim("balgrad-table1-missing")])
    return tmp_path / "claims.json"


def test_box_renders_the_record_and_the_ledgers_verdict(published):
    record = claim("balgrad-table1-missing")
    finding = claims.read_findings(published)[0]["balgrad-table1-missing"]
    text = claims.box("balgrad-table1-missing", "gap 3.0 ± 1.0 (n=2)", "narrower here", ledger_file=published)
    lines = text.splitlines()
    assert lines[0] == f"> **Claim** (BalGrad [Kim et al., 2025], {record.where}): {record.claim}"
    assert f"> **The paper reports:** {record.paper_number}" in lines
    assert "> **We measured (this run):** gap 3.0 ± 1.0 (n=2)" in lines and "> **Reading:** narrower here" in lines
    assert lines[-1] == (f"> **The claims ledger's verdict:** **holds**. It measured {finding.measured} "
                         "(3 seeds, reduced size; [chapter 8](08_what_holds_up.ipynb)).")
    assert all(line.startswith(">") for line in lines)
    assert "**Reading:**" not in claims.box("balgrad-table1-missing", "m", ledger_file=published)


def test_box_without_a_ledger_or_a_row_points_to_make_report(published, tmp_path):
    nowhere = claims.box("balgrad-table1-missing", "m", ledger_file=tmp_path / "results" / "claims.json")
    assert nowhere.endswith("comes from `make report`, which runs every claim's check (there is no "
                            "`results/claims.json` yet); [chapter 8](08_what_holds_up.ipynb) has it.")
    no_row = claims.box("goal-a11-cost", "m", ledger_file=published)
    assert f"(`{published.parent.name}/claims.json` has no row for it yet)" in no_row and "make report" in no_row
    untestable = claims.box("balgrad-hateful-memes", "m", ledger_file=tmp_path / "none.json")
    assert f"**not testable here** ({claims.NO_DATA})" in untestable  # known without running anything


def test_box_refuses_an_unknown_key_and_an_empty_measurement(published):
    with pytest.raises(KeyError, match="no claim 'balgrad-tabel1' in modbal_lib.claims.CLAIMS"):
        claims.box("balgrad-tabel1", "m", ledger_file=published)
    with pytest.raises(ValueError, match=r"box\('goal-a3'\): measured must say what this run measured"):
        claims.box("goal-a3", "  ")
    broken = published.parent / "broken.json"
    broken.write_text(json.dumps({"findings": {"gone-claim": {"measured": "x", "verdict": "holds"}}}))
    with pytest.raises(ValueError, match="gone-claim"):
        claims.box("goal-a3", "m", ledger_file=broken)
