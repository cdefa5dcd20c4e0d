import csv
import json

import pytest
from PIL import Image

from modbal_lib import stats
from modbal_lib.bench import cost_table, csv_table, method_tables, results_markdown
from modbal_lib.cli import main


@pytest.fixture(scope="module")
def bench_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    code = main(["bench", "--dataset", "seesaw", "--methods", "unimodal_easy,joint,ogm_ge", "--seeds", "2",
                 "--epochs", "3", "--out", str(out), "--dataset-options", "num_samples=600",
                 "--option", "ogm_ge.alpha=0.5", "--device", "cpu"])
    assert code == 0
    return out, json.loads((out / "results.json").read_text())


def test_results_json_schema(bench_results):
    _, results = bench_results
    assert results["dataset"] == "seesaw" and results["modalities"] == ["easy", "hard"]
    assert results["seeds"] == [0, 1] and results["metric"] == "accuracy"
    assert list(results["methods"]) == ["unimodal_easy", "joint", "ogm_ge"]
    for entry in results["methods"].values():
        assert set(entry["full"]) == {"mean", "sd", "n"} and entry["full"]["n"] == 2
        for kind in ("missing", "noisy"):
            assert set(entry[kind]) == {"easy", "hard", "avg", "delta_gap"}
        assert entry["step_time_ratio"] > 0 and isinstance(entry["peak_memory_mb"], float)
        assert len(entry["runs"]) == 2
    assert results["methods"]["joint"]["step_time_ratio"] == 1.0
    # the cost table's step times are timed in turn after the training runs (480 training samples: 4 steps an
    # epoch; 120 steps would take 30 rounds, and 12 is the most)
    assert results["cost"] == {"measured": "in turn", "rounds": 12, "steps_per_method": 48}
    for entry in results["methods"].values():
        assert entry["train_step_ms"] > 0 and entry["step_ms"] > 0


def test_summary_matches_the_per_seed_runs(bench_results):
    _, results = bench_results
    joint = results["methods"]["joint"]
    for kind, key in (("missing", "easy"), ("noisy", "delta_gap")):
        expected = stats.summarize([run[kind][key] for run in joint["runs"]])._asdict()
        assert joint[kind][key] == pytest.approx(expected)
    # a model that never sees "hard" is unaffected when "hard" goes missing
    unimodal = results["methods"]["unimodal_easy"]
    assert unimodal["missing"]["hard"]["mean"] == pytest.approx(unimodal["full"]["mean"])


LABELS = ["Full", "missing easy", "missing hard", "missing Avg", "missing DeltaGap",
          "noisy easy", "noisy hard", "noisy Avg", "noisy DeltaGap"]


def test_markdown_table_layout(bench_results):
    out, results = bench_results
    assert (out / "results.md").read_text() == results_markdown(results)
    lines = stats.table1(method_tables(results)).splitlines()
    assert lines[0] == "| accuracy | unimodal_easy | joint | ogm_ge |"
    assert [line.split("|")[1].strip() for line in lines[2:11]] == LABELS
    full = results["methods"]["joint"]["full"]
    assert f"{full['mean']:.2f} ± {full['sd']:.2f}" in lines[2]


def test_csv_table_matches_results_json(bench_results):
    out, results = bench_results
    assert (out / "results.csv").read_text() == csv_table(results)
    rows = list(csv.reader((out / "results.csv").read_text().splitlines()))
    assert rows[0] == ["accuracy"] + [f"{m} {c}" for m in ["unimodal_easy", "joint", "ogm_ge"] for c in ("mean", "sd", "n", "rank")]
    assert [row[0] for row in rows[1:]] == LABELS
    gap_row = rows[LABELS.index("missing DeltaGap") + 1]
    gaps = {m: entry["missing"]["delta_gap"]["mean"] for m, entry in results["methods"].items()}
    for number, method in enumerate(results["methods"]):
        mean, sd, n, rank = gap_row[1 + 4 * number: 5 + 4 * number]
        entry = results["methods"][method]["missing"]["delta_gap"]
        assert float(mean) == pytest.approx(entry["mean"], abs=1e-4) and float(sd) == pytest.approx(entry["sd"], abs=1e-4)
        assert int(n) == 2 and int(rank) == stats.ranks(gaps, lower_is_better=True)[method]


def test_cost_table_and_figures(bench_results):
    out, results = bench_results
    lines = cost_table(results).splitlines()
    assert lines[0] == "| method | step time (ms) | step time / joint | peak RSS growth (MB) |"
    joint = results["methods"]["joint"]
    assert lines[3] == f"| joint | {joint['step_ms']:.2f} | 1.00 | {joint['peak_memory_mb']:.1f} |"
    for name in ("missing_ratio.png", "loss_curves.png"):
        with Image.open(out / name) as picture:
            assert picture.format == "PNG" and picture.size[0] > 400


def test_loss_curves_summarise_the_histories(bench_results):
    _, results = bench_results
    curves = results["methods"]["joint"]["loss_curves"]
    assert set(curves) == {"easy", "hard"}
    assert set(results["methods"]["unimodal_easy"]["loss_curves"]) == {"easy"}
    epochs = curves["easy"]["epoch"]
    assert len(epochs) == len(curves["easy"]["mean"]) == len(curves["easy"]["sd"])
    assert epochs == sorted(epochs) and 0 < epochs[0] < epochs[-1] < results["epochs"]
    # the easy modality is learned: its own loss falls over training
    assert curves["easy"]["mean"][-1] < curves["easy"]["mean"][0]


def test_bad_option_is_a_clear_error(tmp_path, capsys):
    assert main(["bench", "--dataset", "seesaw", "--methods", "joint", "--out", str(tmp_path), "--option", "alpha=1"]) == 2
    assert "LABEL.KEY=VALUE" in capsys.readouterr().err


def test_run_without_out_dir_returns_the_results_and_writes_nothing(bench_results, tmp_path, monkeypatch):
    from modbal_lib import bench

    monkeypatch.chdir(tmp_path)
    results = bench.run("seesaw", ["joint"], [0, 1], None, epochs=3, dataset_options={"num_samples": 600}, device="cpu")
    assert list(tmp_path.iterdir()) == []
    # the same seeds and settings as the CLI run of the fixture: the same scores
    assert results["methods"]["joint"]["runs"] == bench_results[1]["methods"]["joint"]["runs"]
