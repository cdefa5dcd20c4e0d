"""Training methods, one file each; ``make(name, **options)`` builds one by name.

Names: ``unimodal_<modality>``, ``joint``, ``joint_unimodal_heads``, ``ogm_ge``, ``mslr``,
``pcgrad``, ``balgrad``, ``cggm``, ``goal``.
"""

from __future__ import annotations

import importlib

from modbal_lib.methods.base import Strategy

# name -> "module:Class"
METHODS = {
    "joint": "joint:Joint",
    "joint_unimodal_heads": "joint:JointUnimodalHeads",
    "ogm_ge": "ogm_ge:OGMGE",
    "mslr": "mslr:MSLR",
    "pcgrad": "pcgrad:PCGrad",
    "balgrad": "balgrad:BalGrad",
    "cggm": "cggm:CGGM",
    "goal": "goal:GOAL",
}


def make(name: str, **options) -> Strategy:
    """Build the training strategy called ``name`` with its options."""
    if name.startswith("unimodal_"):
        from modbal_lib.methods.joint import Unimodal

        return Unimodal(name.removeprefix("unimodal_"), **options)
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: unimodal_<modality>, {', '.join(METHODS)}")
    module_name, class_name = METHODS[name].split(":")
    module = importlib.import_module(f"modbal_lib.methods.{module_name}")
    return getattr(module, class_name)(**options)
