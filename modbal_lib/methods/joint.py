"""The baselines without any gradient editing: joint training, joint + unimodal heads, unimodal models."""

from __future__ import annotations

from modbal_lib.methods.base import Method


class Joint(Method):
    """Joint training: one fused loss L_T on the concatenated (or summed, attended) modalities."""

    name = "joint"


class JointUnimodalHeads(Method):
    """Multitask joint training: L_T + sum_m L_T^m with a unimodal head on each branch."""

    name = "joint_unimodal_heads"
    unimodal_heads = True


class Unimodal(Method):
    """A model that sees one modality only: the ceiling that modality reaches alone."""

    def __init__(self, modality: str):
        self.modalities = (modality,)
        self.name = f"unimodal_{modality}"
