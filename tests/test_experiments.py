import numpy as np
import pytest

from modbal_lib.experiments import Experiment, compare, history_mean, over_seeds


def test_compare_runs_each_method_for_each_seed_and_summaries_match():
    experiment = Experiment("seesaw", dataset_options={"num_samples": 400})
    runs = compare(experiment, ["joint", "unimodal_hard"], [0, 1], epochs=2, device="cpu", ratios=(0.5,))
    assert list(runs) == ["joint", "unimodal_hard"]
    assert [r.seed for r in runs["joint"]] == [0, 1]
    joint = runs["joint"]
    mean, std = over_seeds(joint, lambda r: r.table.full)
    assert mean == pytest.approx(np.mean([r.table.full for r in joint]))
    assert std == pytest.approx(np.std([r.table.full for r in joint]))
    assert list(joint[0].table.ratio_sweep["easy"]) == [0.5]
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


def test_paired_differences_seed_by_seed_and_the_verdict():
    from types import SimpleNamespace

    from modbal_lib.experiments import paired

    def runs(*values):
        return [SimpleNamespace(score=v) for v in values]

    score = lambda run: run.score  # noqa: E731
    mean, std, verdict = paired({"a": runs(3.0, 5.0, 7.0), "b": runs(1.0, 2.0, 3.0)}, "a", "b", score)
    assert (mean, std) == pytest.approx((3.0, (2 / 3) ** 0.5)) and verdict == "beyond seed noise"
    # a difference that flips sign with the seed: within the noise
    assert paired({"a": runs(1.0, 3.0), "b": runs(2.0, 2.0)}, "a", "b", score)[2] == "within seed noise"
    assert paired({"a": runs(4.0), "b": runs(1.0)}, "a", "b", score)[2] == "within seed noise"  # one seed tells nothing
    with pytest.raises(ValueError):
        paired({"a": runs(1.0, 2.0), "b": runs(1.0)}, "a", "b", score)  # the seeds must pair up
