import numpy as np
import pytest

from modbal_lib.experiments import Experiment, compare, history_mean, run_tables
from modbal_lib.stats import paired_difference, summarize


def test_compare_runs_each_method_for_each_seed_and_summaries_match():
    experiment = Experiment("seesaw", dataset_options={"num_samples": 400})
    runs = compare(experiment, ["joint", "unimodal_hard"], [0, 1], epochs=2, device="cpu", ratios=(0.5,))
    assert list(runs) == ["joint", "unimodal_hard"]
    assert [r.seed for r in runs["joint"]] == [0, 1]
    joint = runs["joint"]
    mean, sd, n = summarize(joint, lambda r: r.table.full)
    assert mean == pytest.approx(np.mean([r.table.full for r in joint])) and n == 2
    assert sd == pytest.approx(np.std([r.table.full for r in joint], ddof=1))
    # Runs pair up seed by seed with the kit's one rule
    difference = paired_difference(runs["joint"], runs["unimodal_hard"], lambda r: r.table.full)
    assert difference.mean == pytest.approx(np.mean([a.table.full - b.table.full for a, b in zip(joint, runs["unimodal_hard"])]))
    assert list(joint[0].table.ratio_sweep["easy"]) == [0.5]
    tables = run_tables(runs, {"joint": "joint training"})
    assert list(tables) == ["joint training", "unimodal_hard"] and tables["joint training"][1] is joint[1].table
    assert history_mean(joint[0], "loss") == pytest.approx(np.mean(joint[0].result.history["loss"]))
    # different seeds give different models
    assert joint[0].result.history["loss"] != joint[1].result.history["loss"]
    assert experiment.features("test").labels.shape[0] == 60


def test_labelled_configurations_carry_their_own_options():
    runs = compare(Experiment("seesaw", dataset_options={"num_samples": 300}), ["joint", "slow=joint"], [0],
                   method_options={"slow": {"lr": 1e-5}}, epochs=2, device="cpu", ratios=())
    assert list(runs) == ["joint", "slow"]
    assert runs["slow"][0].result.config["lr"] == 1e-5 and runs["joint"][0].result.config["lr"] == 1e-3
    assert runs["slow"][0].method == "slow" and runs["slow"][0].result.method.name == "joint"
