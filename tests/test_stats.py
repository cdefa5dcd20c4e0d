"""The kit's one statistics rule (modbal_lib.stats), checked against known numbers and scipy."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from modbal_lib import stats
from modbal_lib.evaluate import ImpairmentTable


def test_summary_uses_the_sample_sd():
    assert stats.summarize([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)
    assert stats.summarize([60.0, 62.0, 64.0]).text() == "62.0 ± 2.0 (n=3)"
    assert stats.summarize([5.0]).text(2) == "5.00 ± 0.00 (n=1)"  # one seed: no spread to report
    assert stats.summarize([{"x": 1.0}, {"x": 3.0}], lambda v: v["x"]) == (2.0, pytest.approx(2 ** 0.5), 2)


@pytest.mark.parametrize("values", [[], [1.0, float("nan")], [float("inf")]])
def test_summary_refuses_empty_or_non_finite_values(values):
    with pytest.raises(ValueError, match="summarize"):
        stats.summarize(values)


def test_paired_interval_is_scipys_t_interval():
    a = np.array([3.1, 2.0, 4.5, 3.3, 2.8])
    b = np.array([2.0, 2.2, 3.0, 2.9, 2.1])
    d = a - b
    half = scipy_stats.t.ppf(0.975, df=4) * d.std(ddof=1) / np.sqrt(5)
    difference = stats.paired_difference(a, b)
    assert difference.mean == pytest.approx(0.7)
    assert (difference.low, difference.high) == (pytest.approx(0.7 - half), pytest.approx(0.7 + half))
    assert difference.low == pytest.approx(-0.10946589, abs=1e-7) and difference.verdict == stats.WITHIN_NOISE
    assert difference.text() == "+0.7 [-0.1, +1.5] (n=5), within seed noise"


def test_paired_differences_that_exclude_zero_differ():
    difference = stats.paired_difference([1, 2, 3, 4], [0, 0, 0, 0])
    assert difference.verdict == stats.DIFFERS and difference.differs
    assert difference.low == pytest.approx(2.5 - scipy_stats.t.ppf(0.975, 3) * np.std([1, 2, 3, 4], ddof=1) / 2)
    # the pairing matters: the same values unpaired would overlap heavily
    assert stats.paired_difference([10.1, 20.1, 30.1], [10.0, 20.0, 30.0]).verdict == stats.DIFFERS


def test_too_few_seeds_whatever_the_interval():
    assert stats.paired_difference([5.0, 6.0], [0.0, 0.0]).verdict == stats.TOO_FEW
    assert stats.paired_difference([5.0], [0.0]).verdict == stats.TOO_FEW
    assert stats.verdict(1.0, 2.0, 2) == stats.TOO_FEW and stats.verdict(1.0, 2.0, 3) == stats.DIFFERS
    assert stats.verdict(-1.0, 2.0, 10) == stats.WITHIN_NOISE


def test_identical_differences_give_a_point_interval():
    difference = stats.paired_difference([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert (difference.mean, difference.low, difference.high) == (1.0, 1.0, 1.0)
    assert difference.verdict == stats.DIFFERS
    assert stats.paired_difference([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]).verdict == stats.WITHIN_NOISE


def test_paired_difference_needs_pairs_and_takes_a_pick():
    with pytest.raises(ValueError, match="pair them seed by seed"):
        stats.paired_difference([1.0, 2.0], [1.0])
    runs = {"a": [{"gap": 3.0}, {"gap": 4.0}, {"gap": 5.0}], "b": [{"gap": 1.0}, {"gap": 1.5}, {"gap": 2.5}]}
    assert stats.paired_difference(runs["a"], runs["b"], lambda run: run["gap"]).mean == pytest.approx(7 / 3)


def test_markdown_table():
    text = stats.markdown_table(["setting", "dominant"], [["raw", "image"], ["L2", "text"]])
    assert text.splitlines() == ["| setting | dominant |", "|---|---|", "| raw | image |", "| L2 | text |"]
    assert stats.markdown_table(["a|b"], [["c"]]).splitlines()[0] == "| a\\|b |"
    with pytest.raises(ValueError, match="has 1 cells, the header has 2"):
        stats.markdown_table(["a", "b"], [["x"]])


def table(full, image, text, metric="accuracy"):
    return ImpairmentTable(metric, full, {"image": image, "text": text}, {"image": image + 1, "text": text + 1})


def test_table1_layout_marks_and_footnote():
    columns = {"joint": [table(80, 40, 70), table(82, 42, 72), table(81, 41, 71)],
               "balgrad": [table(81, 55, 70), table(83, 57, 71), table(80, 56, 69)]}
    lines = stats.table1(columns).splitlines()
    assert lines[0] == "| accuracy | joint | balgrad |"
    assert [line.split("|")[1].strip() for line in lines[2:11]] == [
        "Full", "missing image", "missing text", "missing Avg", "missing DeltaGap",
        "noisy image", "noisy text", "noisy Avg", "noisy DeltaGap"]
    assert lines[2] == "| Full | _81.00 ± 1.00_ | **81.33 ± 1.53** |"  # highest accuracy bold
    assert lines[6] == "| missing DeltaGap | _30.00 ± 0.00_ | **14.00 ± 1.00** |"  # lowest DeltaGap bold
    assert lines[-1] == "Cells: mean ± sample SD over n seeds, n = 3; best **bold**, second _italic_."
    mae = {"a": [table(0.5, 0.9, 0.6, "mae")] * 2, "b": [table(0.4, 0.8, 0.7, "mae")] * 2}
    assert stats.table1(mae).splitlines()[2] == "| mae | _0.50 ± 0.00_ | **0.40 ± 0.00** |".replace("| mae", "| Full")


def test_ranks_follow_the_direction_of_each_row():
    assert stats.ranks({"a": 70.0, "b": 90.0, "c": 80.0, "d": 90.0}, lower_is_better=False) == {"a": 4, "b": 1, "c": 3, "d": 1}
    assert stats.ranks({"a": 70.0, "b": 90.0, "c": 80.0}, lower_is_better=True) == {"a": 1, "b": 3, "c": 2}


def test_impairment_table_round_trips_through_json():
    original = table(80.0, 40.0, 70.0)
    original.ratio_sweep = {"image": {0.2: 75.0, 0.8: 50.0}}
    assert ImpairmentTable.from_dict(original.as_dict()) == original
    assert ImpairmentTable.from_dict(original.as_dict()).missing_delta_gap == original.missing_delta_gap == 30.0


def test_against_is_the_paired_difference_with_a_fixed_value():
    values = [1.9, 2.05, 2.1]
    assert stats.against(values, 2.0) == stats.paired_difference(values, [2.0, 2.0, 2.0])
    assert stats.against([0.5, 0.7, 0.6]).differs and stats.against((v for v in [1.0, 2.0])).verdict == stats.TOO_FEW
