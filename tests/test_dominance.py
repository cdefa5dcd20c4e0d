import numpy as np
import pytest
import torch

from modbal_lib.data.impair import chosen_indices
from modbal_lib.evaluate import ImpairmentTable
from modbal_lib.experiments import Run
from modbal_lib.features import FeatureSet, Impairment
from modbal_lib.dominance import (
    HEADS,
    SHARES,
    SINGLE,
    Dominance,
    curve_source,
    dominant_modality,
    first_vs_costliest,
    halfway_iteration,
    leaned_on,
    learns_first,
    modality_curves,
    only_left,
    rescore_missing,
    shortfall,
    shortfalls,
    zero_vector_source,
)
from modbal_lib.stats import DIFFERS, TOO_FEW
from modbal_lib.train import train

from helpers import toy_features


def table(missing: dict[str, float], full: float = 80.0, metric: str = "accuracy") -> ImpairmentTable:
    return ImpairmentTable(metric=metric, full=full, missing=missing, noisy={})


class BlankRecordingExperiment:
    """Stands in for ``Experiment``: a missing modality becomes a constant row, -3 for a black blank,
    +3 for a white one (as if the encoder mapped the two blanks to different features); records
    every impairment it is asked for."""

    def __init__(self, clean: FeatureSet):
        self.clean = clean
        self.asked: list[Impairment | None] = []

    def test_source(self):
        def features_for(impairment):
            self.asked.append(impairment)
            if impairment is None:
                return self.clean
            values = self.clean.features[impairment.modality].clone()
            values[chosen_indices(len(self.clean), impairment.ratio, impairment.seed)] = (
                -3.0 if impairment.blank == "black" else 3.0
            )
            return FeatureSet(self.clean.modalities, {**self.clean.features, impairment.modality: values},
                              self.clean.labels, self.clean.task, self.clean.class_names)
        return features_for


def test_dominant_modality_is_the_one_whose_absence_costs_most():
    assert dominant_modality(table({"image": 30.0, "text": 70.0})) == "image"
    assert dominant_modality(table({"image": 64.0, "text": 51.0})) == "text"
    assert dominant_modality(table({"a": 40.0, "b": 20.0, "c": 60.0})) == "b"
    # MAE: lower is better, so the dominant modality's absence gives the largest error
    assert dominant_modality(table({"audio": 0.9, "video": 1.4}, full=0.7, metric="mae")) == "video"


def test_zero_vector_source_zeroes_exactly_the_chosen_rows_after_the_encoder():
    clean = toy_features(n=40, seed=0)
    asked = []

    def source(impairment):
        asked.append(impairment)
        return clean

    zeroed = zero_vector_source(source)
    out = zeroed(Impairment("easy", "missing", ratio=0.5, seed=3))
    rows = torch.from_numpy(chosen_indices(40, 0.5, 3))
    assert len(rows) == 20
    assert torch.all(out.features["easy"][rows] == 0)
    kept = torch.ones(40, dtype=torch.bool)
    kept[rows] = False
    assert torch.equal(out.features["easy"][kept], clean.features["easy"][kept])
    assert torch.equal(out.features["hard"], clean.features["hard"])
    assert torch.count_nonzero(clean.features["easy"][rows]) > 0  # the clean set is left alone
    assert asked == [None]  # a missing modality never reaches the raw-input impairment
    noisy = Impairment("hard", "noisy", seed=1)
    assert zeroed(noisy) is clean and asked[-1] == noisy
    assert zeroed(None) is clean


