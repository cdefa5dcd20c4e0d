"""CGGM's evidence (Figs. 2-4, Tables 5-6): the traced training, the gradients it compares, the readings,
the figures and the ledger's checks, on tiny feature sets with real training."""

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from modbal_lib import cggm_evidence as ev
from modbal_lib import stats
from modbal_lib.claims import VERDICTS, combined, directional
from modbal_lib.evaluate import ImpairmentTable, predict_score
from modbal_lib.experiments import Run
from modbal_lib.features import FeatureSet
from modbal_lib.methods import option_hints
from modbal_lib.train import TrainResult, train

from helpers import toy_features

SMALL = dict(epochs=2, batch_size=64, hidden=16, show_progress=False)


def traced(seed: int = 0, **options) -> TrainResult:
    return train(toy_features(), ev.TracedCGGM(**options), seed=seed, **SMALL)


@pytest.fixture(scope="module")
def joint_and_cggm():
    return [traced(s, **ev.FIG2) for s in (0, 1)], [traced(s) for s in (0, 1)]


def fake_result(history: dict[str, list[float]]) -> TrainResult:
    """A run made of a history alone (for the readings, which read nothing else)."""
    return TrainResult(model=None, method=None, history=history, step_seconds=[], peak_memory_mb=0.0,
                       config={"epochs": 1})


def test_traced_cggm_trains_exactly_like_cggm_and_adds_the_figure_series():
    plain = train(toy_features(), "cggm", seed=0, **SMALL)
    result = traced(0)
    for key, values in plain.history.items():
        assert result.history[key] == values, key
    added = sorted(set(result.history) - set(plain.history))
    assert added == ["acc_fused", "cos_fused_clf_easy", "cos_fused_clf_hard"]
    cosines = np.array([result.history[k] for k in added[1:]])
    assert np.all(np.abs(cosines) <= 1 + 1e-6) and np.all(np.isfinite(cosines))
    assert all(0 <= a <= 1 for a in result.history["acc_fused"])


def test_the_figure_2_configuration_is_joint_training_with_watching_classifiers():
    joint = train(toy_features(), "joint", seed=0, **SMALL)
    watched = traced(0, **ev.FIG2)
    for m in ("easy", "hard"):
        np.testing.assert_allclose(watched.history[f"grad_norm_{m}"], joint.history[f"grad_norm_{m}"], rtol=1e-6)


def test_trajectories_shapes_and_ranges(joint_and_cggm):
    result = joint_and_cggm[1][0]
    curves = ev.trajectories(result, smooth=3)
    iterations = len(result.history["loss"])
    assert list(curves) == list(ev.PANELS)
    assert list(curves["accuracy"]) == ["easy", "hard", "fusion"]
    for series in curves.values():
        for values in series.values():
            assert values.shape == (iterations - 2,)
    assert all((v >= 0).all() for v in curves["gradient norm"].values())
    assert all((np.abs(v) <= 1 + 1e-6).all() for v in curves["cosine"].values())


def test_trajectories_refuse_a_run_without_traces_and_a_bad_window():
    plain = train(toy_features(), "joint", seed=0, **SMALL)
    with pytest.raises(ValueError, match="TracedCGGM"):
        ev.trajectories(plain)
    with pytest.raises(ValueError, match="smooth=0"):
        ev.trajectories(traced(0), smooth=0)


def full_history(norms_a, norms_b, acc_a, acc_b) -> dict[str, list[float]]:
    n = len(norms_a)
    return {"loss": [1.0] * n, "grad_norm_a": norms_a, "grad_norm_b": norms_b, "acc_clf_a": acc_a,
            "acc_clf_b": acc_b, "acc_fused": [0.5] * n, "cos_fused_clf_a": [0.0] * n, "cos_fused_clf_b": [0.0] * n}


