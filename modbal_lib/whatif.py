"""What-if labs: pure functions from a few knobs to a figure and its numbers, fast enough to play with.

Each lab is deterministic (same arguments, same figure and numbers) and runs in seconds on a laptop
CPU on data that ships with the package. A chapter calls it once with defaults (a plain figure) and
then shows its panel (``taylor_panel``, ``seesaw_panel``, ``method_panel``): the same function behind
ipywidgets controls, re-run and redrawn when a control changes (the Taylor lab) or when **Run** is
pressed (the labs that train).

- ``taylor_lab`` (chapter 3): step size and fusion type -> BalGrad Proposition 1's first-order
  prediction of the loss change against the actual change.
- ``seesaw_lab`` (chapter 2): SeeSaw's signal strengths, noise and dimension -> each modality's
  loss and accuracy during joint training, and the missing-modality scores beside the unimodal
  ceilings.
- ``method_lab`` (chapter 7): a method and its own options (the panel shows BalGrad's gamma and schedule,
  CGGM's rho, lambda and variant, GOAL's T and AL/GO switches) on emoji or SeeSaw -> each modality's
  loss against joint training's, the impairment table, and what the method's gradient edits did.
"""

from __future__ import annotations

import contextlib
import functools
import io

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython import get_ipython

from modbal_lib.claims import ledger_markdown
from modbal_lib.data import seesaw
from modbal_lib.evaluate import evaluate, predict_score
from modbal_lib.experiments import Experiment, check_comparison, prepared_options
from modbal_lib.methods import METHODS, option_defaults
from modbal_lib.methods.balgrad import SCHEDULE_UNITS
from modbal_lib.methods.cggm import VARIANTS as CGGM_VARIANTS
from modbal_lib.features import load_features
from modbal_lib.models import FUSIONS
from modbal_lib.dominance import halfway_iteration
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


# --- See-saw lab (chapter 2) ---------------------------------------------------------------------

SEESAW_LAB_SAMPLES = 4000  # SeeSaw samples the lab draws (2,800 to train on, 600 to test on)
SEESAW_LAB_SMOOTH = 10     # running-mean window of the training curves, in iterations
SEESAW_COLORS = {"easy": "tab:orange", "hard": "tab:blue"}


