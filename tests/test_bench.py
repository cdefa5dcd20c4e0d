import csv
import json

import pytest
from PIL import Image

from modbal_lib.bench import cost_table, csv_table, markdown_table, mean_std, ranks, results_markdown
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
        assert set(entry["full"]) == {"mean", "std"}
        for kind in ("missing", "noisy"):
            assert set(entry[kind]) == {"easy", "hard", "avg", "delta_gap"}
        assert entry["step_time_ratio"] > 0 and isinstance(entry["peak_memory_mb"], float)
        assert len(entry["runs"]) == 2
    assert results["methods"]["joint"]["step_time_ratio"] == 1.0


def test_summary_matches_the_per_seed_runs(bench_results):
    _, results = bench_results
    joint = results["methods"]["joint"]
    for kind, key in (("missing", "easy"), ("noisy", "delta_gap")):
        expected = mean_std([run[kind][key] for run in joint["runs"]])
        assert joint[kind][key] == pytest.approx(expected)
    # a model that never sees "hard" is unaffected when "hard" goes missing
    unimodal = results["methods"]["unimodal_easy"]
    assert unimodal["missing"]["hard"]["mean"] == pytest.approx(unimodal["full"]["mean"])


LABELS = ["Full", "missing easy", "missing hard", "missing Avg", "missing DeltaGap",
          "noisy easy", "noisy hard", "noisy Avg", "noisy DeltaGap"]


def test_markdown_table_layout(bench_results):
    out, results = bench_results
    assert (out / "results.md").read_text() == results_markdown(results)
    lines = markdown_table(results).splitlines()
    assert lines[0] == "| accuracy | unimodal_easy | joint | ogm_ge |"
    assert [line.split("|")[1].strip() for line in lines[2:]] == LABELS
    full = results["methods"]["joint"]["full"]
    assert f"{full['mean']:.2f} ± {full['std']:.2f}" in lines[2]
    for line, path in zip(lines[2:], [("full",), ("missing", "easy"), ("missing", "hard"), ("missing", "avg")]):
        order = ranks(results, path)
        cells = [c.strip() for c in line.split("|")[2:-1]]
        for method, cell in zip(results["methods"], cells):
            assert cell.startswith("**") == (order[method] == 1)
            assert (cell.startswith("_") and cell.endswith("_")) == (order[method] == 2)


def test_csv_table_matches_results_json(bench_results):
    out, results = bench_results
    assert (out / "results.csv").read_text() == csv_table(results)
    rows = list(csv.reader((out / "results.csv").read_text().splitlines()))
    assert rows[0] == ["accuracy"] + [f"{m} {c}" for m in ["unimodal_easy", "joint", "ogm_ge"] for c in ("mean", "std", "rank")]
    assert [row[0] for row in rows[1:]] == LABELS
    gap_row = rows[LABELS.index("missing DeltaGap") + 1]
    for number, method in enumerate(results["methods"]):
        mean, std, rank = gap_row[1 + 3 * number: 4 + 3 * number]
        entry = results["methods"][method]["missing"]["delta_gap"]
        assert float(mean) == pytest.approx(entry["mean"], abs=1e-4) and float(std) == pytest.approx(entry["std"], abs=1e-4)
        assert int(rank) == ranks(results, ("missing", "delta_gap"))[method]


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
    assert len(epochs) == len(curves["easy"]["mean"]) == len(curves["easy"]["std"])
    assert epochs == sorted(epochs) and 0 < epochs[0] < epochs[-1] < results["epochs"]
    # the easy modality is learned: its own loss falls over training
    assert curves["easy"]["mean"][-1] < curves["easy"]["mean"][0]


def ranked(metric, means):
    results = {"metric": metric, "methods": {m: {"full": {"mean": v}, "missing": {"delta_gap": {"mean": v}}}
                                             for m, v in means.items()}}
    return ranks(results, ("full",)), ranks(results, ("missing", "delta_gap"))


def test_ranks_follow_the_direction_of_each_row():
    full, gap = ranked("accuracy", {"a": 70.0, "b": 90.0, "c": 80.0, "d": 90.0})
    assert full == {"a": 4, "b": 1, "c": 3, "d": 1}  # ties share the best rank
    assert gap == {"a": 1, "b": 3, "c": 2, "d": 3}  # DeltaGap: lower is better
    full, _ = ranked("mae", {"a": 0.5, "b": 0.2, "c": 0.9})
    assert full == {"a": 2, "b": 1, "c": 3}  # MAE: lower is better


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
