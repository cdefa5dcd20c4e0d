r"""SeeSaw: a synthetic dataset whose knobs decide which modality dominates.

Classes come in coarse **groups**; each group holds the same number of **fine** classes. Each
modality carries some mix of the two kinds of information, at its own strength and noise:

.. math::

    y &\sim \mathrm{Uniform}\{0, \dots, GC - 1\}, \qquad g = \lfloor y / C \rfloor, \qquad c = y \bmod C \\
    x_m &= a_m\, u_{m,g} + b_m\, v_{m,c} + \sigma_m\, \varepsilon_m, \qquad \varepsilon_m \sim \mathcal N(0, I_{D_m})

- :math:`G` groups (``groups``), :math:`C` fine classes per group (``classes_per_group``);
- :math:`u_{m,1..G}, v_{m,1..C} \in \mathbb R^{D_m}`: unit prototypes of modality :math:`m`, drawn
  once from ``seed``; mutually orthogonal when :math:`D_m \ge G + C`, else random unit vectors;
- knobs per modality: ``dim`` :math:`D_m`, ``coarse`` :math:`a_m` (how strongly it tells the group),
  ``fine`` :math:`b_m` (how strongly it tells the class within a group), ``noise`` :math:`\sigma_m`.
  Which information a modality carries is which of :math:`a_m, b_m` is non-zero.

Note that :math:`v_{m,c}` is shared by all groups: a modality with :math:`a_m = 0` knows the class
within a group but not the group. The target is ``y`` (``target="class"``, :math:`GC` classes) or
the scalar :math:`t = g + (c + 1/2)/C \in (0, G)` (``target="regression"``, group position plus
the offset within the group).

Default (two modalities, ``easy`` and ``hard``; ``num_modalities=3`` adds ``medium``):
``easy`` tells the group loudly and nothing else; ``hard`` tells the class within the group and,
faintly, the group. Both are needed for full accuracy. A jointly trained model settles the group
from ``easy`` early and so barely learns the faint group cue in ``hard``: take ``easy`` away and
it loses most of its accuracy, although ``hard`` alone could have done better; take ``hard`` away
and it falls to one class in ``C`` within the right group.

Samples are i.i.d.: ``num_samples`` are drawn with ``seed`` and cut 70/15/15 into train/val/test.
"""

from __future__ import annotations

import numpy as np

from modbal_lib.data.base import MultimodalDataset

DEFAULT_KNOBS = {
    "easy": {"dim": 8, "coarse": 4.0, "fine": 0.0, "noise": 1.0},
    "medium": {"dim": 16, "coarse": 2.0, "fine": 1.0, "noise": 1.0},
    "hard": {"dim": 32, "coarse": 1.0, "fine": 2.0, "noise": 1.0},
}
MODALITY_SETS = {2: ("easy", "hard"), 3: ("easy", "medium", "hard")}
TARGETS = ("class", "regression")
SPLIT_SHARES = {"train": 0.70, "val": 0.15, "test": 0.15}


def resolve_knobs(num_modalities: int, knobs: dict[str, dict] | None) -> dict[str, dict]:
    """The default knobs of the chosen modalities, with ``knobs`` overriding some of them."""
    if num_modalities not in MODALITY_SETS:
        raise ValueError(f"seesaw: option num_modalities={num_modalities!r}; expected one of {tuple(MODALITY_SETS)}")
    names = MODALITY_SETS[num_modalities]
    resolved = {name: dict(DEFAULT_KNOBS[name]) for name in names}
    for name, overrides in (knobs or {}).items():
        if name not in resolved:
            raise ValueError(f"seesaw: knobs for unknown modality {name!r}; the modalities are {names}")
        unknown = set(overrides) - set(resolved[name])
        if unknown:
            raise ValueError(f"seesaw: unknown knob(s) {sorted(unknown)} for {name!r}; expected {sorted(resolved[name])}")
        resolved[name].update(overrides)
        if int(resolved[name]["dim"]) < 1 or resolved[name]["noise"] < 0:
            raise ValueError(f"seesaw: modality {name!r} needs dim >= 1 and noise >= 0, got {resolved[name]}")
    return resolved


def prototypes(rng: np.random.Generator, dim: int, count: int) -> np.ndarray:
    """``count`` unit vectors in R^dim: orthonormal when dim >= count, else random directions."""
    gaussian = rng.standard_normal((dim, count))
    if dim >= count:
        return np.linalg.qr(gaussian)[0].T
    return (gaussian / np.linalg.norm(gaussian, axis=0)).T


def generate(num_samples: int, groups: int, classes_per_group: int, knobs: dict[str, dict], seed: int):
    """All ``num_samples`` samples: (class labels y [N], {modality: float32 [N, D_m]})."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, groups * classes_per_group, size=num_samples)
    group, fine = y // classes_per_group, y % classes_per_group
    inputs = {}
    for name, knob in knobs.items():
        dim = int(knob["dim"])
        both = prototypes(rng, dim, groups + classes_per_group)
        u, v = both[:groups], both[groups:]
        noise = rng.standard_normal((num_samples, dim))
        inputs[name] = (knob["coarse"] * u[group] + knob["fine"] * v[fine] + knob["noise"] * noise).astype(np.float32)
    return y, inputs


def load(
    split: str,
    *,
    num_modalities: int = 2,
    knobs: dict[str, dict] | None = None,
    groups: int = 4,
    classes_per_group: int = 4,
    num_samples: int = 10_000,
    target: str = "class",
    seed: int = 0,
) -> MultimodalDataset:
    """Split ``split`` of a SeeSaw dataset (see the module docstring for the model and the knobs)."""
    if target not in TARGETS:
        raise ValueError(f"seesaw: option target={target!r}; expected one of {TARGETS}")
    if split not in SPLIT_SHARES:
        raise ValueError(f"seesaw: unknown split {split!r}; expected one of {tuple(SPLIT_SHARES)}")
    if groups < 1 or classes_per_group < 1 or num_samples < 20:
        raise ValueError(f"seesaw: need groups >= 1, classes_per_group >= 1, num_samples >= 20; got "
                         f"{groups}, {classes_per_group}, {num_samples}")
    resolved = resolve_knobs(num_modalities, knobs)
    y, inputs = generate(num_samples, groups, classes_per_group, resolved, seed)
    n_train = round(SPLIT_SHARES["train"] * num_samples)
    n_val = round(SPLIT_SHARES["val"] * num_samples)
    rows = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val), "test": slice(n_train + n_val, None)}[split]
    if target == "class":
        labels = y[rows].astype(np.int64)
        class_names = [f"g{k // classes_per_group}.c{k % classes_per_group}" for k in range(groups * classes_per_group)]
        task = "multiclass"
    else:
        labels = ((y[rows] + 0.5) / classes_per_group).astype(np.float32)
        class_names = ["t"]
        task = "regression"
    return MultimodalDataset(
        name="seesaw",
        split=split,
        modalities=tuple(resolved),
        kinds={name: "vector" for name in resolved},
        inputs={name: values[rows] for name, values in inputs.items()},
        labels=labels,
        class_names=class_names,
        task=task,
        options={"num_modalities": num_modalities, "knobs": resolved, "groups": groups,
                 "classes_per_group": classes_per_group, "num_samples": num_samples, "target": target, "seed": seed},
    )
