"""SeeSaw: the generative model, its knobs, and the see-saw it is built to show (checked with linear probes)."""

import time

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression

from modbal_lib.data import load, seesaw

C = 4  # default classes per group


def probe(train_x, train_y, test_x, test_y) -> float:
    """Test accuracy of a linear-discriminant probe: Bayes-optimal here (Gaussian classes, shared covariance)."""
    return LinearDiscriminantAnalysis().fit(train_x, train_y).score(test_x, test_y)


@pytest.fixture(scope="module")
def splits():
    return load("seesaw", "train"), load("seesaw", "test")


def test_shapes_splits_and_kinds(splits):
    train, test = splits
    val = load("seesaw", "val")
    assert (len(train), len(val), len(test)) == (7000, 1500, 1500)
    assert train.modalities == ("easy", "hard") and set(train.kinds.values()) == {"vector"}
    assert train.inputs["easy"].shape == (7000, 8) and train.inputs["hard"].shape == (7000, 32)
    assert train.inputs["easy"].dtype == np.float32 and train.labels.dtype == np.int64
    assert train.task == "multiclass" and len(train.class_names) == 16 and train.class_names[5] == "g1.c1"
    assert not np.isin(test.inputs["easy"][:, 0], train.inputs["easy"][:, 0]).any()  # disjoint samples
    assert np.bincount(train.labels, minlength=16).min() > 350  # classes are uniform


def test_generation_is_fast_seeded_and_repeatable():
    start = time.perf_counter()
    y, inputs = seesaw.generate(10_000, 4, 4, seesaw.resolve_knobs(2, None), seed=0)
    assert time.perf_counter() - start < 0.5
    assert len(y) == 10_000 and inputs["hard"].shape == (10_000, 32)
    again = load("seesaw", "test", seed=0).inputs["hard"]
    other = load("seesaw", "test", seed=1).inputs["hard"]
    assert np.array_equal(again, load("seesaw", "test").inputs["hard"]) and not np.allclose(again, other)


def test_samples_follow_the_generative_model():
    """x = a u_g + b v_c + sigma eps: the class means are the prototypes and the residual is sigma-noise."""
    knobs = {"easy": {"coarse": 2.0, "fine": 0.5, "noise": 0.3}}
    ds = load("seesaw", "train", knobs=knobs, num_samples=40_000)
    rng = np.random.default_rng(0)
    rng.integers(0, 16, size=40_000)  # the generator draws the labels first, then the prototypes
    both = seesaw.prototypes(rng, 8, 8)
    assert np.allclose(both @ both.T, np.eye(8), atol=1e-6)  # orthonormal since dim >= G + C
    x, y = ds.inputs["easy"], ds.labels
    for label in (0, 7, 13):
        mean = x[y == label].mean(0)
        assert np.allclose(mean, 2.0 * both[label // C] + 0.5 * both[4 + label % C], atol=0.05)
    residual = x - (2.0 * both[y // C] + 0.5 * both[4 + y % C])
    assert abs(residual.std() - 0.3) < 0.01


def test_easy_tells_the_group_hard_tells_the_class_within_it(splits):
    train, test = splits
    coarse = {m: probe(train.inputs[m], train.labels // C, test.inputs[m], test.labels // C) for m in train.modalities}
    fine = {m: probe(train.inputs[m], train.labels % C, test.inputs[m], test.labels % C) for m in train.modalities}
    assert coarse["easy"] > 0.95 and coarse["easy"] > coarse["hard"] + 0.3
    assert fine["hard"] > 0.7 and fine["easy"] < 0.3  # easy knows nothing within a group (chance 0.25)


def test_both_modalities_are_needed_and_the_joint_model_leans_on_easy(splits):
    train, test = splits
    alone = {m: probe(train.inputs[m], train.labels, test.inputs[m], test.labels) for m in train.modalities}
    assert probe(np.hstack([train.inputs["easy"], train.inputs["hard"]]), train.labels,
                 np.hstack([test.inputs["easy"], test.inputs["hard"]]), test.labels) > max(alone.values()) + 0.2

    # A discriminatively trained joint model (logistic regression) settles the groups with easy,
    # so it under-uses hard's faint group cue: with easy missing it does worse than hard alone.
    def logistic(*modalities):
        return LogisticRegression(max_iter=300, tol=1e-3).fit(np.hstack([train.inputs[m] for m in modalities]), train.labels)

    joint, hard_alone = logistic("easy", "hard"), logistic("hard")
    easy, hard = test.inputs["easy"], test.inputs["hard"]
    full = joint.score(np.hstack([easy, hard]), test.labels)
    easy_missing = joint.score(np.hstack([np.zeros_like(easy), hard]), test.labels)
    hard_missing = joint.score(np.hstack([easy, np.zeros_like(hard)]), test.labels)
    assert full - easy_missing > 0.3 and full - hard_missing > 0.3
    assert hard_alone.score(hard, test.labels) > easy_missing + 0.05


def test_regression_target_is_group_position_plus_offset(splits):
    train, test = splits  # the same samples as with target="regression"; their class labels help decode t
    regression = load("seesaw", "train", target="regression")
    y = train.labels
    assert regression.task == "regression" and regression.labels.dtype == np.float32 and regression.num_outputs == 1
    assert np.allclose(regression.labels, y // C + (y % C + 0.5) / C)
    assert np.array_equal(regression.inputs["hard"], train.inputs["hard"])
    t_of_class = (np.arange(16) + 0.5) / C
    t_test = t_of_class[test.labels]

    def mae(*modalities):
        """Error of E[t | x] under the linear-discriminant posterior fitted on the given modalities."""
        fit = LinearDiscriminantAnalysis().fit(np.hstack([train.inputs[m] for m in modalities]), y)
        t_hat = fit.predict_proba(np.hstack([test.inputs[m] for m in modalities])) @ t_of_class[fit.classes_]
        return np.abs(t_hat - t_test).mean()

    assert mae("easy", "hard") < 0.6 * min(mae("easy"), mae("hard"))


def test_three_modalities_and_knob_overrides():
    ds = load("seesaw", "train", num_modalities=3, knobs={"medium": {"dim": 5}})
    assert ds.modalities == ("easy", "medium", "hard") and ds.inputs["medium"].shape == (7000, 5)
    assert ds.options["knobs"]["medium"]["dim"] == 5 and ds.options["knobs"]["hard"] == seesaw.DEFAULT_KNOBS["hard"]
    # Which information a modality carries is a knob: without its coarse signal, hard cannot tell groups.
    train = load("seesaw", "train", knobs={"hard": {"coarse": 0.0}})
    test = load("seesaw", "test", knobs={"hard": {"coarse": 0.0}})
    assert probe(train.inputs["hard"], train.labels // C, test.inputs["hard"], test.labels // C) < 0.3


@pytest.mark.parametrize(
    "options, message",
    [
        ({"knobs": {"loud": {"dim": 3}}}, "unknown modality 'loud'.*'easy', 'hard'"),
        ({"knobs": {"easy": {"snr": 3}}}, r"unknown knob\(s\) \['snr'\].*'coarse'"),
        ({"knobs": {"easy": {"noise": -1}}}, "noise >= 0"),
        ({"target": "rank"}, "target='rank'.*'class', 'regression'"),
        ({"num_modalities": 4}, r"num_modalities=4.*\(2, 3\)"),
    ],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        load("seesaw", "train", **options)
