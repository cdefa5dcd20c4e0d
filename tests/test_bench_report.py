import json
import os
import platform
import re
import shlex
from pathlib import Path

import pytest
from PIL import Image

from modbal_lib.bench import lookup, markdown_table, table_rows
from modbal_lib.bench_report import meaningful, paired_difference, reading
from modbal_lib.cli import main


def run(full, missing_easy, missing_hard, noisy_gap=5.0):
    return {"full": full,
            "missing": {"easy": missing_easy, "hard": missing_hard, "delta_gap": abs(missing_easy - missing_hard)},
            "noisy": {"delta_gap": noisy_gap}}


def summary(runs, step_time_ratio=1.0):
    def mean_std(values):
        mean = sum(values) / len(values)
        return {"mean": mean, "std": (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5}

    return {"full": mean_std([r["full"] for r in runs]),
            "missing": {k: mean_std([r["missing"][k] for r in runs]) for k in ("easy", "hard", "delta_gap")},
            "step_time_ratio": step_time_ratio, "runs": runs}


@pytest.fixture
def results():
    """Two seeds, shaped like the see-saw: "easy" alone reaches 26, "hard" alone 42. Joint training
    learns easy fully (its branch alone: 25) and hard only partly (30.5 of 42). ogm_ge narrows the
    gap for sure and loses a little Full; pcgrad's gap moves by less than its spread over the seeds;
    mslr widens the gap by training the hard branch, toward the 16-point gap of the unimodal models."""
    methods = {
        "unimodal_easy": summary([run(26.0, 5.0, 26.0), run(26.0, 5.0, 26.0)]),
        "unimodal_hard": summary([run(42.0, 42.0, 5.0), run(42.0, 42.0, 5.0)]),
        "joint": summary([run(78.0, 30.0, 25.0), run(79.0, 31.0, 25.0)]),
        "ogm_ge": summary([run(76.0, 28.0, 25.0), run(78.0, 28.0, 25.0)], step_time_ratio=1.25),
        "pcgrad": summary([run(78.0, 31.0, 25.0, 4.0), run(79.0, 29.0, 25.0, 6.0)], step_time_ratio=2.0),
        "mslr": summary([run(80.0, 36.0, 25.0), run(81.0, 38.0, 25.0)]),
    }
    return {"dataset": "seesaw", "modalities": ["easy", "hard"], "metric": "accuracy", "seeds": [0, 1], "methods": methods}


def test_paired_difference_is_seed_by_seed(results):
    # ogm_ge - joint gaps: (3 - 5, 3 - 6) = (-2, -3)
    assert paired_difference(results, "ogm_ge", lambda r: r["missing"]["delta_gap"]) == (-2.5, 0.5)
    assert paired_difference(results, "ogm_ge", lambda r: r["full"]) == (-1.5, 0.5)
    # a different quantity of the reference: the hard-only model vs joint's hard branch alone
    assert paired_difference(results, "unimodal_hard", lambda r: r["full"], "joint", lambda r: r["missing"]["easy"]) == (11.5, 0.5)


def test_meaningful_means_larger_than_the_spread_as_printed():
    assert meaningful(-10.5, 0.5) and meaningful(2.0, 1.9) and meaningful(0.3, 0.2)
    assert not meaningful(0.5, 1.5) and not meaningful(1.0, 1.0)
    assert not meaningful(-0.24, 0.16)  # printed "-0.2 ± 0.2": not larger than its spread


def test_reading_is_built_from_the_numbers(results):
    sentences = reading(results)
    assert sentences[0] == ("With one modality missing, joint training's accuracy falls from 78.5 (Full) to 30.5 with "
                            "easy missing, 25.0 with hard missing (missing DeltaGap 5.5 ± 0.5 points).")
    assert sentences[1] == "Alone, each modality reaches (accuracy, Full): easy 26.0 ± 0.0, hard 42.0 ± 0.0."
    assert sentences[2] == ("Inside joint training, easy's branch alone (hard missing) scores 25.0, 1.0 ± 0.0 points "
                            "below the easy-only model; hard's branch alone (easy missing) scores 30.5, 11.5 ± 0.5 points "
                            "below the hard-only model. Joint training thus leans on **easy**: hard's branch falls short "
                            "of its unimodal model by 10.5 ± 0.5 points more than easy's. The two unimodal models differ "
                            "by 16.0 ± 0.0 points: the DeltaGap of a model whose branches each matched their unimodal model.")
    assert sentences[3] == ("**ogm_ge** reduces the missing DeltaGap by 2.5 ± 0.5 points vs joint (5.5 → 3.0; "
                            "scores vs joint in points: easy missing -2.5 ± 0.5, hard missing +0.0 ± 0.0 (within the "
                            "seeds' spread)); leaves the noisy DeltaGap unchanged within the seeds' spread (+0.0 ± 0.0 "
                            "points); costs 1.5 ± 0.5 points of Full; its steps take 1.25× joint's time.")
    # pcgrad: gaps (6, 4) vs (5, 6) -> differences (+1, -2): -0.5 ± 1.5
    assert sentences[4] == ("**pcgrad** leaves the missing DeltaGap unchanged within the seeds' spread (-0.5 ± 1.5 "
                            "points) vs joint (5.5 → 5.0; scores vs joint in points: easy missing -0.5 ± 1.5 (within "
                            "the seeds' spread), hard missing +0.0 ± 0.0 (within the seeds' spread)); leaves the noisy "
                            "DeltaGap unchanged within the seeds' spread (+0.0 ± 1.0 points); leaves Full unchanged "
                            "within the seeds' spread (+0.0 ± 0.0 points); its steps take 2.00× joint's time.")
    assert sentences[5].startswith("**mslr** widens the missing DeltaGap by 6.5 ± 0.5 points vs joint (5.5 → 12.0; "
                                   "scores vs joint in points: easy missing +6.5 ± 0.5, ")
    assert "gains 2.0 ± 0.0 points of Full" in sentences[5]
    assert sentences[6] == ("In short: ogm_ge reduces the missing DeltaGap by more than the seeds' spread; of these, "
                            "ogm_ge pays for it in Full. mslr widens it, but toward the 16.0-point gap between the "
                            "unimodal models, i.e. toward branches that each do what their modality can do alone. "
                            "For pcgrad the change is within the seeds' spread: not meaningful.")
    assert len(sentences) == 7


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
    assert headings == ["## seesaw", "### Table 1 layout (mean ± std over seeds; best **bold**, second _italic_)",
                        "### Cost", "### Missing-ratio curves", "### Each modality's training loss", "### Reading"]


TABLE_HEADING = "### Table 1 layout (mean ± std over seeds; best **bold**, second _italic_)"


def check_table_numbers(lines: list[str], results: dict) -> None:
    """The Table 1 of a report section holds exactly the means and stds of results.json."""
    table = section(lines, TABLE_HEADING)
    assert "\n".join(table) + "\n" == markdown_table(results)
    methods = [cell.strip() for cell in table[0].split("|")[2:-1]]
    assert methods == list(results["methods"])
    for line, (label, path) in zip(table[2:], table_rows(results["modalities"]), strict=True):
        cells = [cell.strip().strip("*_") for cell in line.split("|")[1:-1]]
        assert cells[0] == label
        for method, cell in zip(methods, cells[1:]):
            mean, std = (float(x) for x in cell.split(" ± "))
            entry = lookup(results["methods"][method], path)
            assert mean == pytest.approx(entry["mean"], abs=0.005) and std == pytest.approx(entry["std"], abs=0.005)


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
    gap = paired_difference(results, "ogm_ge", lambda run: run["missing"]["delta_gap"])
    ogm_ge = next(bullet for bullet in bullets if bullet.startswith("**ogm_ge**"))
    assert f"{abs(gap[0]):.1f} ± {gap[1]:.1f} points" in ogm_ge or f"({gap[0]:+.1f} ± {gap[1]:.1f} points)" in ogm_ge


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
