"""GO as a plug-in: any training method plus GOAL's gradient orthogonalization (name ``<method>+go``).

GOAL's paper (anonymous ICLR 2026 submission, Section 3.2 and Fig. 2c; Section 4.3) adds its Gradient
Orthogonalization (GO, Eqs. 9-10) to magnitude-based methods ("OGM+GO and ARL+GO perform much better
than the original OGM and ARL"). ``PlusGO(method)`` does the same for any method of the kit:
``make("ogm_ge+go", alpha=0.5)``, ``compare(..., ["mslr+go", "joint_unimodal_heads+go"])``; the options
are the wrapped method's own.

What GO edits: the fusion-loss gradient g^(m) = dL_task/df_m of each modality at its embedding f_m,
sample by sample (the kit's reading of GOAL, its ``variant="feature"``): wherever two modalities'
g's conflict (negative dot product), the conflicting component is projected out
(``goal.orthogonalize``). The unimodal losses' gradients G^(m) are left alone, as in GOAL.

How it plugs in: before the wrapped method's backward, the change GO makes, delta_m = GO(g)_m - g_m, is
attached to the task loss as the zero-valued term sum_m <f_m - f_m.detach(), delta_m> (delta_m a constant).
Its value is exactly 0, so every loss the wrapped method reads is unchanged; its gradient at f_m is
delta_m, so wherever the wrapped method backpropagates the task loss, f_m receives GO(g)_m instead of g_m
(``with_go``). The wrapped method's own edits then act on the orthogonalized gradient. For the
magnitude methods of Fig. 2c this is the same as GO after their edit, because GO commutes with a
positive scale per modality (Eqs. 9-10 with eps = 0: GO(k_1 g_1, k_2 g_2) = (k_1 GO(g)_1, k_2 GO(g)_2)):
OGM-GE's coefficient k_m (its GE noise is added afterwards, to the parameters' gradients), MSLR's
per-branch learning rate, GOAL's AL weight w_m. Hence ``joint_unimodal_heads+go`` is GOAL with
``adaptive_leveraging=False``, computed another way. For methods that edit directions themselves
(PCGrad, BalGrad's projection, CGGM's L_gm) the order matters: here GO comes first. ``goal+go`` is
refused (GOAL already orthogonalizes) and so is a unimodal model (nothing to orthogonalize against).

Records per step, beside the wrapped method's own: cos_<a>_<b>_before/_after (the mean per-sample
cosine of two modalities' g before and after GO) and conflict_before/_after (the share of conflicting
sample pairs), the names GOAL uses.
"""

from __future__ import annotations

import torch
from torch import Tensor

from modbal_lib.featureset import FeatureSet
from modbal_lib.grads import loss_grads
from modbal_lib.methods.base import Method, Step
from modbal_lib.methods.goal import GOAL, orthogonalize
from modbal_lib.methods.joint import Unimodal
from modbal_lib.models import LateFusion

SUFFIX = "+go"


def with_go(task_loss: Tensor, embeddings: list[Tensor], go_change: list[Tensor]) -> Tensor:
    """The task loss plus sum_m <f_m - f_m.detach(), delta_m>: the same value (the term is exactly 0), and
    a gradient at each embedding f_m larger by delta_m (a constant). ``go_change``: delta_m per modality,
    shaped like f_m."""
    term = sum(((e - e.detach()) * d.to(e.dtype)).sum() for e, d in zip(embeddings, go_change))
    return task_loss + term


class PlusGO(Method):
    """``method`` with GO applied to its fusion-loss gradient at the embeddings (see the module docstring).

    Everything else is the wrapped method's: its losses, parameter groups, setup, after-step hook and
    records. ``eps``: the eps of Eq. 10 (0, as GOAL's default).
    """

    def __init__(self, method: Method, eps: float = 0.0):
        check_wrappable(type(method), method.name)
        self.method = method
        self.eps = eps
        self.name = f"{method.name}{SUFFIX}"
        self.unimodal_heads = method.unimodal_heads
        self.modalities = method.modalities
        self.recorder = GOAL(adaptive_leveraging=False, eps=eps)  # only its ``summarise`` is used

    def setup(self, model: LateFusion, features: FeatureSet, lr: float, seed: int = 0) -> None:
        if len(model.modalities) < 2:
            raise ValueError(f"{self.name}: GO needs at least 2 modalities, the model has {list(model.modalities)}")
        self.method.setup(model, features, lr, seed=seed)

    def param_groups(self, model: LateFusion, lr: float) -> list[dict]:
        return self.method.param_groups(model, lr)

    def losses(self, step: Step) -> dict[str, Tensor]:
        return self.method.losses(step)

    def backward(self, step: Step, losses: dict[str, Tensor]) -> dict[str, Tensor]:
        modalities = step.model.modalities
        embeddings = [step.output.embeddings[m] for m in modalities]
        fusion_grads = [g.float() for g in loss_grads(losses["task"], embeddings)]  # g^(m), [B, hidden] each
        edited = orthogonalize(fusion_grads, self.eps)
        change = [after - before for after, before in zip(edited, fusion_grads)]
        scalars = self.method.backward(step, {**losses, "task": with_go(losses["task"], embeddings, change)})
        ones = torch.ones(len(modalities), device=embeddings[0].device)
        records = self.recorder.summarise(modalities, ones, fusion_grads, edited)
        return {**scalars, **{k: v for k, v in records.items() if not k.startswith("w_")}}

    def after_step(self, step: Step) -> None:
        self.method.after_step(step)


def check_wrappable(method_class: type, name: str) -> None:
    """Refuse to add GO to a method that has it already (GOAL, a ``PlusGO``) or to a unimodal model."""
    if issubclass(method_class, (GOAL, PlusGO)):
        raise ValueError(f"method {name + SUFFIX!r}: {name!r} already orthogonalizes the fusion gradients (GO); "
                         f"add {SUFFIX} to a method without GO")
    if issubclass(method_class, Unimodal):
        raise ValueError(f"method {name + SUFFIX!r}: {name!r} is a unimodal model; GO needs at least 2 modalities")


def split_go(name: str) -> tuple[str, bool]:
    """``"ogm_ge+go"`` -> (``"ogm_ge"``, True); ``"ogm_ge"`` -> (``"ogm_ge"``, False)."""
    if name.endswith(SUFFIX):
        return name[: -len(SUFFIX)], True
    return name, False