def test_gradient_growth_and_the_dominance_reading_by_hand():
    history = full_history([1, 1, 3, 3, 3, 3, 3, 3, 2, 2], [4] * 10, [0.9] * 10, [0.2] * 10)
    result = fake_result(history)
    assert ev.gradient_growth(result, "a") == pytest.approx(2.0)  # first fifth: mean 1, last fifth: mean 2
    assert ev.gradient_growth(result, "b") == pytest.approx(1.0)
    assert ev.dominant_by_classifier(result) == "a"
    assert ev.growth_reading(result) == pytest.approx((math.log(2.0), 0.0))
    assert ev.growth_reading(result, dominant="b") == pytest.approx((0.0, math.log(2.0)))
    slower = fake_result(full_history([0.5] * 10, [8] * 10, [0.9] * 10, [0.2] * 10))
    assert ev.early_norm_ratio(slower, result, "a") == pytest.approx(math.log(0.5))  # early: 0.5 against 1
    assert ev.early_norm_ratio(slower, result, "b") == pytest.approx(math.log(2.0))  # early: 8 against 4


def test_gradient_growth_errors():
    result = fake_result(full_history([0.0] * 10, [1.0] * 10, [0.5] * 10, [0.5] * 10))
    with pytest.raises(ValueError, match="no gradient reached the 'a' branch"):
        ev.gradient_growth(result, "a")
    with pytest.raises(ValueError, match="no 'grad_norm_c'"):
        ev.gradient_growth(result, "c")
    with pytest.raises(ValueError, match="share"):
        ev.gradient_growth(result, "b", share=0.7)
    with pytest.raises(ValueError, match="dominant='c'"):
        ev.growth_reading(result, dominant="c")


def test_gradient_pairs_shapes_and_identical_gradients_have_cosine_one(joint_and_cggm):
    result = joint_and_cggm[1][0]
    features = toy_features()
    pairs = ev.gradient_pairs(result, features, batch_size=64)
    classes = len(features.class_names)
    assert {m: tuple(p[0].shape) for m, p in pairs.items()} == {"easy": (4, classes * 16), "hard": (4, classes * 16)}
    assert all(p[0].shape == p[1].shape for p in pairs.values())
    # a linear classifier equal to the head's block W_m (and bias) sees the same logits as the head fed h_m alone:
    # its gradient IS the unimodal gradient
    model, classifier = result.model, result.method.classifiers["hard"][-1]
    with torch.no_grad():
        classifier.weight.copy_(model.head.weight[:, 16:])
        classifier.bias.copy_(model.head.bias)
    pairs = ev.gradient_pairs(result, features, batch_size=64)
    torch.testing.assert_close(pairs["hard"][0], pairs["hard"][1])
    np.testing.assert_allclose(ev.stand_in_cosines(pairs)["hard"]["matched"], 1.0, atol=1e-6)


def test_stand_in_numbers_tsne_and_figures(joint_and_cggm):
    joint, cggm = joint_and_cggm
    per_seed = [ev.gradient_pairs(r, toy_features(), batch_size=64, seed=s) for s, r in enumerate(cggm)]
    cosines = ev.stand_in_cosines(per_seed[0])
    for kinds in cosines.values():
        assert set(kinds) == {"matched", "other batch"}
        assert all(((v >= -1 - 1e-6) & (v <= 1 + 1e-6)).all() and v.shape == (4,) for v in kinds.values())
    summaries = ev.stand_in_summaries(per_seed)
    assert summaries["easy"]["matched"].n == 2
    means = [np.mean(ev.stand_in_cosines(pairs)["easy"]["matched"]) for pairs in per_seed]
    assert summaries["easy"]["matched"].mean == pytest.approx(np.mean(means))
    points, labels = ev.tsne_points(per_seed[0])
    assert points.shape == (16, 2) and len(labels) == 16 and labels[0] == ("easy", "classifier")
    assert isinstance(ev.stand_in_figure(per_seed[0]), Figure)
    figure = ev.trajectory_figure({"joint (Fig. 2)": joint, "CGGM (Fig. 3)": cggm}, smooth=2)
    assert isinstance(figure, Figure) and len(figure.axes) == 6


