"""The impairment protocol (BalGrad, Section 4.1 and Table 1), for any trained model.

Train on full data; at test time impair ONE modality over the whole test set, on the raw inputs
(so the impairment goes through the encoders, via the feature cache):

* **Full** — nothing impaired;
* **missing m** / **noisy m** — modality m blanked / corrupted, the others kept;
* **Avg** — the mean of the impaired scores;
* **DeltaGap** — the gap between the impaired scores, |score(a impaired) − score(b impaired)| in
  points; with three or more modalities, the largest minus the smallest (our generalisation);
* **missing ratio r** — modality m missing for a random share r of the samples;
* **negative transfer** — removing a modality *improves* the score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from modbal_lib.features import FeatureSet, Impairment
from modbal_lib.metrics import average, delta_gap, higher_is_better, primary_metric, score
from modbal_lib.models import LateFusion

RATIOS = (0.2, 0.4, 0.6, 0.8)
FeatureSource = Callable[[Impairment | None], FeatureSet]


@torch.no_grad()
def predict(model: LateFusion, features: FeatureSet, batch_size: int = 2048) -> torch.Tensor:
    """Fused logits for every sample, on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    for start in range(0, len(features), batch_size):
        batch = {m: features.features[m][start : start + batch_size].to(device) for m in model.modalities}
        outputs.append(model(batch).logits.float().cpu())
    return torch.cat(outputs)


def predict_score(model: LateFusion, features: FeatureSet) -> dict[str, float]:
    """All metrics of the task for the model on these features."""
    return score(features.task, predict(model, features), features.labels)


@dataclass
class ImpairmentTable:
    """One model's scores under the protocol (all in the primary metric)."""

    metric: str
    full: float
    missing: dict[str, float]
    noisy: dict[str, float]
    ratio_sweep: dict[str, dict[float, float]] = field(default_factory=dict)

    @property
    def missing_avg(self) -> float:
        return average(*self.missing.values())

    @property
    def missing_delta_gap(self) -> float:
        return delta_gap(*self.missing.values())

    @property
    def noisy_avg(self) -> float:
        return average(*self.noisy.values())

    @property
    def noisy_delta_gap(self) -> float:
        return delta_gap(*self.noisy.values())

    @property
    def negative_transfer(self) -> list[str]:
        """Modalities whose removal improves the score (the model is better off without them)."""
        better = (lambda a, b: a > b) if higher_is_better(self.metric) else (lambda a, b: a < b)
        return [m for m, value in self.missing.items() if better(value, self.full)]

    def rows(self) -> list[tuple[str, float]]:
        """(row, value) in BalGrad's Table 1 layout."""
        rows = [("Full", self.full)]
        rows += [(f"missing {m}", v) for m, v in self.missing.items()]
        rows += [("missing Avg", self.missing_avg), ("missing DeltaGap", self.missing_delta_gap)]
        rows += [(f"noisy {m}", v) for m, v in self.noisy.items()]
        rows += [("noisy Avg", self.noisy_avg), ("noisy DeltaGap", self.noisy_delta_gap)]
        return rows

    def as_dict(self) -> dict:
        """The table as JSON values (results.json); ``from_dict`` reads it back."""
        return {
            "metric": self.metric,
            "full": self.full,
            "missing": {**self.missing, "avg": self.missing_avg, "delta_gap": self.missing_delta_gap},
            "noisy": {**self.noisy, "avg": self.noisy_avg, "delta_gap": self.noisy_delta_gap},
            "ratio_sweep": {m: {str(r): v for r, v in sweep.items()} for m, sweep in self.ratio_sweep.items()},
            "negative_transfer": self.negative_transfer,
        }

    @classmethod
    def from_dict(cls, entry: dict) -> "ImpairmentTable":
        """The table ``as_dict`` wrote (Avg, DeltaGap and negative transfer are recomputed, not read):
        ``ImpairmentTable.from_dict(t.as_dict()) == t``."""
        def scores(kind: str) -> dict[str, float]:
            return {m: float(v) for m, v in entry[kind].items() if m not in ("avg", "delta_gap")}

        return cls(metric=entry["metric"], full=float(entry["full"]), missing=scores("missing"), noisy=scores("noisy"),
                   ratio_sweep={m: {float(r): float(v) for r, v in sweep.items()}
                                for m, sweep in entry.get("ratio_sweep", {}).items()})


def evaluate(
    model: LateFusion,
    features_for: FeatureSource,
    *,
    modalities: tuple[str, ...] | None = None,
    ratios: tuple[float, ...] = RATIOS,
    noisy: bool = True,
    seed: int = 0,
    blank: str = "black",
) -> ImpairmentTable:
    """Score ``model`` on the test features under every impairment of the protocol.

    ``features_for(impairment)`` returns the test FeatureSet with that impairment applied to the
    raw inputs (``None``: clean), e.g. ``functools.partial(load_features, "emoji", "test")``.
    ``modalities`` are those impaired in turn (default: all of the data's).
    """
    clean = features_for(None)
    metric = primary_metric(clean.task, len(clean.class_names))
    modalities = modalities or clean.modalities

    def scored(impairment: Impairment | None) -> float:
        features = clean if impairment is None else features_for(impairment)
        return predict_score(model, features)[metric]

    table = ImpairmentTable(
        metric=metric,
        full=scored(None),
        missing={m: scored(Impairment(m, "missing", seed=seed, blank=blank)) for m in modalities},
        noisy={m: scored(Impairment(m, "noisy", seed=seed)) for m in modalities} if noisy else {},
    )
    table.ratio_sweep = {
        m: {r: scored(Impairment(m, "missing", ratio=r, seed=seed, blank=blank)) for r in ratios} for m in modalities
    }
    return table