def seesaw_lab(easy_coarse: float = 4.0, hard_fine: float = 2.0, hard_coarse: float = 1.0, noise: float = 1.0,
               dim: int = 32, epochs: int = 5, seed: int = 0):
    """Train on a SeeSaw world with these knobs and see which modality the joint model learned.

    The knobs (``modbal_lib.data.seesaw``; x_m = a_m u_{m,g} + b_m v_{m,c} + σ ε): ``easy_coarse``
    a_easy, how loudly ``easy`` tells the group (it tells nothing else); ``hard_fine`` b_hard, how
    loudly ``hard`` tells the class within the group; ``hard_coarse`` a_hard, hard's own (faint) group
    cue; ``noise`` σ of both modalities; ``dim`` D_hard, the dimension of ``hard`` (``easy`` keeps 8).
    The lab draws 4,000 samples (data seed 0) and trains, for ``epochs`` epochs with training seed
    ``seed`` on the CPU, a joint late-fusion model and one unimodal model per modality.

    Returns ``(figure, numbers)``. The figure: left and middle, each modality's own loss and accuracy
    during joint training (its additive share of the fused logits, ``LateFusion.probe_logits``), with
    the iteration at which each loss made half its drop; right, per modality, the joint model's test
    accuracy when only that modality is left (the other missing) beside that modality's ceiling (the
    unimodal model's accuracy), and the joint model's Full accuracy. ``numbers``: ``knobs`` (all
    SeeSaw knobs used), ``full``, ``missing`` {m: accuracy with m missing}, ``delta_gap``, ``ceiling``
    {m: unimodal accuracy}, ``shortfall`` {m: ceiling[m] minus the joint accuracy with only m left:
    what the joint model failed to learn from m}, ``halfway`` {m: ``dominance.halfway_iteration`` of m's
    loss, None if it did not fall} and ``curves`` {``loss_uni_<m>``, ``acc_uni_<m>`` (percent): the
    smoothed curves as numpy arrays}.
    """
    if int(epochs) < 1:
        raise ValueError(f"seesaw_lab: epochs must be at least 1, got {epochs}")
    knobs = seesaw.resolve_knobs(2, {"easy": {"coarse": easy_coarse, "noise": noise},
                                     "hard": {"coarse": hard_coarse, "fine": hard_fine, "noise": noise, "dim": int(dim)}})
    experiment = Experiment("seesaw", dataset_options={"knobs": knobs, "num_samples": SEESAW_LAB_SAMPLES})
    train_set, test_set = experiment.features("train"), experiment.features("test")
    options = {"epochs": int(epochs), "seed": seed, "device": "cpu", "show_progress": False}
    joint = train(train_set, "joint", **options)
    table = evaluate(joint.model, experiment.test_source(), ratios=(), noisy=False, seed=seed)
    ceiling = {m: predict_score(train(train_set, f"unimodal_{m}", record=False, **options).model, test_set)["accuracy"]
               for m in knobs}
    only_left = {"easy": table.missing["hard"], "hard": table.missing["easy"]}
    numbers = {
        "knobs": knobs,
        "full": table.full,
        "missing": dict(table.missing),
        "delta_gap": table.missing_delta_gap,
        "ceiling": ceiling,
        "shortfall": {m: ceiling[m] - only_left[m] for m in knobs},
        "halfway": {m: halfway_iteration(joint.history[f"loss_uni_{m}"], SEESAW_LAB_SMOOTH) for m in knobs},
        "curves": {f"{kind}_uni_{m}": joint.curve(f"{kind}_uni_{m}", SEESAW_LAB_SMOOTH) * (100 if kind == "acc" else 1)
                   for m in knobs for kind in ("loss", "acc")},
    }
    return seesaw_figure(numbers), numbers


def seesaw_figure(numbers: dict):
    """The see-saw lab's three panels from its numbers (see ``seesaw_lab``)."""
    figure, (loss_axis, acc_axis, bar_axis) = plt.subplots(1, 3, figsize=(14, 3.8))
    for m, color in SEESAW_COLORS.items():
        loss = numbers["curves"][f"loss_uni_{m}"]
        iterations = np.arange(len(loss)) + SEESAW_LAB_SMOOTH - 1
        loss_axis.plot(iterations, loss, color=color, label=m)
        acc_axis.plot(iterations, numbers["curves"][f"acc_uni_{m}"], color=color, label=m)
        if numbers["halfway"][m] is not None:
            loss_axis.axvline(numbers["halfway"][m], color=color, linestyle=":", linewidth=1)
    halfway = ", ".join(f"{m} {numbers['halfway'][m] if numbers['halfway'][m] is not None else '—'}" for m in SEESAW_COLORS)
    loss_axis.set_title(f"each modality's loss in the joint model\nhalf the drop at iteration: {halfway}", fontsize=10)
    loss_axis.set_xlabel("iteration")
    loss_axis.set_ylabel("cross-entropy of the modality's share")
    loss_axis.legend(fontsize=8)
    acc_axis.set_title("each modality's accuracy in the joint model (train batches)", fontsize=10)
    acc_axis.set_xlabel("iteration")
    acc_axis.set_ylabel("accuracy (%)")
    acc_axis.legend(fontsize=8)

    positions = np.arange(len(SEESAW_COLORS))
    only_left = [numbers["ceiling"][m] - numbers["shortfall"][m] for m in SEESAW_COLORS]
    ceilings = [numbers["ceiling"][m] for m in SEESAW_COLORS]
    colors = list(SEESAW_COLORS.values())
    joint_bars = bar_axis.bar(positions - 0.2, only_left, width=0.4, color=colors, label="joint model, only m left")
    alone_bars = bar_axis.bar(positions + 0.2, ceilings, width=0.4, color=colors, alpha=0.4, hatch="//",
                              label="m alone (unimodal ceiling)")
    bar_axis.bar_label(joint_bars, fmt="%.1f", fontsize=8)
    bar_axis.bar_label(alone_bars, fmt="%.1f", fontsize=8)
    bar_axis.axhline(numbers["full"], color="black", linestyle="--", linewidth=1, label="joint model, Full")
    bar_axis.set_xticks(positions, [f"only {m} left" for m in SEESAW_COLORS])
    bar_axis.set_ylim(0, 100)
    bar_axis.set_ylabel("test accuracy (%)")
    bar_axis.set_title(f"joint Full {numbers['full']:.1f}%, missing-modality ΔGap {numbers['delta_gap']:.1f}",
                       fontsize=10)
    bar_axis.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    return figure


