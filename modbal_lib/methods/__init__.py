"""Training methods, one file each; ``make(name, **options)`` builds one by name.

Names: ``unimodal_<modality>``, ``joint``, ``joint_unimodal_heads``, ``ogm_ge``, ``mslr``,
``pcgrad``, ``balgrad``, ``cggm``, ``goal``; ``<method>+go`` adds GOAL's gradient orthogonalization to
another method (``plus_go.PlusGO``; its options are the wrapped method's).
"""

from __future__ import annotations

import inspect
import typing

from modbal_lib.methods.balgrad import BalGrad
from modbal_lib.methods.base import Method
from modbal_lib.methods.cggm import CGGM
from modbal_lib.methods.goal import GOAL
from modbal_lib.methods.joint import Joint, JointUnimodalHeads, Unimodal
from modbal_lib.methods.mslr import MSLR
from modbal_lib.methods.ogm_ge import OGMGE
from modbal_lib.methods.pcgrad import PCGrad
from modbal_lib.methods.plus_go import PlusGO, check_wrappable, split_go

METHODS: dict[str, type[Method]] = {
    "joint": Joint,
    "joint_unimodal_heads": JointUnimodalHeads,
    "ogm_ge": OGMGE,
    "mslr": MSLR,
    "pcgrad": PCGrad,
    "balgrad": BalGrad,
    "cggm": CGGM,
    "goal": GOAL,
}


def method_class(name: str) -> type[Method]:
    """The class of the training method called ``name`` (``unimodal_<modality>`` -> ``Unimodal``,
    ``<method>+go`` -> ``PlusGO`` once ``<method>`` is known and can take GO)."""
    base, go = split_go(name)
    if go:
        check_wrappable(method_class(base), base)
        return PlusGO
    if name.startswith("unimodal_") and name != "unimodal_":
        return Unimodal
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: unimodal_<modality>, {', '.join(METHODS)} "
                         "and <method>+go")
    return METHODS[name]


def option_hints(name: str) -> dict[str, object]:
    """The options of method ``name`` and their type hints, from its ``__init__`` (e.g. {"gamma": float});
    ``<method>+go`` takes ``<method>``'s options."""
    method_class(name)
    name = split_go(name)[0]
    cls = method_class(name)
    if cls.__init__ is object.__init__:
        return {}
    hints = typing.get_type_hints(cls.__init__)
    parameters = list(inspect.signature(cls.__init__).parameters)[1:]
    if cls is Unimodal:
        parameters = [p for p in parameters if p != "modality"]  # given by the name
    return {p: hints.get(p, object) for p in parameters}


def option_defaults(name: str) -> dict[str, object]:
    """The default of each option of method ``name``, from its ``__init__`` (e.g. {"gamma": 0.5, ...})."""
    method_class(name)
    name = split_go(name)[0]
    parameters = inspect.signature(method_class(name).__init__).parameters
    return {option: parameters[option].default for option in option_hints(name)}


def make(name: str, **options) -> Method:
    """Build the training method called ``name`` with its options (``<method>+go``: ``<method>``'s options)."""
    cls = method_class(name)
    if cls is PlusGO:
        return PlusGO(make(split_go(name)[0], **options))
    if name.startswith("unimodal_"):
        return cls(name.removeprefix("unimodal_"), **options)
    return cls(**options)
