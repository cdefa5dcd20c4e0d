"""What-if labs: pure functions from a few knobs to a figure and its numbers, fast enough to play with.

Each lab is deterministic (same arguments, same figure and numbers) and runs in seconds on a laptop
CPU on data that ships with the package. A chapter calls it once with defaults (a plain figure) and
then wraps the same function in an ipywidgets panel.

- ``taylor_lab`` (chapter 3): step size and fusion type -> BalGrad Proposition 1's first-order
  prediction of the loss change against the actual change.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from modbal_lib.features import load_features
from modbal_lib.models import FUSIONS
from modbal_lib.theory import classifier_split, cross_term, loglog_slope, proposition1_check
from modbal_lib.train import train

TAYLOR_STEP_SIZES = np.logspace(-4, 1, 21)  # the curve: λ from 1e-4 to 10
TAYLOR_BATCH = 256                           # samples the loss change is measured on


def taylor_lab(step_size: float, fusion: str, seed: int = 0):
    """Predicted vs actual loss change of one gradient step of size ``step_size`` (BalGrad Proposition 1).

    A small late-fusion model (hidden width 32, ``fusion`` = concat | sum | attention) is trained for
    two epochs on 1,400 SeeSaw samples (training seed ``seed``); then, on a fixed batch of 256, every
    parameter takes the step θ ← θ − λ g and the actual ΔL is compared with the first-order
    prediction −λ(sum_m |g_m|² + |sum_m g_T^m|² + |g_other|²) (``theory.proposition1_check``), at
    ``step_size`` and over λ = 1e-4..10.

    Returns ``(figure, numbers)``. The figure: left, the loss change per unit step ΔL/λ against λ
    (the prediction is the flat line −‖g‖²; the actual change meets it as λ -> 0 and leaves it as
    λ grows; ``step_size`` marked); right, |actual − predicted| against λ on log-log axes with a slope-2
    guide. ``numbers``: ``step_size``, ``fusion``, ``predicted``, ``actual``, ``residual`` and
    ``relative_error`` (|residual / predicted|) at ``step_size``; ``slope`` (log-log slope of the
    residual over the curve's λ ≤ 0.1), ``cross_relative`` (g_T^a·g_T^b relative to
    |g_T^a||g_T^b|: 0 under concat), ``grad_norm_squared`` (‖g‖²); and the curve itself,
    ``step_sizes``, ``curve_predicted``, ``curve_actual`` (numpy arrays).
    """
    if not step_size > 0:
        raise ValueError(f"taylor_lab: step_size must be positive, got {step_size}")
    if fusion not in FUSIONS:
        raise ValueError(f"taylor_lab: fusion must be one of {FUSIONS}, got {fusion!r}")
    features = load_features("seesaw", "train", num_samples=2000)
    model = train(features, "joint", epochs=2, hidden=32, fusion=fusion, seed=seed, device="cpu",
                  record=False, show_progress=False).model
    inputs = {m: x[:TAYLOR_BATCH] for m, x in features.features.items()}
    labels = features.labels[:TAYLOR_BATCH]
    curve = proposition1_check(model, inputs, labels, features.task, TAYLOR_STEP_SIZES)
    chosen = proposition1_check(model, inputs, labels, features.task, [step_size])
    small = curve.step_sizes <= 0.1
    numbers = {
        "step_size": float(step_size),
        "fusion": fusion,
        "predicted": float(chosen.predicted[0]),
        "actual": float(chosen.actual[0]),
        "residual": float(chosen.residual[0]),
        "relative_error": float(abs(chosen.residual[0] / chosen.predicted[0])),
        "slope": loglog_slope(curve.step_sizes[small], curve.residual[small]),
        "cross_relative": cross_term(classifier_split(model, inputs, labels, features.task))["relative"],
        "grad_norm_squared": float(sum(curve.terms.values())),
        "step_sizes": curve.step_sizes,
        "curve_predicted": curve.predicted,
        "curve_actual": curve.actual,
    }
    return taylor_figure(numbers), numbers


def taylor_figure(numbers: dict):
    """The Taylor lab's two panels from its numbers (see ``taylor_lab``)."""
    step_sizes, step_size = numbers["step_sizes"], numbers["step_size"]
    residuals = np.abs(numbers["curve_actual"] - numbers["curve_predicted"])
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(step_sizes, numbers["curve_predicted"] / step_sizes, "-", label="first order: ΔL/λ = −‖g‖²")
    left.plot(step_sizes, numbers["curve_actual"] / step_sizes, "o", markersize=4, label="actual ΔL/λ")
    left.plot([step_size], [numbers["actual"] / step_size], "s", color="crimson", markersize=8,
              label=f"λ = {step_size:.3g}")
    left.axvline(step_size, color="crimson", linewidth=0.8, linestyle=":")
    left.axhline(0, color="black", linewidth=0.5)
    left.set_xscale("log")
    left.set_xlabel("step size λ")
    left.set_ylabel("loss change per unit step, ΔL / λ")
    left.set_title(f"{numbers['fusion']}: ΔL predicted {numbers['predicted']:.4g}, actual {numbers['actual']:.4g}",
                   fontsize=10)
    left.legend(fontsize=8)

    right.loglog(step_sizes, residuals, "o-", markersize=4, label="|actual − predicted|")
    right.loglog(step_sizes, residuals[0] * (step_sizes / step_sizes[0]) ** 2, "--", color="gray",
                 label="slope 2 (∝ λ²)")
    right.plot([step_size], [abs(numbers["residual"])], "s", color="crimson", markersize=8)
    right.axvline(step_size, color="crimson", linewidth=0.8, linestyle=":")
    right.set_ylim(residuals.min() / 3, residuals.max() * 3)
    right.set_xlabel("step size λ")
    right.set_ylabel("residual |ΔL − prediction|")
    right.set_title(f"residual: fitted slope {numbers['slope']:.2f} (λ ≤ 0.1)", fontsize=10)
    right.legend(fontsize=8)
    figure.tight_layout()
    return figure