# --- Method lab (chapter 7) ----------------------------------------------------------------------

METHOD_LAB_DATASETS = {"emoji": {}, "seesaw": {"num_samples": SEESAW_LAB_SAMPLES}}  # dataset -> its options
METHOD_LAB_EPOCHS = {"emoji": 15, "seesaw": 8}  # default epochs: a few seconds per method on a laptop CPU
METHOD_LAB_SMOOTH = 10                          # running-mean window of the curves, in iterations
# The options the lab shows, per method (names and defaults are the method's own: ``modbal_lib.methods``).
METHOD_LAB_KNOBS = {
    "balgrad": ("gamma", "schedule_unit"),
    "cggm": ("rho", "lam", "variant"),
    "goal": ("T", "adaptive_leveraging", "orthogonalization"),
}
# What each method's edits did, from its recorded scalars (history keys; ``{m}`` = each modality).
METHOD_LAB_TRACES = {
    "balgrad": ("conflict", "cos_task_kl"),
    "cggm": ("B_{m}",),
    "goal": ("conflict_before", "conflict_after"),
}


def lab_options(method: str, options: dict) -> dict:
    """The options ``method`` trains with in the lab: its own defaults for the options the lab shows
    (``METHOD_LAB_KNOBS``), under the ``options`` given (checked like any comparison's)."""
    check_comparison([method], {method: options} if options else {})
    defaults = option_defaults(method)
    return {**{option: defaults[option] for option in METHOD_LAB_KNOBS.get(method, ())}, **options}


def trace_keys(method: str, modalities) -> list[str]:
    """The history keys of ``method``'s gradient edits (``METHOD_LAB_TRACES``), or each branch's gradient
    norm for a method that records none."""
    keys = METHOD_LAB_TRACES.get(method, ("grad_norm_{m}",))
    return [key.format(m=m) for key in keys for m in (modalities if "{m}" in key else [None])]


@functools.lru_cache(maxsize=None)
def _lab_features(dataset: str, split: str, impairment=None):
    """The lab's feature sets (the training split, the clean and the thirteen impaired test sets), read from
    the cache once per process: a Run then spends its time training, not loading."""
    return Experiment(dataset, dataset_options=METHOD_LAB_DATASETS[dataset]).features(split, impairment)


@functools.lru_cache(maxsize=16)
def _lab_options(method: str, dataset: str, options: tuple) -> tuple:
    """``prepared_options`` once per process and setting (MSLR's learning-rate search does not depend on the
    training seed or the epochs), as sorted items."""
    prepared = prepared_options(method, {"device": "cpu", **dict(options)}, _lab_features(dataset, "train"))
    return tuple(sorted(prepared.items()))


