"""The papers' training settings as named presets: ``python -m modbal_lib bench --preset NAME``.

A preset holds ``train()`` options (optimizer, learning rate, weight decay, momentum, epochs,
batch size) and per-method options; ``apply`` puts them under what the caller gave explicitly,
so ``--epochs 5`` or ``--option cggm.rho=1.2`` still wins. The train options apply to every
method of a run (the comparison stays fair); the method options only to their method.

A preset is the paper's *training* setup, not its encoders or its data pipeline: the kit trains
late-fusion models on frozen features, so augmentation and end-to-end encoder training are out
of reach. Choose the paper's encoders separately (``features --encoders balgrad``, see
``modbal_lib.encoders.ENCODER_SETS``). What a paper does not state is left at the kit's default
and listed in ``unspecified``; the sources are the papers (BalGrad appendix B.2-B.3, GOAL Section
4.1) and, for CGGM, whose result tables are images, its authors' released code.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    name: str
    source: str
    train_options: dict = field(default_factory=dict)   # keyword arguments of modbal_lib.train.train
    method_options: dict = field(default_factory=dict)  # method name -> its options
    unspecified: str = ""                               # what the paper leaves open (kit default used)


PRESETS = {
    preset.name: preset
    for preset in (
        Preset(
            "balgrad",
            "BalGrad (Kim et al. 2025), appendix B.2/B.3: linear probing, Adam, 20 epochs, batch 128; "
            "gamma = 1/2 in Eq. 4",
            {"optimizer": "adam", "epochs": 20, "batch_size": 128},
            {"balgrad": {"gamma": 0.5}},
            "learning rate and weight decay are not stated: the kit's defaults, lr 1e-3 (Adam's usual) and "
            "no weight decay; the paper's random horizontal flip does not apply to frozen features",
        ),
        Preset(
            "cggm_food101",
            "CGGM (Guo et al., NeurIPS 2024), Food-101 setting of the released code: AdamW lr 1e-3, weight "
            "decay 6e-3, batch 128, 60 epochs; classifiers lr 5e-4; rho 1.3, lambda 0.05",
            {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 6e-3, "epochs": 60, "batch_size": 128},
            {"cggm": {"rho": 1.3, "lam": 0.05, "classifier_lr": 5e-4}},
            "the released code also clips the gradient norm at 0.8; not part of the preset (the kit's "
            "default is no clipping), add --option cggm.clip_norm=0.8 for it",
        ),
        Preset(
            "goal",
            "GOAL (ICLR 2026 submission), Section 4.1: SGD lr 4e-4, momentum 0.9, weight decay 1e-4; T = 1",
            {"optimizer": "sgd", "lr": 4e-4, "momentum": 0.9, "weight_decay": 1e-4},
            {"goal": {"T": 1.0}},
            "epochs and batch size are not stated in the paper (Section 4.1): the kit's defaults (bench: 20 "
            "epochs, batch 128); the paper trains ResNet-18 encoders end to end, the kit frozen features",
        ),
    )
}


def get(name: str) -> Preset:
    """The preset called ``name``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


def apply(name: str, methods: list[str], train_options: dict,
          method_options: dict[str, dict] | None = None) -> tuple[dict, dict]:
    """(train options, method options by label): preset ``name``'s values with the explicit ones on top.

    ``methods`` as ``compare`` takes them: a method name, or ``LABEL=METHOD`` for a labelled
    variant; the preset's options of a method go to every entry that runs it, keyed by its label.
    Explicit values win key by key.
    """
    preset = get(name)
    merged: dict[str, dict] = {}
    for entry in methods:
        label, _, method = entry.partition("=")
        merged[label] = dict(preset.method_options.get(method or label, {}))
    for label, options in (method_options or {}).items():
        merged.setdefault(label, {}).update(options)
    return {**preset.train_options, **train_options}, {label: options for label, options in merged.items() if options}