def test_rescore_missing_passes_the_blank_or_zeroes_the_features():
    train_set, test_set = toy_features(seed=0), toy_features(seed=1)
    result = train(train_set, "joint", epochs=10, batch_size=64, lr=1e-2, device="cpu", record=False)
    runs = [Run("joint", seed, result, table({"easy": 0.0, "hard": 0.0})) for seed in (0, 1)]
    experiment = BlankRecordingExperiment(test_set)

    black = rescore_missing(experiment, runs, "black")
    assert len(black) == 2 and all(t.noisy == {} and not any(t.ratio_sweep.values()) for t in black)
    impaired = [i for i in experiment.asked if i is not None]
    assert {(i.modality, i.kind, i.blank, i.seed, i.ratio) for i in impaired} == {
        (m, "missing", "black", 0, 1.0) for m in ("easy", "hard")
    }  # the whole test set missing does not depend on the seed: seed 0 for every run
    experiment.asked.clear()
    white = rescore_missing(experiment, runs, "white")
    assert {i.blank for i in experiment.asked if i is not None} == {"white"}
    zero = rescore_missing(experiment, runs, "zero")

    assert black[0].full == white[0].full == zero[0].full > 90
    assert black[0].missing != white[0].missing  # -3 and +3 rows are scored differently
    # "zero": the model's accuracy with the easy features set to zero by hand
    model = result.model
    zero_features = test_set.features["easy"] * 0
    logits = model({"easy": zero_features, "hard": test_set.features["hard"]}).logits
    accuracy = 100 * float((logits.argmax(1) == test_set.labels).float().mean())
    assert zero[0].missing["easy"] == pytest.approx(accuracy)
    assert dominant_modality(zero[0]) == "easy"
    with pytest.raises(ValueError, match="encoding must be one of"):
        rescore_missing(experiment, runs, "grey")


def test_dominance_over_seeds():
    tables = [table({"image": 30.0, "text": 70.0}, full=84.0),
              table({"image": 40.0, "text": 75.0}, full=82.0),
              table({"image": 72.0, "text": 70.0}, full=83.0)]
    dominance = Dominance("raw features, black blank", tables)
    assert dominance.dominant_per_seed == ["image", "image", "text"]
    assert dominance.dominant == "image" and dominance.agreeing_seeds == 2
    assert dominance.full == [84.0, 82.0, 83.0]
    assert dominance.missing("text") == [70.0, 75.0, 70.0]
    assert dominance.delta_gap == pytest.approx([40.0, 35.0, 2.0])
    # split seeds: the average decides, not the first seed seen
    split = Dominance("split", [table({"image": 50.0, "text": 52.0}), table({"image": 55.0, "text": 50.0})])
    assert split.dominant_per_seed == ["image", "text"]
    assert split.dominant == "text" and split.agreeing_seeds == 1
    with pytest.raises(ValueError, match="no tables"):
        Dominance("empty", [])


def test_halfway_iteration_of_an_exponential_is_its_half_life():
    iterations = np.arange(2000)
    assert halfway_iteration(np.exp(-iterations / 100), smooth=1) == int(np.ceil(100 * np.log(2)))
    # smoothing delays the answer by less than the window
    smoothed = halfway_iteration(np.exp(-iterations / 100), smooth=10)
    assert 69 <= smoothed <= 69 + 10
    fast, slow = np.exp(-iterations / 30), np.exp(-iterations / 300)
    assert halfway_iteration(fast) < halfway_iteration(slow)
    assert halfway_iteration(1 - np.exp(-iterations / 100)) is None  # a rising curve learned nothing
    with pytest.raises(ValueError, match="more than 10 values"):
        halfway_iteration([3.0, 2.0])


def test_learns_first():
    curves = {"image": [2.0, 1.5, 0.9, 0.5], "text": [2.0, 0.9, 0.8, 0.7]}
    assert learns_first(curves, smooth=1) == "text"
    assert learns_first({"image": [2.0, 1.5, 0.9], "text": [2.0, 2.0, 2.0]}, smooth=1) == "image"  # text never falls
    assert learns_first({"image": [2.0, 2.0], "text": [2.0, 2.1]}, smooth=1) is None
    assert learns_first({"a": [2.0, 1.0], "b": [4.0, 2.0]}, smooth=1) == "a"  # a tie goes to the first




def run_with_history(method: str, seed: int, history: dict, heads: bool = True, epochs: int = 2) -> Run:
    """A Run whose training recorded ``history``, on a two-modality model with or without unimodal heads."""
    features = toy_features(n=64, seed=seed)
    result = train(features, "joint_unimodal_heads" if heads else "joint", epochs=1, batch_size=64, device="cpu",
                   record=False)
    result.history, result.config["epochs"] = history, epochs
    return Run(method, seed, result, table({"easy": 50.0, "hard": 50.0}))


