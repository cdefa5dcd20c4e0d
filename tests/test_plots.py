import numpy as np
import pytest
from PIL import Image

from modbal_lib.plots import (verdict_figure, gap_ratio_curve, ratio_delta_gap, loss_curve_figure, missing_ratio_figure, missing_ratio_gap_figure,
                              ratio_curve, save)

METHODS = ["joint", "ogm_ge", "unimodal_easy"]


def entry(mean, std=1.0):
    return {"mean": mean, "sd": std, "n": 3}


@pytest.fixture
def results():
    """A results.json-shaped dict with distinct, known numbers (sweep keys deliberately unsorted)."""
    methods = {}
    for offset, method in enumerate(METHODS):
        curves = {m: {"epoch": [0.5, 1.0, 1.5, 2.0], "mean": [1.0 + offset, 0.8, 0.6 - i, 0.5 - i], "sd": [0.1] * 4}
                  for i, m in enumerate(["easy", "hard"])}
        methods[method] = {
            "full": entry(90.0 - offset, 0.5),
            "missing": {"easy": entry(40.0 + offset, 2.0), "hard": entry(85.0 - offset), "avg": entry(0), "delta_gap": entry(0)},
            "ratio_sweep": {m: {"0.8": entry(base + 8), "0.2": entry(base + 2), "0.6": entry(base + 6), "0.4": entry(base + 4)}
                            for m, base in (("easy", 50.0 + offset), ("hard", 70.0 + offset))},
            "loss_curves": curves if method != "unimodal_easy" else {"easy": curves["easy"]},
        }
    return {"dataset": "seesaw", "modalities": ["easy", "hard"], "metric": "accuracy", "seeds": [0, 1], "methods": methods}


def test_ratio_curve_runs_from_full_to_missing(results):
    ratios, means, stds = ratio_curve(results["methods"]["ogm_ge"], "easy")
    assert ratios == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert means == [89.0, 53.0, 55.0, 57.0, 59.0, 41.0]
    assert stds == [0.5, 1.0, 1.0, 1.0, 1.0, 2.0]


def test_missing_ratio_figure_has_a_line_and_band_per_method(results):
    figure = missing_ratio_figure(results)
    axes = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in axes] == ["easy missing", "hard missing"]
    for axis, modality in zip(axes, ["easy", "hard"]):
        assert [line.get_label() for line in axis.get_lines()] == METHODS
        for line, method in zip(axis.get_lines(), METHODS):
            ratios, means, stds = ratio_curve(results["methods"][method], modality)
            np.testing.assert_allclose(line.get_xdata(), ratios)
            np.testing.assert_allclose(line.get_ydata(), means)
        bands = axis.collections
        assert len(bands) == len(METHODS)
        ys = bands[0].get_paths()[0].vertices[:, 1]  # joint's band spans mean ± std
        _, means, stds = ratio_curve(results["methods"]["joint"], modality)
        assert ys.min() == pytest.approx(min(m - s for m, s in zip(means, stds)))
        assert ys.max() == pytest.approx(max(m + s for m, s in zip(means, stds)))
    assert [text.get_text() for text in figure.legends[0].get_texts()] == METHODS
    assert axes[0].get_ylabel() == "accuracy"


def per_seed_run(easy: dict, hard: dict) -> dict:
    """One seed's table as results.json stores it (only what the DeltaGap curve reads; ratio keys are strings)."""
    return {"ratio_sweep": {"easy": {str(r): v for r, v in easy.items()}, "hard": {str(r): v for r, v in hard.items()}}}


@pytest.fixture
def gap_results():
    """Two seeds; at r = 0.2 the two seeds' gaps have opposite signs (so the gap of the mean scores, 1,
    differs from the mean of the per-seed gaps, 4)."""
    joint = {"runs": [per_seed_run({0.4: 70.0, 0.2: 80.0}, {0.4: 90.0, 0.2: 85.0}),    # gaps 5 (r=0.2), 20 (r=0.4)
                      per_seed_run({0.4: 60.0, 0.2: 88.0}, {0.4: 84.0, 0.2: 85.0})]}    # gaps 3, 24
    balanced = {"runs": [per_seed_run({0.2: 84.0, 0.4: 80.0}, {0.2: 85.0, 0.4: 82.0}),  # gaps 1, 2
                         per_seed_run({0.2: 84.0, 0.4: 80.0}, {0.2: 85.0, 0.4: 82.0})]}  # gaps 1, 2
    return {"dataset": "seesaw", "modalities": ["easy", "hard"], "metric": "accuracy", "seeds": [0, 1],
            "methods": {"joint": joint, "balanced": balanced}}


