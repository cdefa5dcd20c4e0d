"""The see-saw lab (chapter 2): knobs of SeeSaw -> per-modality training curves and missing-modality table."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from modbal_lib.whatif import SEESAW_LAB_SMOOTH, seesaw_lab


@pytest.fixture(autouse=True, scope="module")
def close_figures():
    yield
    plt.close("all")


def lab(**knobs):
    figure, numbers = seesaw_lab(**knobs)
    plt.close(figure)
    return numbers


@pytest.fixture(scope="module")
def default_lab():
    figure, numbers = seesaw_lab()
    yield figure, numbers
    plt.close(figure)


def test_default_world_shows_the_see_saw(default_lab):
    _, numbers = default_lab
    assert numbers["knobs"]["easy"] == {"dim": 8, "coarse": 4.0, "fine": 0.0, "noise": 1.0}
    assert numbers["knobs"]["hard"]["dim"] == 32
    ceiling, missing = numbers["ceiling"], numbers["missing"]
    assert ceiling["hard"] > ceiling["easy"] + 8                 # hard alone is the better modality ...
    assert numbers["full"] > ceiling["hard"] + 25                # ... both together are far better ...
    assert missing["easy"] < ceiling["hard"] - 4                 # ... yet without easy the joint model is worse than hard alone
    assert numbers["shortfall"]["hard"] == pytest.approx(ceiling["hard"] - missing["easy"])
    assert numbers["shortfall"]["hard"] > numbers["shortfall"]["easy"] + 4
    assert numbers["delta_gap"] == pytest.approx(abs(missing["easy"] - missing["hard"]))
    assert numbers["halfway"]["easy"] < numbers["halfway"]["hard"]  # easy is learned first


def test_curves_cover_training_and_accuracy_is_in_percent(default_lab):
    _, numbers = default_lab
    iterations = 5 * -(-2800 // 128)
    assert set(numbers["curves"]) == {"loss_uni_easy", "acc_uni_easy", "loss_uni_hard", "acc_uni_hard"}
    for curve in numbers["curves"].values():
        assert curve.shape == (iterations - SEESAW_LAB_SMOOTH + 1,)
    assert numbers["curves"]["loss_uni_easy"][-1] < numbers["curves"]["loss_uni_easy"][0] - 0.5
    assert 15 < numbers["curves"]["acc_uni_easy"][-1] <= 100 and numbers["curves"]["acc_uni_hard"].max() > 20


def test_a_louder_easy_modality_costs_more_when_it_is_missing():
    quiet, loud = lab(easy_coarse=1.0), lab(easy_coarse=8.0)
    drop = {name: n["full"] - n["missing"]["easy"] for name, n in (("quiet", quiet), ("loud", loud))}
    assert drop["loud"] > drop["quiet"] + 20
    assert loud["shortfall"]["hard"] > quiet["shortfall"]["hard"] + 5
    assert loud["ceiling"]["hard"] == pytest.approx(quiet["ceiling"]["hard"])  # hard's data did not change


def test_a_stronger_group_cue_in_hard_is_learned_after_all(default_lab):
    _, faint = default_lab
    strong = lab(hard_coarse=3.0)
    assert strong["missing"]["easy"] > faint["missing"]["easy"] + 20
    assert strong["shortfall"]["hard"] < faint["shortfall"]["hard"]


def test_lab_is_deterministic_and_noise_and_dimension_are_used():
    first, again = lab(epochs=1), lab(epochs=1)
    assert first["full"] == again["full"] and first["ceiling"] == again["ceiling"]
    np.testing.assert_array_equal(first["curves"]["loss_uni_hard"], again["curves"]["loss_uni_hard"])
    noisy = lab(epochs=1, noise=3.0, dim=8)
    assert noisy["knobs"]["hard"]["dim"] == 8 and noisy["knobs"]["easy"]["noise"] == 3.0
    assert noisy["full"] < first["full"] - 10


def test_figure_has_curves_and_the_missing_modality_bars(default_lab):
    figure, numbers = default_lab
    loss_axis, acc_axis, bar_axis = figure.axes
    assert loss_axis.get_xlabel() == acc_axis.get_xlabel() == "iteration"
    assert "loss" in loss_axis.get_title() and "accuracy" in acc_axis.get_ylabel()
    assert [line.get_label() for line in acc_axis.get_lines()] == ["easy", "hard"]
    np.testing.assert_allclose(acc_axis.get_lines()[1].get_ydata(), numbers["curves"]["acc_uni_hard"])
    heights = [patch.get_height() for patch in bar_axis.patches]
    expected = [numbers["missing"]["hard"], numbers["missing"]["easy"], numbers["ceiling"]["easy"], numbers["ceiling"]["hard"]]
    np.testing.assert_allclose(heights, expected)
    assert [tick.get_text() for tick in bar_axis.get_xticklabels()] == ["only easy left", "only hard left"]


def test_bad_knobs_are_named():
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        seesaw_lab(epochs=0)
    with pytest.raises(ValueError, match="noise >= 0"):
        seesaw_lab(noise=-1.0)
    with pytest.raises(ValueError, match="dim >= 1"):
        seesaw_lab(dim=0)
