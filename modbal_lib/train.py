"""The training loop: batches, the method's step, the optimizer, and what happened at every iteration.

``train(features, method)`` returns a ``TrainResult`` whose ``history`` holds, per iteration:
``loss`` (the summed loss) and ``loss_<name>`` for each of the method's losses; ``loss_uni_<m>``
and ``acc_uni_<m>`` — each modality's own loss and accuracy, from the unimodal heads or, when
the model has none, from its additive share of the fused logits (``LateFusion.probe_logits``);
``grad_norm_<m>`` — the norm of the gradient reaching branch h_m after the method's edits; and
every scalar the method reports (weights, cosines, conflict flags).

Nothing in a step waits for the device: the step's scalars, the check that its losses and gradients
are finite and its timing stay on the device as tensors or CUDA events, and reach the host together
once per epoch (on a GPU every ``float(tensor)`` inside the step would stall it until the queued work
is done).

The first ``train`` in a process takes about a second longer (1.3 s on an idle 2-core machine): the
first ``torch.optim`` optimizer imports ``torch._dynamo`` (and with it ``torch._inductor``), because
``Optimizer.add_param_group`` is wrapped in ``torch._disable_dynamo``; ``utils.seed_everything``'s
``torch.use_deterministic_algorithms`` would import the same modules, so whichever runs first pays, once
per process. ``bench`` keeps it out of the step times with an untimed warm-up run. The determinism
switch changes no number of the kit on a CPU (the same histories and weights with it on or off, tested
for every method); on CUDA it makes index-accumulating backward kernels deterministic and, with
``CUBLAS_WORKSPACE_CONFIG=:4096:8``, cuBLAS's matrix products (without that variable PyTorch warns).
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from modbal_lib.featureset import FeatureSet
from modbal_lib.grads import grad_norm
from modbal_lib.methods import make
from modbal_lib.methods.base import Method, Step, task_loss
from modbal_lib.models import LateFusion
from modbal_lib.utils import cpu_threads as limit_cpu_threads
from modbal_lib.utils import progress, seed_everything, select_device

OPTIMIZERS = ("adam", "adamw", "sgd")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # autocast precisions of ``train(amp=True)``


class NonFiniteError(FloatingPointError):
    """A loss or a gradient became inf or NaN during training (raised at the first such step)."""


@dataclass
class TrainResult:
    model: LateFusion
    method: Method
    history: dict[str, list[float]]
    step_seconds: list[float]   # time of each training step (forward, backward, edits, optimizer): ``StepClock``
    peak_memory_mb: float       # CUDA: peak allocated; CPU: growth of the process's peak RSS during training
    config: dict = field(default_factory=dict)

    def curve(self, key: str, smooth: int = 1) -> np.ndarray:
        """A recorded series as an array, optionally smoothed by a running mean over ``smooth`` iterations."""
        values = np.asarray(self.history[key], dtype=float)
        if smooth <= 1:
            return values
        kernel = np.ones(smooth) / smooth
        return np.convolve(values, kernel, mode="valid")

    @property
    def median_step_seconds(self) -> float:
        return float(np.median(self.step_seconds))


def pooled_median_step_seconds(results: Sequence[TrainResult]) -> float:
    """The median step time (s) over all the steps of several runs taken together (a method's seeds, or its
    rounds in ``interleaved_step_seconds``): the cost tables' step time."""
    return float(np.median([t for result in results for t in result.step_seconds]))