@functools.lru_cache(maxsize=8)
def _lab_run(method: str, dataset: str, epochs: int, seed: int, options: tuple) -> dict:
    """Train ``method`` (options as sorted items) and score it; cached, so moving one knob retrains only the method."""
    train_set = _lab_features(dataset, "train")
    options = dict(_lab_options(method, dataset, options))
    result = train(train_set, method, epochs=epochs, seed=seed, show_progress=False, **options)
    table = evaluate(result.model, functools.partial(_lab_features, dataset, "test"), seed=0)
    keys = [f"loss_uni_{m}" for m in train_set.modalities] + trace_keys(method, train_set.modalities)
    return {"modalities": list(train_set.modalities), "table": table.as_dict(),
            "curves": {key: result.curve(key, METHOD_LAB_SMOOTH) for key in keys},
            "step_ms": 1000 * result.median_step_seconds}


def method_lab(method: str = "balgrad", dataset: str = "emoji", *, epochs: int | None = None, seed: int = 0,
               **options):
    """Train ``method`` with ``options`` on ``dataset`` and compare it with joint training.

    ``method``: any name of ``modbal_lib.methods`` (e.g. "balgrad", "cggm", "goal", "ogm_ge");
    ``options``: its own options by their own names, e.g. ``method_lab("goal", T=0.5,
    orthogonalization=False)`` (an unknown name or a wrong type is refused before anything trains).
    ``dataset``: "emoji" or "seesaw" (4,000 samples); ``epochs`` default 15 (emoji) or 8 (seesaw). Joint
    training with the same seed is the reference. Both train on the CPU with training seed ``seed``
    and are scored under the protocol with the test impairments of seed 0, so changing the seed
    changes only the training. Runs are cached in the process: moving one knob retrains only the method.

    Returns ``(figure, numbers)``. The figure: left, each modality's own loss during training, the
    method (solid) against joint (dashed); middle, Full and each modality missing or noisy, method
    against joint; right, what the method's edits did over training (BalGrad: the share of steps
    whose task and KL gradients conflict and their cosine; CGGM: the balancing terms B_m; GOAL:
    the share of conflicting branch-gradient pairs before and after GO; any other method: each
    branch's gradient norm). ``numbers``: ``method``, ``dataset``, ``options`` (``lab_options``: the
    options shown in the lab with the method's defaults, and those given), ``epochs``, ``seed``,
    ``table`` and ``joint`` (``ImpairmentTable.as_dict`` of the method and of joint training),
    ``delta_gap_change`` (the method's missing DeltaGap minus joint's), ``traces`` {key: mean over
    training of each trace of the right panel}, ``step_time_ratio`` (median step time over joint's:
    noisy on a busy machine) and ``curves`` {history key: the smoothed series, numpy arrays; joint's
    under ``joint_<key>``}.
    """
    if dataset not in METHOD_LAB_DATASETS:
        raise ValueError(f"method_lab: dataset must be one of {tuple(METHOD_LAB_DATASETS)}, got {dataset!r}")
    epochs = int(epochs or METHOD_LAB_EPOCHS[dataset])
    options = lab_options(method, options)
    run = _lab_run(method, dataset, epochs, seed, tuple(sorted(options.items())))
    joint = _lab_run("joint", dataset, epochs, seed, ())
    traces = trace_keys(method, run["modalities"])
    numbers = {
        "method": method, "dataset": dataset, "options": options, "epochs": epochs, "seed": seed,
        "modalities": run["modalities"], "table": run["table"], "joint": joint["table"],
        "delta_gap_change": run["table"]["missing"]["delta_gap"] - joint["table"]["missing"]["delta_gap"],
        "traces": {key: float(np.mean(run["curves"][key])) for key in traces},
        "step_time_ratio": run["step_ms"] / joint["step_ms"],
        "curves": {**run["curves"], **{f"joint_{key}": curve for key, curve in joint["curves"].items()
                                       if key.startswith("loss_uni_")}},
    }
    return method_figure(numbers), numbers


