import json
import os
import platform
import re
import shlex
from pathlib import Path

import pytest
from PIL import Image

from modbal_lib import stats
from modbal_lib.bench import method_tables, summarise
from modbal_lib.cli import main
from modbal_lib.evaluate import ImpairmentTable
from modbal_lib.report import FULL, MISSING_GAP, TABLE_HEADING, reading, versus


def run(full, missing_easy, missing_hard, noisy_gap=5.0):
    return ImpairmentTable("accuracy", full, {"easy": missing_easy, "hard": missing_hard},
                           {"easy": 50.0 + noisy_gap, "hard": 50.0})


def entry(tables, step_time_ratio=1.0):
    return {**summarise(tables), "step_time_ratio": step_time_ratio, "runs": [t.as_dict() for t in tables]}


@pytest.fixture
def results():
    """Three seeds, shaped like the see-saw: "easy" alone reaches 26, "hard" alone 42. Joint training
    learns easy fully (its branch alone: 25) and hard only partly (about 30.7 of 42). ogm_ge narrows
    the gap on every seed and loses some Full; pcgrad's gap moves both ways over the seeds; mslr
    widens the gap by training the hard branch, toward the 16-point gap of the unimodal models."""
    methods = {
        "unimodal_easy": entry([run(26.0, 5.0, 26.0)] * 3),
        "unimodal_hard": entry([run(42.0, 42.0, 5.0)] * 3),
        "joint": entry([run(78.0, 30.0, 25.0), run(79.0, 31.0, 25.0), run(78.0, 31.0, 25.0)]),
        "ogm_ge": entry([run(76.0, 28.0, 25.0), run(78.0, 28.0, 25.0), run(76.0, 28.0, 25.0)], step_time_ratio=1.25),
        "pcgrad": entry([run(78.0, 31.0, 25.0, 4.0), run(79.0, 29.0, 25.0, 6.0), run(78.0, 32.0, 25.0)], 2.0),
        "mslr": entry([run(80.0, 36.0, 25.0), run(81.0, 38.0, 25.0), run(80.0, 37.0, 25.0)]),
    }
    return {"dataset": "seesaw", "modalities": ["easy", "hard"], "metric": "accuracy", "seeds": [0, 1, 2],
            "methods": methods}


def test_versus_is_seed_by_seed(results):
    # ogm_ge - joint missing gaps: (3 - 5, 3 - 6, 3 - 6) = (-2, -3, -3)
    gap = versus(results, "ogm_ge", MISSING_GAP)
    assert gap == stats.paired_difference([3.0, 3.0, 3.0], [5.0, 6.0, 6.0]) and gap.verdict == stats.DIFFERS
    assert versus(results, "ogm_ge", FULL).mean == pytest.approx(-5 / 3)
    # a different quantity of the reference: the hard-only model vs joint's hard branch alone
    assert versus(results, "unimodal_hard", FULL, "joint", lambda t: t.missing["easy"]).mean == pytest.approx(42 - 92 / 3)


def test_reading_is_built_from_the_numbers(results):
    sentences = reading(results)
    joint_gap = stats.summarize([5.0, 6.0, 6.0])
    assert sentences[0] == ("With one modality missing, joint training's accuracy falls from 78.3 (Full) to 30.7 with "
                            f"easy missing, 25.0 with hard missing (missing DeltaGap {joint_gap.text()}).")
    assert sentences[1] == "Alone, each modality reaches (accuracy, Full): easy 26.0 ± 0.0 (n=3), hard 42.0 ± 0.0 (n=3)."
    assert sentences[2].startswith("Inside joint training, easy's branch alone (hard missing) scores 25.0, short of "
                                   "the easy-only model by Δ +1.0 [+1.0, +1.0] (n=3), differs; hard's branch alone")
    assert "Joint training thus leans on **easy**" in sentences[2]
    assert "The two unimodal models differ by 16.0 ± 0.0 (n=3) points" in sentences[2]
    ogm = versus(results, "ogm_ge", MISSING_GAP)
    assert sentences[3].startswith(f"**ogm_ge** vs joint: missing DeltaGap 5.7 → 3.0, Δ {ogm.text()} (easy missing Δ ")
    assert f"Full Δ {versus(results, 'ogm_ge', FULL).text()}" in sentences[3]
    assert sentences[3].endswith("its steps take 1.25× joint's time.")
    assert sentences[4].startswith("**pcgrad** vs joint: missing DeltaGap 5.7 → 5.7, Δ +0.0 [")
    assert "(n=3), within seed noise" in sentences[4]
    assert sentences[5].startswith("**mslr** vs joint: missing DeltaGap 5.7 → 12.0, Δ +6.3 [")
    assert sentences[6] == ("In short: ogm_ge reduces the missing DeltaGap (the interval excludes 0); of these, ogm_ge "
                            "pays for it in Full. mslr widens it, but toward the 16.0-point gap between the unimodal "
                            "models, i.e. toward branches that each do what their modality can do alone. "
                            "pcgrad: within seed noise.")
    assert len(sentences) == 7


def test_reading_with_two_seeds_says_too_few(results):
    for method in results["methods"].values():
        method["runs"] = method["runs"][:2]
    results["seeds"] = [0, 1]
    sentences = reading(results)
    assert sentences[-1] == ("In short: no method reduces the missing DeltaGap by the kit's rule. "
                             "ogm_ge, pcgrad, mslr: too few seeds.")
    assert "differs" not in " ".join(sentences)


