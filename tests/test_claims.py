"""The claims ledger (modbal_lib.claims): its verdict words, its checks on given runs, the files it writes."""

import json
import os
import subprocess
import sys

import pytest

from modbal_lib import claims, stats
from modbal_lib.claims import paper_vs_measured
from modbal_lib.evaluate import ImpairmentTable
from modbal_lib.experiments import Run


def test_box_has_claim_paper_and_measurement():
    box = paper_vs_measured("Projection lowers conflicts.", "0.66 -> 0.36", "0.50 -> 0.20", "agrees")
    assert box.splitlines()[0] == "> **Claim.** Projection lowers conflicts."
    assert "**The paper reports:** 0.66 -> 0.36" in box and "**We measured:** 0.50 -> 0.20" in box
    assert box.endswith("> **Reading:** agrees")


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


def test_every_claim_is_well_formed_and_keys_are_unique():
    keys = [claim.key for claim in claims.CLAIMS]
    assert len(keys) == len(set(keys)) and len(keys) >= 25
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
    chosen = [c for c in claims.CLAIMS if c.key in ("balgrad-table1-missing", "balgrad-fig9-backbones")]
    markdown = claims.write(tmp_path, ledger, "test", chosen)
    text = markdown.read_text()
    assert "2 claims: 1 holds, 0 does not hold, 0 partly, 1 not testable here." in text
    assert "| Table 1, Missing ΔGap |" in text and "**holds**" in text
    rows, sizes = claims.read(tmp_path / "claims.json")
    assert sizes == {"seeds": [0, 1, 2], "epochs": {"emoji": 1, "seesaw": 1}, "fast": True}
    found = {row.claim.key: row.finding for row in rows}
    assert found["balgrad-table1-missing"].verdict == claims.HOLDS
    assert "not in claims.json yet" in found["goal-a11-cost"].detail
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