def test_modality_curves_read_the_heads_losses_and_measure_who_falls_first():
    iterations = np.arange(40)
    runs = [run_with_history("joint_unimodal_heads", seed, {
        "loss_uni_easy": list(2 * np.exp(-iterations / (4 + seed))),    # easy falls fast ...
        "loss_uni_hard": list(2 * np.exp(-iterations / (20 + seed))),   # ... hard slowly
        "acc_uni_easy": [0.5] * 40, "acc_uni_hard": [0.25] * 40}) for seed in (0, 1, 2)]
    curves = modality_curves(runs)
    assert curves.source == HEADS == curve_source(runs[0]) and curves.method == "joint_unimodal_heads"
    assert curves.curves["easy"].shape == (3, 40) and len(curves) == 3 and curves.iterations_per_epoch == 20
    assert curves.halfway("easy", smooth=1) == [int(np.ceil(t * np.log(2))) for t in (4, 5, 6)]
    assert curves.first(smooth=1) == ["easy"] * 3
    iteration, mean, sd = curves.band("hard", smooth=5)
    assert iteration[0] == 4 and len(iteration) == len(mean) == len(sd) == 36
    expected = np.mean([np.convolve(2 * np.exp(-iterations / (20 + s)), np.ones(5) / 5, "valid") for s in (0, 1, 2)], 0)
    assert mean == pytest.approx(expected) and (sd > 0).all()
    assert curves.last_epoch("hard") == pytest.approx([np.mean(2 * np.exp(-iterations[20:] / (20 + s))) for s in (0, 1, 2)])
    accuracy = modality_curves(runs, "acc")
    assert accuracy.band("easy")[1] == pytest.approx([0.5] * 40) and accuracy.band("easy")[2] == pytest.approx([0] * 40)
    with pytest.raises(ValueError, match="accuracies"):
        accuracy.halfway("easy")


def test_modality_curves_name_their_source_and_reject_mixtures():
    shares = run_with_history("joint", 0, {"loss_uni_easy": [1.0] * 4, "loss_uni_hard": [1.0] * 4}, heads=False)
    assert curve_source(shares) == SHARES and modality_curves([shares]).source == SHARES
    alone = train(toy_features(n=64), "unimodal_easy", epochs=1, batch_size=64, device="cpu")
    assert curve_source(Run("unimodal_easy", 0, alone, table({"easy": 0.0, "hard": 0.0}))) == SINGLE
    heads = run_with_history("joint", 1, {"loss_uni_easy": [1.0] * 4, "loss_uni_hard": [1.0] * 4})
    with pytest.raises(ValueError, match="one method and one source"):
        modality_curves([shares, heads])
    with pytest.raises(ValueError, match="record=True"):
        modality_curves([run_with_history("joint", 0, {}, heads=False)])
    longer = run_with_history("joint", 1, {"loss_uni_easy": [1.0] * 6, "loss_uni_hard": [1.0] * 6}, heads=False)
    with pytest.raises(ValueError, match="different lengths"):
        modality_curves([shares, longer])
    with pytest.raises(ValueError, match="quantity"):
        modality_curves([shares], "auc")
    with pytest.raises(ValueError, match="no runs"):
        modality_curves([])


