"""GOAL's appendix evidence (A.7, A.12, A.15, A.16, Table 3, Fig. 2c): hand-checkable values, readings on
small trained models, the figures, and the ledger's checks as parts for claims.directional."""

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from modbal_lib import goal_evidence as ge
from modbal_lib import stats
from modbal_lib.claims import VERDICTS, combined, directional
from modbal_lib.experiments import Experiment, Run, run_tables
from modbal_lib.grads import cosine, loss_grads
from modbal_lib.methods.base import task_loss
from modbal_lib.train import TrainResult, train

from helpers import toy_features

SMALL = dict(epochs=2, batch_size=64, hidden=16, show_progress=False)
TINY_SEESAW = dict(num_samples=400)


@pytest.fixture(scope="module")
def goal_run():
    return train(toy_features(), "goal", **SMALL)


def fake_result(history: dict[str, list[float]], epochs: int = 1) -> TrainResult:
    return TrainResult(model=None, method=None, history=history, step_seconds=[], peak_memory_mb=0.0,
                       config={"epochs": epochs})


# --- A.7 ---------------------------------------------------------------------------------------------------

def test_logit_spread_and_a7_variance_by_hand():
    logits = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])  # mean logit vector 0
    torch.testing.assert_close(ge.logit_spread(logits), torch.tensor([1.0, 1.0, 4.0, 4.0], dtype=torch.float64))
    assert ge.prediction_variance(logits) == pytest.approx(np.var(logits.numpy(), axis=0).sum()) == 2.5
    with pytest.raises(ValueError, match="samples >= 2"):
        ge.logit_spread(torch.zeros(1, 3))


def test_spearman_of_identical_reversed_and_constant_series():
    x = [0.1, 0.5, 0.2, 0.9]
    assert ge.spearman(x, x) == pytest.approx(1.0)
    assert ge.spearman(x, [-v for v in x]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="constant"):
        ge.spearman(x, [1, 1, 1, 1])
    with pytest.raises(ValueError, match="one length"):
        ge.spearman(x, x[:3])


def test_entropy_falls_as_a_logit_moves_away_from_the_mean():
    # logits t [1, -1] for t = -2..2: the farther from the mean (t = 0), the larger d_i and the lower the entropy
    logits = torch.tensor([[t, -t] for t in (0.0, 1.0, -1.5, 2.0, -2.5)])
    assert ge.entropy_spread_correlation(logits) == pytest.approx(-1.0)


def test_a7_weights_are_its_inverse_variance_solution():
    weights = ge.a7_weights({"a": 1.0, "b": 3.0})
    assert weights == pytest.approx({"a": 0.75, "b": 0.25})  # w_0 = Var_1 / (Var_0 + Var_1)
    assert sum(ge.a7_weights({"a": 1.0, "b": 2.0, "c": 4.0}).values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="finite positive"):
        ge.a7_weights({"a": 0.0, "b": 1.0})


def test_al_weights_favour_the_confident_modality():
    confident = torch.tensor([[5.0, 0.0, 0.0]] * 4)
    unsure = torch.zeros(4, 3)
    weights = ge.al_weights({"a": confident, "b": unsure})
    assert weights["a"] > 0.5 > weights["b"] and sum(weights.values()) == pytest.approx(1.0)


