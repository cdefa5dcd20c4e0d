import json

import pytest

from modbal_lib.bench import markdown_table, mean_std
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


def test_markdown_table_layout(bench_results):
    out, results = bench_results
    table = (out / "results.md").read_text()
    assert table == markdown_table(results)
    lines = table.splitlines()
    assert lines[0] == "| accuracy | unimodal_easy | joint | ogm_ge |"
    labels = [line.split("|")[1].strip() for line in lines[2:]]
    assert labels == ["Full", "missing easy", "missing hard", "missing Avg", "missing DeltaGap",
                      "noisy easy", "noisy hard", "noisy Avg", "noisy DeltaGap", "step time / joint"]
    full = results["methods"]["joint"]["full"]
    assert f"{full['mean']:.2f} ± {full['std']:.2f}" in lines[2]


def test_bad_option_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="METHOD.KEY=VALUE"):
        main(["bench", "--dataset", "seesaw", "--methods", "joint", "--out", str(tmp_path), "--option", "alpha=1"])