def test_stand_in_errors():
    plain = train(toy_features(), "joint", seed=0, **SMALL)
    with pytest.raises(ValueError, match="no classifiers"):
        ev.gradient_pairs(plain, toy_features())
    with pytest.raises(ValueError, match="batch_size"):
        ev.gradient_pairs(traced(0), toy_features(), batch_size=0)
    one_batch = {"a": (torch.ones(1, 3), torch.ones(1, 3))}
    with pytest.raises(ValueError, match="batches >= 2"):
        ev.stand_in_cosines(one_batch)
    with pytest.raises(ValueError, match="at least 5"):
        ev.tsne_points({"a": (torch.ones(2, 3), torch.ones(2, 3))})
    with pytest.raises(ValueError, match="trajectory_figure"):
        ev.trajectory_figure({"empty": []})


def test_table5_accuracies_and_markdown(joint_and_cggm):
    joint, cggm = joint_and_cggm
    test = toy_features(seed=1)
    unimodal = {m: [train(toy_features(), f"unimodal_{m}", seed=s, **SMALL) for s in (0, 1)] for m in ("easy", "hard")}
    table = ev.table5_accuracies(unimodal, joint, cggm, test)
    assert list(table) == ["unimodal training", "joint training", "CGGM"]
    for column in table.values():
        assert all(len(v) == 2 and all(0 <= x <= 100 for x in v) for v in column.values())
    alone = predict_score(unimodal["easy"][0].model, test)["accuracy"]
    assert table["unimodal training"]["easy"][0] == pytest.approx(alone)
    text = ev.table5_markdown(table)
    assert "| f (easy) |" in text and "(n=2)" in text and stats.SD_NOTE in text
    with pytest.raises(ValueError, match="missing \\['hard'\\]"):
        ev.table5_accuracies({"easy": unimodal["easy"]}, joint, cggm, test)
    with pytest.raises(ValueError, match="no classifiers"):
        ev.classifier_scores(unimodal["easy"][0], test)
    with pytest.raises(ValueError, match="'auroc' is not among"):
        ev.classifier_scores(cggm[0], test, metric="auroc")


def test_table6_switches_exist_and_act():
    assert {"magnitude", "direction"} <= set(option_hints("cggm"))
    assert list(ev.TABLE6) == ["neither", "magnitude only", "direction only", "both"]
    runs = {label: train(toy_features(), "cggm", seed=0, **SMALL, **options) for label, options in ev.TABLE6.items()}
    assert "loss_gm" not in runs["neither"].history and "loss_gm" not in runs["magnitude only"].history
    assert "loss_gm" in runs["direction only"].history and "loss_gm" in runs["both"].history
    # the first step starts from the same model and batch: the magnitude switch scales the branch gradient by B
    for m in ("easy", "hard"):
        first = runs["magnitude only"].history
        unscaled = runs["neither"].history[f"grad_norm_{m}"][0]
        assert first[f"grad_norm_{m}"][0] == pytest.approx(first[f"B_{m}"][0] * unscaled)


class ToyExperiment:
    def __init__(self, dataset):
        self.dataset = dataset

    def features(self, split: str) -> FeatureSet:
        return toy_features(seed=0 if split == "train" else 1)


class ToyLedger:
    """The ledger's interface (seeds, epochs, cache, runs) on the toy features."""

    def __init__(self, seeds=(0, 1, 2)):
        self.seeds, self.epochs, self.cache = seeds, {"toy": 2}, {}

    def runs(self, dataset, method, **options):
        key = (dataset, method, tuple(sorted(options.items())))
        if key not in self.cache:
            test = toy_features(seed=1)
            results = [train(toy_features(), method, seed=s, **SMALL, **options) for s in self.seeds]
            tables = [ImpairmentTable("accuracy", predict_score(r.model, test)["accuracy"], {}, {}) for r in results]
            self.cache[key] = [Run(method, s, r, t) for s, r, t in zip(self.seeds, results, tables)]
        return self.cache[key]


