"""What-if labs: deterministic figures and numbers from a few knobs."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from modbal_lib.whatif import TAYLOR_STEP_SIZES, taylor_lab


@pytest.fixture(autouse=True, scope="module")
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def concat_lab():
    figure, numbers = taylor_lab(1e-3, "concat")
    yield figure, numbers
    plt.close(figure)


def test_taylor_lab_numbers_follow_proposition_1(concat_lab):
    _, numbers = concat_lab
    assert numbers["step_size"] == 1e-3 and numbers["fusion"] == "concat"
    assert numbers["predicted"] == pytest.approx(-1e-3 * numbers["grad_norm_squared"])
    assert numbers["predicted"] < 0 and numbers["actual"] < 0
    assert numbers["relative_error"] < 1e-2
    assert numbers["residual"] == pytest.approx(numbers["actual"] - numbers["predicted"])
    assert 1.8 <= numbers["slope"] <= 2.2
    assert numbers["cross_relative"] == 0.0
    assert len(numbers["step_sizes"]) == len(numbers["curve_actual"]) == len(TAYLOR_STEP_SIZES)
    np.testing.assert_allclose(numbers["curve_predicted"], -numbers["step_sizes"] * numbers["grad_norm_squared"])


def test_taylor_lab_error_grows_with_the_step_and_is_deterministic(concat_lab):
    _, small = concat_lab
    figure, large = taylor_lab(0.3, "concat")
    plt.close(figure)
    assert large["relative_error"] > 10 * small["relative_error"]
    np.testing.assert_array_equal(large["curve_actual"], small["curve_actual"])  # same model, same curve


def test_taylor_lab_figure_has_both_panels(concat_lab):
    figure, _ = concat_lab
    left, right = figure.axes
    assert left.get_xscale() == "log" and right.get_xscale() == "log" and right.get_yscale() == "log"
    assert "λ" in left.get_xlabel() and "residual" in right.get_ylabel()
    labels = [line.get_label() for line in left.get_lines()]
    assert any("first order" in label for label in labels) and any("actual" in label for label in labels)
    assert len(right.get_lines()[0].get_xdata()) == len(TAYLOR_STEP_SIZES)


def test_taylor_lab_sum_fusion_has_a_cross_term():
    figure, numbers = taylor_lab(1e-2, "sum")
    plt.close(figure)
    assert abs(numbers["cross_relative"]) > 0.01
    assert 1.8 <= numbers["slope"] <= 2.2


def test_taylor_lab_rejects_bad_knobs():
    with pytest.raises(ValueError, match="step_size must be positive"):
        taylor_lab(0.0, "concat")
    with pytest.raises(ValueError, match="fusion must be one of"):
        taylor_lab(0.1, "product")