def method_figure(numbers: dict):
    """The method lab's three panels from its numbers (see ``method_lab``)."""
    method, modalities, curves = numbers["method"], numbers["modalities"], numbers["curves"]
    colors = dict(zip(modalities, ("tab:blue", "tab:orange", "tab:green")))
    figure, (loss_axis, table_axis, trace_axis) = plt.subplots(1, 3, figsize=(15, 3.9))
    for m in modalities:
        loss = curves[f"loss_uni_{m}"]
        iterations = np.arange(len(loss)) + METHOD_LAB_SMOOTH - 1
        loss_axis.plot(iterations, loss, color=colors[m], label=f"{m}: {method}")
        loss_axis.plot(iterations, curves[f"joint_loss_uni_{m}"], color=colors[m], linestyle="--", label=f"{m}: joint")
    loss_axis.set_xlabel("iteration")
    loss_axis.set_ylabel("the modality's own loss")
    loss_axis.set_title("each modality's loss during training", fontsize=10)
    loss_axis.legend(fontsize=8)

    rows = ["full"] + [(kind, m) for kind in ("missing", "noisy") for m in modalities]
    labels = ["Full"] + [f"{kind} {m}" for kind, m in rows[1:]]

    def values(table):
        return [table["full"]] + [table[kind][m] for kind, m in rows[1:]]

    positions = np.arange(len(rows))
    for offset, name, table, style in ((-0.2, method, numbers["table"], {}),
                                       (0.2, "joint", numbers["joint"], {"alpha": 0.45, "hatch": "//"})):
        bars = table_axis.bar(positions + offset, values(table), width=0.4, color="tab:purple", label=name, **style)
        table_axis.bar_label(bars, fmt="%.0f", fontsize=7)
    table_axis.set_xticks(positions, labels, rotation=30, ha="right", fontsize=8)
    table_axis.set_ylabel(f"test {numbers['table']['metric']}")
    table_axis.set_title(f"missing ΔGap: {method} {numbers['table']['missing']['delta_gap']:.1f}, "
                         f"joint {numbers['joint']['missing']['delta_gap']:.1f}", fontsize=10)
    table_axis.legend(fontsize=8)

    for key, mean in numbers["traces"].items():
        series = curves[key]
        trace_axis.plot(np.arange(len(series)) + METHOD_LAB_SMOOTH - 1, series, label=f"{key} (mean {mean:.2f})")
    trace_axis.axhline(0, color="black", linewidth=0.5)
    trace_axis.set_xlabel("iteration")
    edits = "its gradient edits" if method in METHOD_LAB_TRACES else "branch gradient norms (no gradient edits)"
    trace_axis.set_title(f"{method}: {edits}\nstep time {numbers['step_time_ratio']:.2f}× joint", fontsize=10)
    trace_axis.legend(fontsize=8)
    # fixed margins (room for the rotated bar labels): tight_layout measured every text and took 0.2 s of a Run
    figure.subplots_adjust(left=0.05, right=0.99, bottom=0.23, top=0.86, wspace=0.22)
    return figure


# --- Panels: the labs behind ipywidgets controls --------------------------------------------------

STYLE = {"style": {"description_width": "initial"}}  # show each control's whole description
SLIDER = {"continuous_update": False, **STYLE}        # sliders redraw on release, not while dragging