def test_modality_logits_from_heads_and_shares(goal_run):
    features = toy_features(n=50, seed=3)
    heads = ge.modality_logits(goal_run.model, features)
    shares = ge.modality_logits(goal_run.model, features, source="shares")
    assert {m: tuple(z.shape) for m, z in heads.items()} == {"easy": (50, 4), "hard": (50, 4)}
    with torch.no_grad():
        fused = goal_run.model(features.features).logits
    torch.testing.assert_close(shares["easy"] + shares["hard"], fused, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no unimodal heads"):
        ge.modality_logits(train(toy_features(), "joint", **SMALL).model, features)
    with pytest.raises(ValueError, match="source must be one of"):
        ge.modality_logits(goal_run.model, features, source="fused")


def test_a7_reading_of_a_trained_model(goal_run):
    reading = ge.a7_reading(goal_run.model, toy_features(n=120, seed=4))
    assert set(reading) == {"easy", "hard"}
    for key in ("a7_weight", "al_weight"):
        assert sum(r[key] for r in reading.values()) == pytest.approx(1.0)
    assert all(-1 <= r["spearman"] <= 1 and 0 <= r["mean_entropy"] <= 1 and r["variance"] > 0
               for r in reading.values())
    with pytest.raises(ValueError, match="multiclass"):
        ge.a7_reading(goal_run.model, toy_features(task="multilabel"))


# --- A.12 --------------------------------------------------------------------------------------------------

def test_clustering_scores_of_separated_and_of_random_clusters():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    centres = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    separated = ge.clustering_scores(centres[labels] + rng.normal(size=(90, 2)), labels)
    assert separated["silhouette"] > 0.95 and separated["davies_bouldin"] < 0.1
    assert separated["nmi"] == pytest.approx(1.0) and separated["ari"] == pytest.approx(1.0)
    mixed = ge.clustering_scores(rng.normal(size=(90, 2)), labels)
    assert abs(mixed["silhouette"]) < 0.1 and abs(mixed["ari"]) < 0.1


@pytest.mark.parametrize("points, labels, message", [
    (np.zeros((5, 2)), np.zeros(5), "2 <= classes"),
    (np.zeros((5, 2)), np.zeros(4), "labels \\[N\\]"),
    (np.full((4, 2), np.nan), np.array([0, 1, 0, 1]), "inf or NaN"),
])
def test_clustering_scores_refuse_bad_input(points, labels, message):
    with pytest.raises(ValueError, match=message):
        ge.clustering_scores(points, labels)


def test_fused_features_are_the_concatenated_embeddings(goal_run):
    features = toy_features(n=30, seed=5)
    points = ge.fused_features(goal_run.model, features)
    with torch.no_grad():
        embeddings = goal_run.model.embed(features.features)
    assert points.shape == (30, 32)
    np.testing.assert_allclose(points[:, :16], embeddings["easy"].numpy(), rtol=1e-6)


# --- A.15 --------------------------------------------------------------------------------------------------

def test_branch_gradient_cosines_are_the_cosines_of_g_and_G(goal_run):
    features = toy_features(n=100, seed=6)
    cosines = ge.branch_gradient_cosines(goal_run.model, features, batch_size=40, seed=1)
    assert {m: len(c) for m, c in cosines.items()} == {"easy": 3, "hard": 3}
    assert all(np.all(np.abs(c) <= 1 + 1e-6) for c in cosines.values())
    model = goal_run.model  # the first batch by hand
    index = torch.randperm(100, generator=torch.Generator().manual_seed(1))[:40]
    output = model({m: x[index] for m, x in features.features.items()})
    labels = features.labels[index]
    params = model.branch_parameters("hard")
    g = loss_grads(task_loss("multiclass", output.logits, labels), params)
    G = loss_grads(task_loss("multiclass", output.unimodal_logits["hard"], labels), params)
    expected = cosine(torch.cat([t.flatten() for t in g]), torch.cat([t.flatten() for t in G]))
    assert cosines["hard"][0] == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="no unimodal heads"):
        ge.branch_gradient_cosines(train(toy_features(), "joint", **SMALL).model, features)