def test_every_check_gives_parts_the_ledger_can_judge(monkeypatch):
    monkeypatch.setattr(ev, "Experiment", ToyExperiment)
    ledger = ToyLedger()
    checks = [ev.check_fig2_magnitude, ev.check_fig3_magnitude, ev.check_fig2_direction, ev.check_fig3_direction,
              ev.check_fig4_stand_in, ev.check_table5_cggm, ev.check_table5_joint, ev.check_table6]
    for check in checks:
        parts = check(ledger, "toy")
        assert parts, check.__name__
        for part in parts.values():
            assert isinstance(part, ev.Part) and part.expect in (1, -1) and "toy" in part.what
            assert part.difference.n == 3 and part.difference.low <= part.difference.mean <= part.difference.high
            assert directional(*part).verdict in VERDICTS
        assert combined({name: directional(*p) for name, p in parts.items()}).verdict in VERDICTS
    assert set(ev.check_fig3_direction(ledger, "toy")) == {"easy", "hard"}
    assert len([k for k in ledger.cache if k[0] == "cggm_evidence.traced"]) == 2  # Figs. 2 and 3, trained once each


def test_parts_read_the_runs_a_caller_trained_and_refuse_unpaired_runs():
    # two seeds by hand: a grows from 1 to 2 (log 2), b stays (log 1 = 0); a is dominant by its classifier
    joint = [fake_result(full_history([1, 1, 3, 3, 3, 3, 3, 3, 2, 2], [4] * 10, [0.9] * 10, [0.2] * 10)),
             fake_result(full_history([1, 1, 1, 1, 1, 1, 1, 1, 4, 4], [2] * 10, [0.8] * 10, [0.3] * 10))]
    parts = ev.fig2_magnitude_parts(joint, "hand")
    grows, faster = parts.values()
    assert grows.difference.mean == pytest.approx((math.log(2) + math.log(4)) / 2) and grows.expect == 1
    assert faster.difference.mean == pytest.approx(grows.difference.mean) and "hand" in faster.what
    cggm = [fake_result(full_history([0.5] * 10, [8] * 10, [0.9] * 10, [0.2] * 10))]
    with pytest.raises(ValueError, match="as many CGGM as joint runs"):
        ev.fig3_magnitude_parts(cggm, joint, "hand")
    with pytest.raises(ValueError, match="as many CGGM as joint runs"):
        ev.fig3_direction_parts(cggm, joint, "hand")
    slowed, sped_up = ev.fig3_magnitude_parts(cggm * 2, joint, "hand").values()
    assert slowed.difference.mean == pytest.approx((math.log(0.5) + math.log(0.5)) / 2) and slowed.expect == -1
    assert sped_up.difference.mean == pytest.approx((math.log(2) + math.log(4)) / 2)
    with pytest.raises(ValueError, match="no runs for \\['direction only'\\]"):
        ev.table6_parts({label: [] for label in ev.TABLE6 if label != "direction only"}, "hand")


def test_table6_runs_trains_only_what_the_caller_does_not_have(monkeypatch):
    trained_labels = []

    def fake_compare(experiment, methods, seeds, method_options, **train_options):
        assert train_options == {"epochs": 3}
        labels = [entry.partition("=")[0] for entry in methods]
        assert method_options == {label: ev.TABLE6[label] for label in labels}
        trained_labels.extend(labels)
        return {label: [Run(label, s, None, None) for s in seeds] for label in labels}

    monkeypatch.setattr(ev, "compare", fake_compare)
    both = [Run("cggm", s, None, None) for s in (0, 1)]
    runs = ev.table6_runs("toy", [0, 1], trained={"both": both}, epochs=3)
    assert list(runs) == list(ev.TABLE6) and runs["both"] is both
    assert trained_labels == ["neither", "magnitude only", "direction only"]
    assert [run.seed for run in runs["neither"]] == [0, 1]
    with pytest.raises(ValueError, match="the labels \\['joint'\\]"):
        ev.table6_runs("toy", [0, 1], trained={"joint": both})
    with pytest.raises(ValueError, match="'both': \\[0, 1\\]"):
        ev.table6_runs("toy", [0, 1, 2], trained={"both": both})