class Panel(widgets.interactive):
    """``lab`` behind one control per argument (``controls``: argument -> widget). Each run draws the
    lab's figure and ``summary(numbers)`` (after anything the lab itself printed) in the panel's output
    area and keeps the numbers in the panel's ``.result``. With ``run_button`` (the labs that train) it
    runs when **Run** is pressed, else at once and on every change. The controls stay reachable by
    argument name as ``.controls``.

    The output area's content is *set* (``Output.outputs``), never printed or ``display``-ed into it:
    a headless client (nbclient, so papermill and the book command) answers each output an Output widget
    captures with a comm message on the kernel's shell channel, sent through a blocking shadow of its
    asyncio socket while it waits on that socket for the cell's reply. When the two cross, the send
    swallows the socket's wake-up and the client waits for a reply it already holds: forever, with no
    timeout. The Taylor panel draws during its cell, so ``make book`` hung in chapter 3 about one run
    in two (tests/test_faults_book.py). Setting the state sends no message back.
    """

    def __init__(self, lab, summary, controls: dict, run_button: bool):
        self.lab, self.summary, self.controls = lab, summary, controls
        # clear_output=False: ``show`` replaces the whole output itself (a captured clear is sent back too)
        super().__init__(self.show, {"manual": run_button, "manual_name": "Run"}, clear_output=False, **controls)

    def show(self, **arguments) -> dict:
        with contextlib.redirect_stdout(io.StringIO()) as printed, contextlib.redirect_stderr(printed):
            figure, numbers = self.lab(**arguments)
        text = printed.getvalue() + self.summary(numbers) + "\n"
        self.out.outputs = (figure_output(figure), {"output_type": "stream", "name": "stdout", "text": text})
        plt.close(figure)
        return numbers


def figure_output(figure) -> dict:
    """``figure`` as the output ``display(figure)`` would make: in IPython its display formats (a PNG
    under the inline backend), elsewhere its text."""
    shell = get_ipython()
    data, metadata = shell.display_formatter.format(figure) if shell else ({"text/plain": repr(figure)}, {})
    return {"output_type": "display_data", "data": data, "metadata": metadata}


def taylor_panel() -> Panel:
    """The Taylor lab (chapter 3): step size and fusion; redraws on every change."""
    return Panel(
        taylor_lab,
        lambda n: (f"λ = {n['step_size']:.3g}, {n['fusion']}: predicted ΔL {n['predicted']:.5f}, actual "
                   f"{n['actual']:.5f}, relative error {n['relative_error']:.2%}, cross term (relative) "
                   f"{n['cross_relative']:.3f}"),
        {"step_size": widgets.FloatLogSlider(value=0.01, base=10, min=-4, max=1, step=0.25, description="step size λ",
                                             **SLIDER),
         "fusion": widgets.Dropdown(options=list(FUSIONS), value="concat", description="fusion", **STYLE)},
        run_button=False,
    )


def seesaw_panel() -> Panel:
    """The see-saw lab (chapter 2): SeeSaw's knobs, epochs and seed; runs on **Run** (three small trainings)."""
    def slider(kind, value, low, high, step, description):
        return kind(value=value, min=low, max=high, step=step, description=description, **SLIDER)

    return Panel(
        seesaw_lab,
        lambda n: (f"Full {n['full']:.1f}; missing {n['missing']}; ceilings {n['ceiling']}; shortfall "
                   f"{n['shortfall']}; half of the loss drop at iteration {n['halfway']}"),
        {"easy_coarse": slider(widgets.FloatSlider, 4.0, 0.0, 16.0, 0.5, "easy: group signal a"),
         "hard_fine": slider(widgets.FloatSlider, 2.0, 0.0, 4.0, 0.25, "hard: class signal b"),
         "hard_coarse": slider(widgets.FloatSlider, 1.0, 0.0, 4.0, 0.25, "hard: group signal a"),
         "noise": slider(widgets.FloatSlider, 1.0, 0.25, 3.0, 0.25, "noise σ (both)"),
         "dim": slider(widgets.IntSlider, 32, 4, 128, 4, "hard: dimension D"),
         "epochs": slider(widgets.IntSlider, 5, 1, 20, 1, "epochs"),
         "seed": slider(widgets.IntSlider, 0, 0, 9, 1, "training seed")},
        run_button=True,
    )


METHOD_PANEL_METHODS = tuple(name for name in METHODS if name != "joint")  # each is compared with joint