def test_traced_goal_trains_like_goal_and_records_the_alignment(goal_run):
    traced = ge.train_traced(toy_features(), "goal", [0], epochs=2, batch_size=64, hidden=16)[0]
    for p, q in zip(traced.model.parameters(), goal_run.model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert traced.history["w_easy"] == goal_run.history["w_easy"]
    curves = ge.alignment_curves(traced)
    assert set(curves) == {"easy", "hard"} and len(curves["easy"]) == len(traced.history["loss"]) == 8
    change = ge.alignment_change(traced, share=0.25)
    assert change["easy"] == pytest.approx(np.mean(curves["easy"][-2:]) - np.mean(curves["easy"][:2]))
    heads = ge.train_traced(toy_features(), "joint_unimodal_heads", [0, 1], epochs=2, batch_size=64, hidden=16)
    figure = ge.alignment_figure({"GOAL": [traced], "joint + heads": heads}, smooth=2)
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    with pytest.raises(ValueError, match="no cos_gG_"):
        ge.alignment_curves(goal_run)
    with pytest.raises(ValueError, match="method must be one of"):
        ge.train_traced(toy_features(), "joint", [0], epochs=1)


# --- A.16 --------------------------------------------------------------------------------------------------

def test_convergence_epoch_of_an_exponential_a_flat_curve_and_a_missing_record():
    tau = 20.0
    falling = fake_result({"loss_task": [math.exp(-i / tau) for i in range(400)]}, epochs=4)
    assert ge.convergence_epoch(falling, smooth=1) == pytest.approx(round(tau * math.log(2)) / 100, abs=0.011)
    flat = fake_result({"loss_task": [1.0] * 50}, epochs=2)
    assert ge.convergence_epoch(flat) == 2.0  # never gets there: the whole run (censored)
    with pytest.raises(ValueError, match="no 'loss_fused'"):
        ge.convergence_epoch(falling, key="loss_fused")
    figure = ge.convergence_figure({"a": [falling, falling]}, smooth=5)
    assert isinstance(figure, Figure)


# --- Table 3 and Fig. 2c -----------------------------------------------------------------------------------

def test_table3_shape_with_three_modalities():
    experiment = Experiment("seesaw", dataset_options={"num_modalities": 3, **TINY_SEESAW})
    runs = ge.table3_runs([0], ("joint", "goal"), experiment=experiment, epochs=1, hidden=16)
    table = stats.table1(run_tables(runs))
    assert "missing medium" in table and "missing hard" in table
    history = runs["goal"][0].result.history
    assert {"cos_easy_medium_before", "cos_easy_hard_before", "cos_medium_hard_before"} <= set(history)
    weights = np.array([history[f"w_{m}"] for m in ("easy", "medium", "hard")])
    np.testing.assert_allclose(weights.sum(0), 1.0, rtol=1e-5)  # Eq. 7's softmax over M = 3 modalities


class PrefilledLedger:
    """A ledger stand-in whose runs are given (``Ledger.runs``'s signature)."""

    def __init__(self, runs: dict[str, list[Run]], seeds=(0, 1)):
        self.seeds, self.epochs, self.cache, self.given = tuple(seeds), {"seesaw": 1}, {}, runs

    def runs(self, dataset, method, **options):
        return self.given[method]


def test_fig2c_runs_figure_and_check():
    bases = {"joint + heads": "joint_unimodal_heads"}
    runs = ge.fig2c_runs(Experiment("seesaw", dataset_options=TINY_SEESAW), [0, 1], bases, epochs=1, hidden=16)
    assert set(runs) == {"joint_unimodal_heads", "joint_unimodal_heads+go"}
    assert set(runs["joint_unimodal_heads+go"][0].result.history["conflict_after"]) == {0.0}
    figure = ge.fig2c_figure(runs, bases)
    assert isinstance(figure, Figure)
    (difference, expect, what), = ge.check_fig2c(PrefilledLedger(runs), "seesaw", bases).values()
    assert expect == +1 and "joint + heads + GO" in what
    assert difference == stats.paired_difference(runs["joint_unimodal_heads+go"], runs["joint_unimodal_heads"],
                                                 lambda run: run.table.full)
    with pytest.raises(ValueError, match="no runs of"):
        ge.fig2c_figure(runs, {"OGM-GE": "ogm_ge"})


# --- the ledger's checks ---------------------------------------------------------------------------------------

class ToyLedger:
    """A ledger stand-in: ``runs(dataset, method)`` trains a small model for 1 epoch on the dataset's training
    split, once (no protocol table: the checks below read the models and histories)."""

    def __init__(self, seeds=(0, 1)):
        self.seeds, self.epochs, self.cache = tuple(seeds), {"seesaw": 1}, {}

    def runs(self, dataset, method, **options):
        key = (dataset, method)
        if key not in self.cache:
            features = Experiment(dataset).features("train")
            self.cache[key] = [Run(method, s, train(features, method, epochs=1, hidden=16, batch_size=256, seed=s,
                                                    show_progress=False), None) for s in self.seeds]
        return self.cache[key]


@pytest.fixture(scope="module")
def toy_ledger():
    return ToyLedger()


@pytest.mark.parametrize("check", ["check_a7", "check_a12", "check_a15", "check_a15_over_training", "check_a16"])
def test_checks_give_parts_that_become_findings(toy_ledger, check):
    parts = getattr(ge, check)(toy_ledger, "seesaw")
    assert parts and all(isinstance(part, ge.Part) and isinstance(part.difference, stats.Difference)
                         and part.expect in (1, -1) and isinstance(part.what, str) for part in parts.values())
    finding = combined({name: directional(*part) for name, part in parts.items()})
    assert finding.verdict in VERDICTS and all(d.n == 2 for d, _, _ in parts.values())


def test_check_a16_is_the_paired_difference_of_convergence_epochs(toy_ledger):
    (difference, expect, _), = ge.check_a16(toy_ledger, "seesaw").values()
    goal, joint = ([ge.convergence_epoch(run.result) for run in toy_ledger.runs("seesaw", m)] for m in ("goal", "joint"))
    assert expect == -1 and difference == stats.paired_difference(goal, joint)


def test_check_a7_reads_the_goal_models_on_the_test_split(toy_ledger):
    parts = ge.check_a7(toy_ledger, "seesaw")
    test = Experiment("seesaw").features("test")
    readings = [ge.a7_reading(run.result.model, test) for run in toy_ledger.runs("seesaw", "goal")]
    assert parts["hard: entropy tracks variance"].difference.mean == pytest.approx(
        np.mean([r["hard"]["spearman"] for r in readings]))
    favoured = [100 * (r["easy" if r["easy"]["variance"] < r["hard"]["variance"] else "hard"]["al_weight"] - 0.5)
                for r in readings]
    assert parts["AL favours A.7's modality"].difference.mean == pytest.approx(np.mean(favoured))


def test_check_table3_reads_the_cached_runs():
    experiment = Experiment("seesaw", dataset_options={"num_modalities": 3, **TINY_SEESAW})
    runs = ge.table3_runs([0, 1], ("joint", "goal"), experiment=experiment, epochs=1, hidden=16)
    ledger = PrefilledLedger({})
    ledger.cache.update({("goal_evidence.table3", m): runs[m] for m in runs})
    (difference, expect, _), = ge.check_table3(ledger).values()
    assert expect == +1 and difference == stats.paired_difference(runs["goal"], runs["joint"], lambda r: r.table.full)
