"""The one small interface every training method implements (the trainer owns everything else).

A method is a ``Method``: it says which losses a step has (``losses``) and how their gradients
reach the parameters (``backward``): plain summed backward by default, or edited gradients
written with ``modbal_lib.grads``. The trainer then takes the optimizer step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from modbal_lib.featureset import FeatureSet
from modbal_lib.models import LateFusion, ModelOutput


def task_loss(task: str, logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy (multiclass), binary cross-entropy on logits (multilabel), L1 (regression)."""
    if task == "multiclass":
        return F.cross_entropy(logits, labels)
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, labels)
    if task == "regression":
        return F.l1_loss(logits.squeeze(-1), labels)
    raise ValueError(f"unknown task {task!r}; expected multiclass, multilabel or regression")


@dataclass
class Step:
    """One training iteration as a method sees it."""

    model: LateFusion
    inputs: dict[str, Tensor]
    labels: Tensor
    task: str
    output: ModelOutput
    iteration: int             # 0-based, counted over the whole run
    epoch: int                 # 0-based
    iterations_per_epoch: int
    total_iterations: int

    @property
    def progress(self) -> float:
        """Share of training done, in [0, 1)."""
        return self.iteration / max(self.total_iterations, 1)


class Method:
    """Joint training: minimise the sum of the step's losses. Subclasses edit this."""

    name = "joint"
    unimodal_heads = False                     # does the model need unimodal heads?
    modalities: tuple[str, ...] | None = None  # which modalities the model sees (None: all)

    def setup(self, model: LateFusion, features: FeatureSet, lr: float, seed: int = 0) -> None:
        """Create anything the method needs beside the model (called once, model on its device,
        with the training features, the base learning rate and the training seed, which seeds the
        method's own random draws: OGM-GE's noise, PCGrad's order)."""

    def param_groups(self, model: LateFusion, lr: float) -> list[dict]:
        """Parameter groups for the optimizer (MSLR gives each branch its own learning rate)."""
        return [{"params": list(model.parameters()), "lr": lr}]

    def losses(self, step: Step) -> dict[str, Tensor]:
        """Named losses of this step; ``task`` is the fused loss L_T. Unimodal losses are ``uni_<m>``."""
        losses = {"task": task_loss(step.task, step.output.logits, step.labels)}
        if step.output.unimodal_logits is not None:
            for m, logits in step.output.unimodal_logits.items():
                losses[f"uni_{m}"] = task_loss(step.task, logits, step.labels)
        return losses

    def backward(self, step: Step, losses: dict[str, Tensor]) -> dict[str, Tensor | float]:
        """Put gradients into ``.grad``; return scalars to record (none here): 0-dim tensors left on the
        device (the trainer moves a whole epoch of them to the host at once, so no step waits for the GPU)
        or Python numbers."""
        torch.stack(list(losses.values())).sum().backward()
        return {}

    def after_step(self, step: Step) -> None:
        """Called after the optimizer step (CGGM's official variant acts here)."""
