"""Training methods, one file each; ``make(name, **options)`` builds one by name.

Names: ``unimodal_<modality>``, ``joint``, ``joint_unimodal_heads``, ``ogm_ge``, ``mslr``,
``pcgrad``, ``balgrad``, ``cggm``, ``goal``.
"""

from __future__ import annotations

import importlib
import inspect
import typing

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


def strategy_class(name: str) -> type[Strategy]:
    """The class of the training strategy called ``name`` (``unimodal_<modality>`` -> ``Unimodal``)."""
    if name.startswith("unimodal_") and name != "unimodal_":
        from modbal_lib.methods.joint import Unimodal

        return Unimodal
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: unimodal_<modality>, {', '.join(METHODS)}")
    module_name, class_name = METHODS[name].split(":")
    module = importlib.import_module(f"modbal_lib.methods.{module_name}")
    return getattr(module, class_name)


def option_hints(name: str) -> dict[str, object]:
    """The options of strategy ``name`` and their type hints, from its ``__init__`` (e.g. {"gamma": float})."""
    cls = strategy_class(name)
    if cls.__init__ is object.__init__:
        return {}
    hints = typing.get_type_hints(cls.__init__)
    parameters = list(inspect.signature(cls.__init__).parameters)[1:]
    if cls.__name__ == "Unimodal":
        parameters = [p for p in parameters if p != "modality"]  # given by the name
    return {p: hints.get(p, object) for p in parameters}


def make(name: str, **options) -> Strategy:
    """Build the training strategy called ``name`` with its options."""
    cls = strategy_class(name)
    if name.startswith("unimodal_"):
        return cls(name.removeprefix("unimodal_"), **options)
    return cls(**options)