def test_reading_without_unimodal_baselines_makes_no_claim_about_branches(results):
    for modality in ("easy", "hard"):
        del results["methods"][f"unimodal_{modality}"]
    sentences = reading(results)
    assert not any("branch" in s or "leans on" in s or "unimodal models" in s for s in sentences)
    assert sentences[-1].startswith("In short: ogm_ge reduces") and "mslr widens it." in sentences[-1]


def test_reading_needs_joint_training(results):
    del results["methods"]["joint"]
    with pytest.raises(ValueError, match="no 'joint' run"):
        reading(results)


# --- the report command, fast: seesaw only, 2 seeds, 3 epochs, 3 methods ----------------------------

REPORT_ARGS = ["report", "--datasets", "seesaw", "--methods", "unimodal_easy,joint,ogm_ge", "--seeds", "2",
               "--epochs", "3", "--dataset-options", "num_samples=600", "--device", "cpu"]


@pytest.fixture(scope="module")
def fast_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    argv = REPORT_ARGS + ["--out", str(out)]
    assert main(argv) == 0
    return out, argv, json.loads((out / "seesaw" / "results.json").read_text())


def section(lines: list[str], heading: str) -> list[str]:
    """The lines under a markdown heading, up to the next heading."""
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("#")), len(lines))
    return [line for line in lines[start:end] if line]


def test_report_header_names_command_date_machine_and_wall_time(fast_report):
    out, argv, _ = fast_report
    lines = (out / "REPORT.md").read_text().splitlines()
    assert lines[0].startswith("# Benchmark report")
    assert f"- **Command:** `python -m modbal_lib {shlex.join(argv)}`" in lines
    assert any(re.fullmatch(r"- \*\*Date:\*\* \d{4}-\d\d-\d\d \d\d:\d\d UTC", line) for line in lines)
    assert f"- **Machine:** {platform.platform()}, {os.cpu_count()} CPU cores, " in "\n".join(lines)
    assert any(re.fullmatch(r"- \*\*Load:\*\* 1-minute load average \d+\.\d at the start, \d+\.\d at the end .*", line)
               for line in lines)
    assert any(re.fullmatch(r"- \*\*Wall time:\*\* \d+\.\d min", line) for line in lines)
    headings = [line for line in lines if line.startswith("##")]
    assert headings == ["## seesaw", TABLE_HEADING, "### Cost", "### Missing-ratio curves",
                        "### Each modality's training loss", "### Reading"]


def check_table_numbers(lines: list[str], results: dict) -> None:
    """The Table 1 of a report section holds exactly the means and sample SDs of results.json."""
    table = section(lines, TABLE_HEADING)
    assert "\n".join(table) + "\n" == stats.table1(method_tables(results)).replace("\n\n", "\n")
    methods = [cell.strip() for cell in table[0].split("|")[2:-1]]
    assert methods == list(results["methods"])
    rows = [line for line in table[2:] if line.startswith("|")]
    for line in rows:
        cells = [cell.strip().strip("*_") for cell in line.split("|")[1:-1]]
        kind, _, key = cells[0].partition(" ")
        path = ("full",) if cells[0] == "Full" else (kind, {"Avg": "avg", "DeltaGap": "delta_gap"}.get(key, key))
        for method, cell in zip(methods, cells[1:]):
            mean, sd = (float(x) for x in cell.split(" ± "))
            value = results["methods"][method]
            for key in path:
                value = value[key]
            assert mean == pytest.approx(value["mean"], abs=0.005) and sd == pytest.approx(value["sd"], abs=0.005)


def test_report_table_numbers_match_results_json(fast_report):
    out, _, results = fast_report
    check_table_numbers((out / "REPORT.md").read_text().splitlines(), results)
    assert list(results["methods"]) == ["unimodal_easy", "joint", "ogm_ge"]


def test_report_figures_and_reading(fast_report):
    out, _, results = fast_report
    text = (out / "REPORT.md").read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert figures == ["seesaw/missing_ratio.png", "seesaw/loss_curves.png"]
    for figure in figures:
        with Image.open(out / figure) as picture:
            assert picture.format == "PNG"
    bullets = [line.removeprefix("- ") for line in section(text.splitlines(), "### Reading")]
    assert bullets == reading(results)
    # the comparison with joint is built from these very runs
    gap = versus(results, "ogm_ge", MISSING_GAP)
    ogm_ge = next(bullet for bullet in bullets if bullet.startswith("**ogm_ge**"))
    assert f"Δ {gap.text()}" in ogm_ge and gap.verdict == stats.TOO_FEW  # two seeds


COMMITTED = Path(__file__).resolve().parents[1] / "results"


@pytest.mark.skipif(not (COMMITTED / "REPORT.md").exists(), reason="no committed results/REPORT.md")
def test_committed_report_is_what_its_results_json_says():
    """results/REPORT.md was generated, not edited: its tables and reading follow from results/*/results.json."""
    text = (COMMITTED / "REPORT.md").read_text()
    assert "- **Command:** `python -m modbal_lib report --out results`" in text.splitlines()
    sections = text.split("\n## ")[1:]
    assert [s.splitlines()[0] for s in sections] == ["emoji", "seesaw"]
    for body in sections:
        lines = ("## " + body).splitlines()
        results = json.loads((COMMITTED / lines[0][3:] / "results.json").read_text())
        assert len(results["seeds"]) == 5
        assert set(results["methods"]) == {f"unimodal_{m}" for m in results["modalities"]} | {
            "joint", "joint_unimodal_heads", "ogm_ge", "mslr", "pcgrad", "balgrad", "cggm", "goal"}
        check_table_numbers(lines, results)
        assert [line.removeprefix("- ") for line in section(lines, "### Reading")] == reading(results)
