import json
import os
import platform
import re
import shlex

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
    """Two seeds. Joint leans on "easy" (gap 30, 32); ogm_ge narrows the gap for sure and loses a
    little Full; pcgrad's gap moves by less than its spread over the seeds; mslr widens it."""
    methods = {
        "unimodal_easy": summary([run(80.0, 10.0, 80.0), run(82.0, 10.0, 82.0)]),
        "joint": summary([run(90.0, 50.0, 80.0), run(91.0, 50.0, 82.0)]),
        "ogm_ge": summary([run(87.0, 60.0, 80.0), run(89.0, 61.0, 82.0)], step_time_ratio=1.25),
        "pcgrad": summary([run(90.0, 51.0, 80.0, 4.0), run(91.0, 48.0, 82.0, 6.0)], step_time_ratio=2.0),
        "mslr": summary([run(92.0, 45.0, 80.0), run(93.0, 44.0, 82.0)]),
    }
    return {"dataset": "seesaw", "modalities": ["easy", "hard"], "metric": "accuracy", "seeds": [0, 1], "methods": methods}


def test_paired_difference_is_seed_by_seed(results):
    # ogm_ge - joint gaps: (20 - 30, 21 - 32) = (-10, -11)
    assert paired_difference(results, "ogm_ge", lambda r: r["missing"]["delta_gap"]) == (-10.5, 0.5)
    assert paired_difference(results, "ogm_ge", lambda r: r["full"]) == (-2.5, 0.5)


def test_meaningful_means_larger_than_the_spread():
    assert meaningful(-10.5, 0.5) and meaningful(2.0, 1.9)
    assert not meaningful(0.5, 1.5) and not meaningful(1.0, 1.0)
    # two seeds with differences 0 and 2.22: mean = std up to float noise -> not meaningful
    assert not meaningful((0.0 + (100 / 45 - 0.0)) / 2, abs(100 / 45 - 0.0) / 2 * (1 - 1e-15))


def test_reading_is_built_from_the_numbers(results):
    sentences = reading(results)
    assert sentences[0] == ("Joint training leans on **easy**: its accuracy falls from 90.5 (Full) to 50.0 with easy "
                            "missing, against 81.0 with hard missing (missing DeltaGap 31.0 ± 1.0 points).")
    assert sentences[1] == "Alone, each modality reaches (accuracy, Full): easy 81.0 ± 1.0."
    assert sentences[2] == ("**ogm_ge** reduces the missing DeltaGap by 10.5 ± 0.5 points vs joint (31.0 → 20.5); "
                            "leaves the noisy DeltaGap unchanged within the seeds' spread (+0.0 ± 0.0 points); "
                            "costs 2.5 ± 0.5 points of Full; its steps take 1.25× joint's time.")
    # pcgrad: gaps (29, 34) vs (30, 32) -> differences (-1, +2): 0.5 ± 1.5
    assert sentences[3] == ("**pcgrad** leaves the missing DeltaGap unchanged within the seeds' spread "
                            "(+0.5 ± 1.5 points) vs joint (31.0 → 31.5); leaves the noisy DeltaGap unchanged within the seeds' spread (+0.0 ± 1.0 points); "
                            "leaves Full unchanged within the seeds' spread (+0.0 ± 0.0 points); its steps take 2.00× joint's time.")
    assert sentences[4].startswith("**mslr** widens the missing DeltaGap by 5.5 ± 0.5 points vs joint (31.0 → 36.5); ")
    assert "gains 2.0 ± 0.0 points of Full" in sentences[4]
    assert sentences[5] == ("In short: ogm_ge reduces the missing DeltaGap by more than the seeds' spread; of these, "
                            "ogm_ge pays for it in Full. mslr widens it. For pcgrad the change is within the seeds' "
                            "spread: not meaningful.")


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
    assert any(re.fullmatch(r"- \*\*Wall time:\*\* \d+\.\d min", line) for line in lines)
    headings = [line for line in lines if line.startswith("##")]
    assert headings == ["## seesaw", "### Table 1 layout (mean ± std over seeds; best **bold**, second _italic_)",
                        "### Cost", "### Missing-ratio curves", "### Each modality's training loss", "### Reading"]


def test_report_table_numbers_match_results_json(fast_report):
    out, _, results = fast_report
    lines = (out / "REPORT.md").read_text().splitlines()
    table = section(lines, "### Table 1 layout (mean ± std over seeds; best **bold**, second _italic_)")
    assert "\n".join(table) + "\n" == markdown_table(results)
    methods = [cell.strip() for cell in table[0].split("|")[2:-1]]
    assert methods == ["unimodal_easy", "joint", "ogm_ge"]
    for line, (label, path) in zip(table[2:], table_rows(results["modalities"]), strict=True):
        cells = [cell.strip().strip("*_") for cell in line.split("|")[1:-1]]
        assert cells[0] == label
        for method, cell in zip(methods, cells[1:]):
            mean, std = (float(x) for x in cell.split(" ± "))
            entry = lookup(results["methods"][method], path)
            assert mean == pytest.approx(entry["mean"], abs=0.005) and std == pytest.approx(entry["std"], abs=0.005)


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
    assert f"{abs(gap[0]):.1f} ± {gap[1]:.1f} points" in bullets[2] or f"({gap[0]:+.1f} ± {gap[1]:.1f} points)" in bullets[2]
