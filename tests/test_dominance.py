import numpy as np
import pytest
import torch

from modbal_lib.data.impair import chosen_indices
from modbal_lib.evaluate import ImpairmentTable
from modbal_lib.experiments import Run
from modbal_lib.features import FeatureSet, Impairment
from modbal_lib.dominance import (
    Dominance,
    dominant_modality,
    halfway_iteration,
    learns_first,
    rescore_missing,
    zero_vector_source,
)
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