def test_gap_ratio_curve_is_the_per_seed_delta_gap_summarised_over_seeds(gap_results):
    ratios, means, sds = gap_ratio_curve(gap_results["methods"]["joint"], ["easy", "hard"])
    assert ratios == [0.2, 0.4]
    assert means == pytest.approx([4.0, 22.0])  # not 1.0 at r = 0.2: the gap is taken seed by seed
    assert sds == pytest.approx([np.std([5, 3], ddof=1), np.std([20, 24], ddof=1)])
    assert gap_ratio_curve(gap_results["methods"]["balanced"], ["hard", "easy"]) == ([0.2, 0.4], [1.0, 2.0], [0.0, 0.0])


def test_ratio_delta_gap_is_the_gap_of_one_seeds_scores_at_that_ratio():
    sweep = {"image": {0.2: 70.0, 0.4: 60.0}, "text": {0.2: 75.0, 0.4: 50.0}}
    assert ratio_delta_gap(sweep, 0.2) == 5.0 and ratio_delta_gap(sweep, 0.4) == 10.0
    assert ratio_delta_gap({**sweep, "audio": {0.2: 40.0, 0.4: 55.0}}, 0.2) == 35.0  # largest minus smallest


def test_gap_ratio_curve_rejects_runs_it_cannot_read(gap_results):
    joint = gap_results["methods"]["joint"]
    with pytest.raises(ValueError, match="no per-seed tables under 'runs'"):
        gap_ratio_curve({"ratio_sweep": {}}, ["easy", "hard"])
    with pytest.raises(ValueError, match="at least 2 modalities"):
        gap_ratio_curve(joint, ["easy"])
    with pytest.raises(ValueError, match=r"run 0 has no ratio_sweep for \['audio'\]"):
        gap_ratio_curve(joint, ["easy", "audio"])
    del joint["runs"][1]["ratio_sweep"]["hard"]["0.4"]
    with pytest.raises(ValueError, match=r"run 1, hard missing: ratios \[0.2\], expected \[0.2, 0.4\]"):
        gap_ratio_curve(joint, ["easy", "hard"])


def test_missing_ratio_gap_figure_draws_the_curves_of_the_chosen_methods(gap_results):
    figure = missing_ratio_gap_figure(gap_results)
    axis = figure.axes[0]
    assert [line.get_label() for line in axis.get_lines()] == ["joint", "balanced"]
    np.testing.assert_allclose(axis.get_lines()[0].get_xdata(), [0.2, 0.4])
    np.testing.assert_allclose(axis.get_lines()[0].get_ydata(), [4.0, 22.0])
    ys = axis.collections[0].get_paths()[0].vertices[:, 1]  # joint's band spans mean ± sample SD
    assert ys.min() == pytest.approx(4.0 - np.std([5, 3], ddof=1))
    assert ys.max() == pytest.approx(22.0 + np.std([20, 24], ddof=1))
    assert axis.get_ylabel() == "DeltaGap (accuracy points)"
    only = missing_ratio_gap_figure(gap_results, ["balanced"]).axes[0]
    assert [line.get_label() for line in only.get_lines()] == ["balanced"]
    with pytest.raises(ValueError, match=r"methods \['pcgrad'\] are not in the results"):
        missing_ratio_gap_figure(gap_results, ["joint", "pcgrad"])
    with pytest.raises(ValueError, match="at least one method"):
        missing_ratio_gap_figure(gap_results, [])