def make_optimizer(param_groups: list[dict], name: str, lr: float, weight_decay: float, momentum: float):
    """Adam, AdamW or SGD (with momentum) over the method's parameter groups."""
    if name == "adam":
        return torch.optim.Adam(param_groups, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(param_groups, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(param_groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; expected one of {OPTIMIZERS}")


@torch.no_grad()
def modality_scores(model: LateFusion, output, labels: torch.Tensor, task: str) -> dict[str, torch.Tensor]:
    """Each modality's own loss (and accuracy for multiclass) on this batch, 0-dim tensors on the device."""
    per_modality = output.unimodal_logits or model.probe_logits(output.embeddings)
    scores = {}
    for m, logits in per_modality.items():
        logits = logits.float()
        scores[f"loss_uni_{m}"] = task_loss(task, logits, labels)
        if task == "multiclass":
            scores[f"acc_uni_{m}"] = (logits.argmax(dim=1) == labels).float().mean()
    return scores


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train(
    features: FeatureSet,
    method: Method | str = "joint",
    *,
    epochs: int = 10,
    batch_size: int = 128,
    optimizer: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    hidden: int = 128,
    fusion: str = "concat",
    seed: int = 0,
    device: str | torch.device | None = None,
    amp: bool | None = None,
    amp_dtype: str = "bf16",
    record: bool = True,
    show_progress: bool = True,
    cpu_threads: int | None = 1,
    **method_options,
) -> TrainResult:
    """Train a late-fusion model on ``features`` with ``method`` (a Method or a registered name).

    Same seed and device give identical numbers; the seed also seeds the method's own random draws
    (``Method.setup``). ``amp`` (default: on for CUDA) runs forward passes in autocast, in bfloat16
    (``amp_dtype="bf16"``) or float16 (``"fp16"``, without loss scaling).
    ``record=False`` skips the per-iteration history. The first step whose losses or gradients are
    not finite stops training with a ``NonFiniteError`` naming the method, epoch, iteration and the
    losses or parameters concerned (nothing is returned). On a CPU, training runs with
    ``cpu_threads`` torch threads (see ``modbal_lib.utils.cpu_threads``; ``None`` keeps torch's setting).
    """
    method = make(method, **method_options) if isinstance(method, str) else method
    device = select_device(device) if not isinstance(device, torch.device) else device
    amp = device.type == "cuda" if amp is None else amp
    if amp_dtype not in AMP_DTYPES:
        raise ValueError(f"amp_dtype={amp_dtype!r}: expected one of {', '.join(AMP_DTYPES)}")
    modalities = method.modalities or features.modalities
    missing = [m for m in modalities if m not in features.features]
    if missing:
        raise ValueError(f"method {method.name!r} needs modalities {missing}, the features have {features.modalities}")

    with limit_cpu_threads(cpu_threads if device.type == "cpu" else None):
        generator = seed_everything(seed)
        inputs = {m: features.features[m].to(device) for m in modalities}
        labels = features.labels.to(device)
        model = LateFusion(
            {m: tuple(inputs[m].shape[1:]) for m in modalities},
            num_outputs=1 if features.task == "regression" else len(features.class_names),
            hidden=hidden,
            fusion=fusion,
            unimodal_heads=method.unimodal_heads,
        ).to(device)
        method.setup(model, features, lr, seed=seed)
        opt = make_optimizer(method.param_groups(model, lr), optimizer, lr, weight_decay, momentum)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        rss_before = _peak_rss_mb()
        autocast = torch.autocast(device_type=device.type, dtype=AMP_DTYPES[amp_dtype]) if amp else contextlib.nullcontext()
        history, step_seconds = _fit(model, method, opt, inputs, labels, features.task, epochs, batch_size,
                                     generator, autocast, record, show_progress)
    model.eval()
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else _peak_rss_mb() - rss_before
    config = dict(method=method.name, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
                  weight_decay=weight_decay, momentum=momentum, hidden=hidden, fusion=fusion, seed=seed,
                  device=str(device), amp=amp, amp_dtype=amp_dtype, **method_options)
    return TrainResult(model, method, history, step_seconds, peak, config)


class StepClock:
    """Times each training step without waiting for the device.

    CPU with one torch thread (the trainer's default): the CPU time of the training thread during the
    step (``time.thread_time``), which is the step's wall time on an idle machine and which other jobs
    on a shared machine do not inflate, so step times measured at different moments compare fairly.
    CPU with several threads: wall time (``time.perf_counter``; the worker threads' CPU time would be
    missed). CUDA: the GPU time between two CUDA events recorded around the step, read once per epoch.
    """

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
        self.pending: list = []
        self.began = None

    def _now(self):
        if not self.cuda:
            return self.clock()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def start(self) -> None:
        self.began = self._now()

    def stop(self) -> None:
        self.pending.append((self.began, self._now()))

    def read(self) -> list[float]:
        """Seconds of every step since the last ``read`` (on CUDA: one wait for the last event)."""
        if self.cuda and self.pending:
            self.pending[-1][1].synchronize()
            seconds = [began.elapsed_time(ended) / 1000 for began, ended in self.pending]
        else:
            seconds = [ended - began for began, ended in self.pending]
        self.pending = []
        return seconds


def interleaved_step_seconds(features: FeatureSet, methods: dict[str, tuple[str, dict]], rounds: int,
                             **train_options) -> dict[str, list[TrainResult]]:
    """Time several methods' training steps in turn: ``rounds`` rounds, each one epoch of every method in
    the order given ({label: (method name, its options)}), round r with training seed r. Returns
    {label: its ``rounds`` TrainResults}; their ``step_seconds`` are the step times.

    A shared machine's speed drifts by tens of percent over minutes (other jobs, clock changes, caches);
    runs timed minutes apart then give step-time ratios that are off by as much. In turn, every method's
    steps fall within seconds of joint training's, so the drift slows them all alike. The cost tables of
    ``bench`` and ``gpucheck`` use it.
    """
    if rounds < 1:
        raise ValueError(f"interleaved_step_seconds: rounds={rounds}, expected at least 1")
    results: dict[str, list[TrainResult]] = {label: [] for label in methods}
    for round_ in range(rounds):
        for label, (method, options) in methods.items():
            results[label].append(train(features, method, epochs=1, seed=round_, show_progress=False,
                                        **{**train_options, **options}))
    return results


def finite_flags(model: LateFusion, losses: dict[str, torch.Tensor]) -> torch.Tensor:
    """Is each loss, then each parameter's gradient, finite: one bool tensor [losses + parameters] on the
    device, read by ``check_finite`` once per epoch. A gradient is finite when its sum in float64 is (inf
    and NaN propagate into a sum, and no float32 tensor's float64 sum overflows); a parameter without a
    gradient counts as finite."""
    zero = torch.zeros((), dtype=torch.float64, device=next(model.parameters()).device)
    values = [loss.double() for loss in losses.values()]
    values += [p.grad.sum(dtype=torch.float64) if p.grad is not None else zero for p in model.parameters()]
    return torch.stack(values).isfinite()


def check_finite(model, method, steps: list[tuple[int, dict]], flags: list[torch.Tensor], epoch, epochs) -> None:
    """Raise ``NonFiniteError`` for the first of this epoch's steps whose losses or gradients were not finite,
    naming its epoch, iteration, losses (with their values) and parameters. One transfer from the device.
    ``steps``: (iteration, the step's detached losses) per step; ``flags``: its ``finite_flags``."""
    if not flags:
        return
    all_flags = torch.stack(flags).cpu()
    bad_steps = (~all_flags.all(dim=1)).nonzero().flatten().tolist()
    if not bad_steps:
        return
    first = bad_steps[0]
    iteration, losses = steps[first]
    finite = all_flags[first].tolist()
    what = [f"loss {name!r} = {float(loss.float())}" for (name, loss), ok in zip(losses.items(), finite) if not ok]
    bad_grads = [name for (name, _), ok in zip(model.named_parameters(), finite[len(losses):]) if not ok]
    if bad_grads:
        what.append(f"gradient of {', '.join(bad_grads)}")
    raise NonFiniteError(
        f"training {method.name!r} stopped at epoch {epoch} (of epochs 0..{epochs - 1}), iteration {iteration} "
        f"(counted from 0 over the run): non-finite {'; '.join(what)}. "
        "Check the features for inf/NaN and try a smaller learning rate.")


def append_rows(history: dict[str, list[float]], rows: list[dict], device: torch.device) -> None:
    """Append an epoch of recorded rows (0-dim tensors or numbers) to ``history`` as Python floats: every
    tensor of the epoch reaches the host in ONE transfer (as float64, which holds every float32 and
    float16 value exactly)."""
    tensors = [value.double().reshape(()).to(device)
               for row in rows for value in row.values() if isinstance(value, torch.Tensor)]
    transferred = iter(torch.stack(tensors).tolist() if tensors else [])
    for row in rows:
        for key, value in row.items():
            history.setdefault(key, []).append(next(transferred) if isinstance(value, torch.Tensor) else float(value))


def _fit(model, method, opt, inputs, labels, task, epochs, batch_size, generator, autocast, record, show_progress):
    """The epochs of ``train``: returns (history, seconds of each step). Within an epoch nothing waits for the
    device; at its end the records, the finite check and the step times are read at once."""
    device = labels.device
    n = len(labels)
    iterations_per_epoch = -(-n // batch_size)
    total = epochs * iterations_per_epoch
    history: dict[str, list[float]] = {}
    step_seconds = []
    clock = StepClock(device)
    bar = progress(total=total, desc=f"train {method.name}") if show_progress else None
    iteration = 0
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator).to(device)
        steps, flags, rows = [], [], []
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            batch_inputs = {m: x[index] for m, x in inputs.items()}
            batch_labels = labels[index]
            clock.start()
            model.train()
            opt.zero_grad(set_to_none=True)
            with autocast:
                output = model(batch_inputs)
                step = Step(model, batch_inputs, batch_labels, task, output, iteration, epoch, iterations_per_epoch, total)
                losses = method.losses(step)
            scalars = method.backward(step, losses)
            norms = {f"grad_norm_{m}": grad_norm(model.branch_parameters(m)) for m in inputs} if record else {}
            opt.step()
            method.after_step(step)
            clock.stop()
            losses = {k: v.detach() for k, v in losses.items()}
            steps.append((iteration, losses))
            flags.append(finite_flags(model, losses))
            if record:
                row = {"loss": sum(v.float() for v in losses.values())}
                row.update({f"loss_{k}": v for k, v in losses.items()})
                row.update(modality_scores(model, output, batch_labels, task))
                row.update(norms)
                row.update({k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in scalars.items()})
                rows.append(row)
            iteration += 1
            if bar is not None:
                bar.update(1)
        check_finite(model, method, steps, flags, epoch, epochs)
        append_rows(history, rows, device)
        step_seconds.extend(clock.read())
    if bar is not None:
        bar.close()
    return history, step_seconds
