"""The training loop: batches, the method's step, the optimizer, and what happened at every iteration.

``train(features, method)`` returns a ``TrainResult`` whose ``history`` holds, per iteration:
``loss`` (the summed loss) and ``loss_<name>`` for each of the method's losses; ``loss_uni_<m>``
and ``acc_uni_<m>`` — each modality's own loss and accuracy, from the unimodal heads or, when
the model has none, from its additive share of the fused logits (``LateFusion.probe_logits``);
``grad_norm_<m>`` — the norm of the gradient reaching branch h_m after the method's edits; and
every scalar the method reports (weights, cosines, conflict flags).
"""

from __future__ import annotations

import contextlib
import resource
import time
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


class NonFiniteError(FloatingPointError):
    """A loss or a gradient became inf or NaN during training (raised at the first such step)."""


@dataclass
class TrainResult:
    model: LateFusion
    method: Method
    history: dict[str, list[float]]
    step_seconds: list[float]   # wall time of each training step (forward, backward, edits, optimizer)
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
def modality_scores(model: LateFusion, output, labels: torch.Tensor, task: str) -> dict[str, float]:
    """Each modality's own loss (and accuracy for multiclass) on this batch."""
    per_modality = output.unimodal_logits or model.probe_logits(output.embeddings)
    scores = {}
    for m, logits in per_modality.items():
        logits = logits.float()
        scores[f"loss_uni_{m}"] = float(task_loss(task, logits, labels))
        if task == "multiclass":
            scores[f"acc_uni_{m}"] = float((logits.argmax(dim=1) == labels).float().mean())
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
    record: bool = True,
    show_progress: bool = True,
    cpu_threads: int | None = 1,
    **method_options,
) -> TrainResult:
    """Train a late-fusion model on ``features`` with ``method`` (a Method or a registered name).

    Same seed and device give identical numbers; the seed also seeds the method's own random draws
    (``Method.setup``). ``amp`` (default: on for CUDA) runs forward passes in bfloat16 autocast.
    ``record=False`` skips the per-iteration history. The first step whose losses or gradients are
    not finite stops training with a ``NonFiniteError`` naming the method, epoch, iteration and the
    losses or parameters concerned (nothing is returned). On a CPU, training runs with
    ``cpu_threads`` torch threads (see ``modbal_lib.utils.cpu_threads``; ``None`` keeps torch's setting).
    """
    method = make(method, **method_options) if isinstance(method, str) else method
    device = select_device(device) if not isinstance(device, torch.device) else device
    amp = device.type == "cuda" if amp is None else amp
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
        autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()
        history, step_seconds = _fit(model, method, opt, inputs, labels, features.task, epochs, batch_size,
                                     generator, autocast, record, show_progress)
    model.eval()
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else _peak_rss_mb() - rss_before
    config = dict(method=method.name, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
                  weight_decay=weight_decay, momentum=momentum, hidden=hidden, fusion=fusion, seed=seed,
                  device=str(device), amp=amp, **method_options)
    return TrainResult(model, method, history, step_seconds, peak, config)


def _all_finite(model: LateFusion, losses: dict[str, torch.Tensor]) -> torch.Tensor:
    """Are the step's losses and every gradient of the model finite: one bool tensor (no host sync)."""
    values = [loss.detach().reshape(-1) for loss in losses.values()]
    values += [p.grad.reshape(-1) for p in model.parameters() if p.grad is not None]
    return torch.cat(values).isfinite().all()


def _non_finite_message(model, method, losses, epoch, epochs, iteration) -> str:
    """Which losses and which parameters' gradients are not finite, in one line (after ``_all_finite`` failed)."""
    what = [f"loss {name!r} = {float(loss.detach().float())}" for name, loss in losses.items()
            if not bool(loss.detach().isfinite().all())]
    bad_grads = [name for name, p in model.named_parameters()
                 if p.grad is not None and not bool(p.grad.isfinite().all())]
    if bad_grads:
        what.append(f"gradient of {', '.join(bad_grads)}")
    return (f"training {method.name!r} stopped at epoch {epoch} (of epochs 0..{epochs - 1}), iteration {iteration} "
            f"(counted from 0 over the run): non-finite {'; '.join(what)}. "
            "Check the features for inf/NaN and try a smaller learning rate.")


def _fit(model, method, opt, inputs, labels, task, epochs, batch_size, generator, autocast, record, show_progress):
    """The epochs of ``train``: returns (history, seconds of each step)."""
    device = labels.device
    n = len(labels)
    iterations_per_epoch = -(-n // batch_size)
    total = epochs * iterations_per_epoch
    history: dict[str, list[float]] = {}
    step_seconds = []
    bar = progress(total=total, desc=f"train {method.name}") if show_progress else None
    iteration = 0
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            batch_inputs = {m: x[index] for m, x in inputs.items()}
            batch_labels = labels[index]
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            began = time.perf_counter()
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
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            step_seconds.append(time.perf_counter() - began)
            if not bool(_all_finite(model, losses)):  # the check's one host sync per step
                raise NonFiniteError(_non_finite_message(model, method, losses, epoch, epochs, iteration))

            if record:
                row = {"loss": float(sum(v.detach().float() for v in losses.values()))}
                row.update({f"loss_{k}": float(v.detach()) for k, v in losses.items()})
                row.update(modality_scores(model, output, batch_labels, task))
                row.update(norms)
                row.update(scalars)
                for key, value in row.items():
                    history.setdefault(key, []).append(value)
            iteration += 1
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return history, step_seconds