def test_loss_curve_figure_has_one_panel_per_method(results):
    figure = loss_curve_figure(results)
    axes = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in axes] == METHODS
    assert [len(axis.get_lines()) for axis in axes] == [2, 2, 1]  # a unimodal model has one modality
    line = axes[1].get_lines()[1]
    assert line.get_label() == "hard"
    np.testing.assert_allclose(line.get_xdata(), [0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(line.get_ydata(), results["methods"]["ogm_ge"]["loss_curves"]["hard"]["mean"])
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["easy", "hard"]


def test_loss_curve_figure_hides_unused_panels(results):
    for number in range(2):
        results["methods"][f"extra_{number}"] = results["methods"]["joint"]
    figure = loss_curve_figure(results)  # 5 methods: two rows of four panels, three unused
    assert len(figure.axes) == 8
    assert sum(axis.get_visible() for axis in figure.axes) == 5


def test_save_writes_a_png_of_the_figure_size(results, tmp_path):
    figure = missing_ratio_figure(results)
    path = save(figure, tmp_path / "figures" / "missing_ratio.png", dpi=50)
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        width, height = figure.get_size_inches() * 50
        assert picture.size == (round(width), round(height))
    assert [p.name for p in path.parent.iterdir()] == ["missing_ratio.png"]


def test_gradient_arrows_draw_one_arrow_and_legend_entry_per_vector():
    import matplotlib.pyplot as plt
    import torch

    from modbal_lib.plots import gradient_arrows

    figure, axis = plt.subplots()
    gradient_arrows(axis, [(torch.tensor([1.0, 0.0]), "C0", "-", "a"), (torch.tensor([0.0, 1.0]), "C1", "--", "b")],
                    title="t", xlim=(-1, 1), ylim=(-1, 1))
    assert len(axis.texts) == 2 and [t.get_text() for t in axis.get_legend().get_texts()] == ["a", "b"]
    assert axis.get_title() == "t" and axis.get_xlim() == (-1, 1)
    plt.close(figure)


def test_verdict_figure_stacks_each_papers_counts():
    counts = {"BalGrad": {"holds": 2, "does not hold": 1}, "GOAL": {"holds": 0, "does not hold": 3}}
    figure = verdict_figure(counts)
    bars = figure.axes[0].patches
    assert [(b.get_x(), b.get_width()) for b in bars] == [(0, 2), (0, 0), (2, 1), (0, 3)]
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["holds", "does not hold"]
    with pytest.raises(ValueError, match="no papers"):
        verdict_figure({})


def test_grouped_bars_figure_draws_means_sds_and_seeds_per_group():
    from modbal_lib.plots import grouped_bars_figure

    panels = {"missing ΔGap": {"concat": {"joint": [10.0, 14.0], "balgrad": [6.0, 8.0]},
                               "sum": {"joint": [20.0, 20.0], "balgrad": [1.0, 3.0]}},
              "Full": {"concat": {"joint": [80.0, 82.0], "balgrad": [79.0, 81.0]},
                       "sum": {"joint": [70.0, 74.0], "balgrad": [75.0, 75.0]}}}
    figure = grouped_bars_figure(panels, title="emoji", xlabel="fusion")
    assert [axis.get_title() for axis in figure.axes] == ["missing ΔGap", "Full"]
    axis = figure.axes[0]
    assert [label.get_text() for label in axis.get_xticklabels()] == ["concat", "sum"]
    bars = axis.patches
    assert len(bars) == 4  # two groups x two series, the series in order
    np.testing.assert_allclose([bar.get_height() for bar in bars], [12.0, 20.0, 7.0, 2.0])
    np.testing.assert_allclose([bar.get_x() + bar.get_width() / 2 for bar in bars], [-0.2, 0.8, 0.2, 1.2])
    from matplotlib.container import ErrorbarContainer

    errorbars = [collection for container in axis.containers if isinstance(container, ErrorbarContainer)
                 for collection in container.lines[2]]  # the vertical bars: mean ± SD
    segments = np.concatenate([collection.get_segments() for collection in errorbars])
    np.testing.assert_allclose(sorted(abs(s[1, 1] - s[0, 1]) for s in segments),
                               sorted(2 * np.array([np.std([10, 14], ddof=1), 0.0, np.std([6, 8], ddof=1),
                                                    np.std([1, 3], ddof=1)])))
    dots = [line for line in axis.get_lines() if line.get_marker() == "."]
    np.testing.assert_allclose(sorted(np.concatenate([d.get_ydata() for d in dots])), [1, 3, 6, 8, 10, 14, 20, 20])
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["joint", "balgrad"]
    assert figure.axes[1].get_xlabel() == "fusion"
    long_name = grouped_bars_figure({"ΔGap": {"EfficientNet-Lite0, frozen": {"joint": [1.0]}}}, title="t")
    assert [label.get_text() for label in long_name.axes[0].get_xticklabels()] == ["EfficientNet-Lite0,\nfrozen"]


def test_grouped_bars_figure_refuses_what_it_cannot_draw():
    from modbal_lib.plots import grouped_bars_figure

    with pytest.raises(ValueError, match="no panels"):
        grouped_bars_figure({}, title="t")
    with pytest.raises(ValueError, match="panel 'Full' has no groups"):
        grouped_bars_figure({"ΔGap": {"concat": {"joint": [1.0]}}, "Full": {}}, title="t")
    with pytest.raises(ValueError, match="group 'sum' has series \\['joint'\\], expected \\['joint', 'balgrad'\\]"):
        grouped_bars_figure({"ΔGap": {"concat": {"joint": [1.0], "balgrad": [2.0]}, "sum": {"joint": [1.0]}}},
                            title="t")
    with pytest.raises(ValueError, match="non-finite"):
        grouped_bars_figure({"ΔGap": {"concat": {"joint": [float("nan")]}}}, title="t")