def knob_widget(method: str, option: str) -> widgets.Widget:
    """The control of one of ``METHOD_LAB_KNOBS``: starts at the method's default, labelled "method: option"."""
    value = option_defaults(method)[option]
    description = f"{method}: {option}"
    if isinstance(value, bool):
        return widgets.Checkbox(value=value, description=description, **STYLE)
    if isinstance(value, str):
        return widgets.Dropdown(options=KNOB_CHOICES[(method, option)], value=value, description=description, **STYLE)
    if (method, option) in LOG_KNOBS:
        return widgets.FloatLogSlider(value=value, base=10, min=-1, max=1, step=0.1, description=description, **SLIDER)
    low, high, step = KNOB_RANGES[(method, option)]
    return widgets.FloatSlider(value=value, min=low, max=high, step=step, description=description, **SLIDER)


KNOB_CHOICES = {("balgrad", "schedule_unit"): SCHEDULE_UNITS, ("cggm", "variant"): CGGM_VARIANTS}
KNOB_RANGES = {("balgrad", "gamma"): (0.0, 2.0, 0.1), ("cggm", "rho"): (0.0, 3.0, 0.1), ("cggm", "lam"): (0.0, 0.5, 0.01)}
LOG_KNOBS = {("goal", "T")}


def panel_method_lab(method: str, dataset: str, epochs: int, seed: int, **knobs):
    """``method_lab`` from the panel's controls: of the knobs (named ``<method>_<option>``), the chosen method's."""
    options = {option: knobs[f"{method}_{option}"] for option in METHOD_LAB_KNOBS.get(method, ())}
    return method_lab(method, dataset, epochs=epochs, seed=seed, **options)


def method_panel(method: str = "goal", dataset: str = "emoji") -> Panel:
    """The method lab (chapter 7): method, dataset, the knobs of BalGrad, CGGM and GOAL (``METHOD_LAB_KNOBS``,
    starting at each method's defaults), epochs and seed; runs on **Run**."""
    knobs = {f"{m}_{option}": knob_widget(m, option) for m, options in METHOD_LAB_KNOBS.items() for option in options}
    return Panel(
        panel_method_lab,
        lambda n: (f"{n['method']} {n['options']}: missing DeltaGap {n['table']['missing']['delta_gap']:.1f} (joint "
                   f"{n['joint']['missing']['delta_gap']:.1f}); Full {n['table']['full']:.1f} (joint "
                   f"{n['joint']['full']:.1f}); edits {', '.join(f'{k} {v:.2f}' for k, v in n['traces'].items())}"),
        {"method": widgets.Dropdown(options=METHOD_PANEL_METHODS, value=method, description="method", **STYLE),
         "dataset": widgets.Dropdown(options=list(METHOD_LAB_DATASETS), value=dataset, description="dataset", **STYLE),
         **knobs,
         "epochs": widgets.IntSlider(value=METHOD_LAB_EPOCHS[dataset], min=1, max=60, description="epochs", **SLIDER),
         "seed": widgets.IntSlider(value=0, min=0, max=9, description="training seed", **SLIDER)},
        run_button=True,
    )


class LedgerPanel(widgets.interactive):
    """The claims ledger (chapter 8) filtered by paper and verdict; like ``Panel``, it *sets* its output
    area's state (Markdown), so it runs under papermill without the Output-widget hang."""

    def __init__(self, rows: list):
        self.rows = rows
        papers = ("all",) + tuple(dict.fromkeys(row.claim.paper for row in rows))
        verdicts = ("all",) + tuple(dict.fromkeys(row.finding.verdict for row in rows))
        super().__init__(self.show, clear_output=False, paper=widgets.Dropdown(options=papers, description="paper"),
                         verdict=widgets.Dropdown(options=verdicts, description="verdict"))

    def show(self, paper: str, verdict: str) -> list:
        chosen = [row for row in self.rows
                  if paper in ("all", row.claim.paper) and verdict in ("all", row.finding.verdict)]
        text = ledger_markdown(chosen) if chosen else "No claim has this paper and verdict."
        self.out.outputs = ({"output_type": "display_data", "metadata": {},
                             "data": {"text/markdown": text, "text/plain": text}},)
        return chosen