def test_first_vs_costliest_pairs_who_learns_first_with_whose_absence_costs_most():
    """BalGrad's Fig. 2 per seed: easy's loss falls first on every seed; its absence costs most on seeds 0 and 2."""
    iterations = np.arange(40)
    runs = [run_with_history("joint_unimodal_heads", seed, {
        "loss_uni_easy": list(2 * np.exp(-iterations / 4)), "loss_uni_hard": list(2 * np.exp(-iterations / 20))})
        for seed in (0, 1, 2)]
    for run, missing in zip(runs, ({"easy": 30.0, "hard": 45.0}, {"easy": 45.0, "hard": 30.0},
                                   {"easy": 20.0, "hard": 21.0})):
        run.table = table(missing)
    rows = first_vs_costliest(runs, smooth=1)
    assert [(r.seed, r.first, r.costliest, r.agree) for r in rows] == [
        (0, "easy", "easy", True), (1, "easy", "hard", False), (2, "easy", "easy", True)]
    flat = run_with_history("joint_unimodal_heads", 0, {"loss_uni_easy": [1.0] * 20, "loss_uni_hard": [1.0] * 20})
    assert first_vs_costliest([flat], smooth=1)[0].first is None and not first_vs_costliest([flat], smooth=1)[0].agree
    mae = run_with_history("joint_unimodal_heads", 0, {"loss_uni_easy": [1.0] * 20, "loss_uni_hard": [1.0] * 20})
    mae.table = table({"easy": 2.0, "hard": 3.0}, metric="mae")      # lower is better: hard's absence costs most
    assert first_vs_costliest([mae], smooth=1)[0].costliest == "hard"
    with pytest.raises(ValueError, match="record=True"):
        first_vs_costliest([run_with_history("joint_unimodal_heads", 0, {})])


def test_shortfall_is_the_ceiling_minus_the_joint_model_left_with_only_that_modality():
    # joint with hard missing = only easy left; with easy missing = only hard left
    joint = [table({"easy": 30.0, "hard": 26.0}), table({"easy": 34.0, "hard": 25.0}), table({"easy": 32.0, "hard": 27.0})]
    easy_alone = [table({}, full=f) for f in (26.0, 25.5, 26.5)]
    hard_alone = [table({}, full=f) for f in (44.0, 45.0, 43.0)]
    assert only_left(joint[0], "easy") == 26.0 and only_left(joint[0], "hard") == 30.0
    assert shortfalls(hard_alone, joint, "hard") == pytest.approx([14.0, 11.0, 11.0])
    assert shortfalls(easy_alone, joint, "easy") == pytest.approx([0.0, 0.5, -0.5])
    hard = shortfall(hard_alone, joint, "hard")
    assert hard.mean == pytest.approx(12.0) and hard.low < 12.0 < hard.high and hard.verdict == DIFFERS
    assert shortfall(hard_alone[:1], joint[:1], "hard").verdict == TOO_FEW
    leaning = leaned_on({"easy": easy_alone, "hard": hard_alone}, joint)
    assert leaning.modality == "easy" and leaning.difference.mean == pytest.approx(-12.0)
    assert leaning.shortfalls["hard"] == hard
    # the shortfalls do not differ: no modality is named
    even = [table({"easy": 30.0, "hard": 40.0}, full=70.0), table({"easy": 31.0, "hard": 39.0}, full=70.0),
            table({"easy": 29.0, "hard": 41.0}, full=70.0)]
    both_alone = {"easy": [table({}, full=f) for f in (41.0, 38.0, 42.0)],
                  "hard": [table({}, full=f) for f in (30.0, 32.0, 28.0)]}
    assert leaned_on(both_alone, even).modality is None
    # MAE: lower is better, so a shortfall is the joint model's error minus the ceiling's
    mae = [table({"easy": 1.1, "hard": 0.8}, full=0.4, metric="mae")]
    assert shortfalls([table({}, full=0.9, metric="mae")], mae, "hard") == pytest.approx([0.2])
    # Runs are read through their table
    runs = [Run("joint", 0, None, joint[0])]
    assert shortfalls([Run("unimodal_hard", 0, None, hard_alone[0])], runs, "hard") == pytest.approx([14.0])


def test_shortfall_rejects_what_it_cannot_pair():
    joint = [table({"easy": 30.0, "hard": 26.0})]
    with pytest.raises(ValueError, match="pair them by seed"):
        shortfalls([table({}, full=40.0)] * 2, joint, "hard")
    with pytest.raises(ValueError, match="two-modality table"):
        shortfalls([table({}, full=40.0)], [table({"a": 1.0, "b": 2.0, "c": 3.0})], "a")
    with pytest.raises(ValueError, match="two-modality table"):
        only_left(joint[0], "audio")
    with pytest.raises(ValueError, match="Runs or ImpairmentTables"):
        shortfalls([], joint, "hard")
    with pytest.raises(ValueError, match="exactly two modalities"):
        leaned_on({"easy": joint}, joint)
