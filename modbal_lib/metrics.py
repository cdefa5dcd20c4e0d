"""Task metrics, the primary metric per task, and the impairment summaries Avg and DeltaGap.

Scores are in percent (0-100), except MAE, which is in the label's own units. Model
outputs are raw logits (multiclass, multilabel) or predictions (regression); labels follow
the dataset contract: int64 [N] (multiclass), 0/1 float32 [N, K] (multilabel), float32 [N]
(regression). The numbers come from scikit-learn, so they match what a reader computes
with it.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, roc_auc_score

METRICS = ("accuracy", "macro_f1", "micro_f1", "auroc", "mae")


def score(task: str, outputs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """All metrics of a task, as a dict of floats.

    - ``"multiclass"``: outputs [N, K] logits, labels int64 [N]. ``accuracy`` and
      ``macro_f1`` of the argmax prediction (macro over the classes present in labels or
      predictions, scikit-learn's default), plus ``auroc`` of the class-1 probability
      softmax(outputs)[:, 1] when K == 2. AUROC needs both classes among the labels; when only one is present it is
      undefined and reported as NaN (a visible gap in a table, while accuracy and F1 are
      still given).
    - ``"multilabel"``: outputs [N, K] logits, labels 0/1 [N, K]. A label is predicted
      when sigmoid(output) > 0.5, i.e. output > 0. ``macro_f1`` (mean over all K labels;
      a label never present nor predicted scores 0) and ``micro_f1``.
    - ``"regression"``: outputs [N] or [N, 1], labels [N]. ``mae``.
    """
    outputs = _as_numpy(outputs, "outputs")
    labels = _as_numpy(labels, "labels")
    if len(outputs) == 0 or len(outputs) != len(labels):
        raise ValueError(f"score: outputs have {len(outputs)} rows and labels {len(labels)}; expected the same N > 0")
    if task == "multiclass":
        return _multiclass(outputs, labels)
    if task == "multilabel":
        return _multilabel(outputs, labels)
    if task == "regression":
        return _regression(outputs, labels)
    raise ValueError(f"score: task must be 'multiclass', 'multilabel' or 'regression', got {task!r}")


def primary_metric(task: str, num_classes: int) -> str:
    """The metric a table reports for a task (BalGrad's choices).

    Multiclass with K > 2: accuracy (Food-101); binary (K == 2): AUROC (Hateful Memes);
    multilabel: macro-F1 (MM-IMDb); regression: MAE.
    """
    if task == "multiclass":
        if num_classes < 2:
            raise ValueError(f"primary_metric: a multiclass task needs at least 2 classes, got {num_classes}")
        return "auroc" if num_classes == 2 else "accuracy"
    if task == "multilabel":
        return "macro_f1"
    if task == "regression":
        return "mae"
    raise ValueError(f"primary_metric: task must be 'multiclass', 'multilabel' or 'regression', got {task!r}")


def average(*scores: float) -> float:
    """Avg: the mean of the impaired scores, one per impaired modality (BalGrad Table 1)."""
    if len(scores) < 2:
        raise ValueError(f"average: need the scores of at least 2 impaired modalities, got {len(scores)}")
    return sum(float(s) for s in scores) / len(scores)


def delta_gap(*scores: float) -> float:
    """DeltaGap: |score_a - score_b|, in percentage points for percent scores (BalGrad Table 1).

    score_a and score_b are the scores with one modality impaired and with the other
    impaired; a smaller gap means less dominant-modality bias. With three or more
    modalities (our generalisation) it is the largest minus the smallest impaired score.
    """
    if len(scores) < 2:
        raise ValueError(f"delta_gap: need the scores of at least 2 impaired modalities, got {len(scores)}")
    return max(float(s) for s in scores) - min(float(s) for s in scores)


def higher_is_better(metric: str) -> bool:
    """True for accuracy, F1 and AUROC; False for MAE."""
    if metric not in METRICS:
        raise ValueError(f"higher_is_better: unknown metric {metric!r}, expected one of {METRICS}")
    return metric != "mae"


def _as_numpy(values: torch.Tensor, name: str) -> np.ndarray:
    array = torch.as_tensor(values).detach().cpu().numpy()
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"score: {name} contain NaN or infinite values")
    return array


def _multiclass(outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    if outputs.ndim != 2 or labels.ndim != 1:
        raise ValueError(
            f"score: multiclass expects outputs [N, K] and labels [N], got {outputs.shape} and {labels.shape}"
        )
    num_classes = outputs.shape[1]
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"score: multiclass labels must lie in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}"
        )
    predictions = outputs.argmax(1)
    result = {
        "accuracy": 100 * accuracy_score(labels, predictions),
        "macro_f1": 100 * f1_score(labels, predictions, average="macro", zero_division=0),
    }
    if num_classes == 2:
        result["auroc"] = _binary_auroc(outputs, labels)
    return {name: float(value) for name, value in result.items()}


def _binary_auroc(outputs: np.ndarray, labels: np.ndarray) -> float:
    if len(np.unique(labels)) < 2:
        return float("nan")
    # softmax(z)[:, 1] = sigmoid(z_1 - z_0): ranking by the margin gives the same AUROC,
    # without the ties that appear when float probabilities saturate at 1.
    margin = outputs[:, 1].astype(np.float64) - outputs[:, 0]
    return 100 * roc_auc_score(labels, margin)


def _multilabel(outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    if outputs.ndim != 2 or outputs.shape != labels.shape:
        raise ValueError(
            f"score: multilabel expects outputs and labels of shape [N, K], got {outputs.shape} and {labels.shape}"
        )
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("score: multilabel labels must be 0 or 1")
    predictions = (outputs > 0).astype(int)
    truth = labels.astype(int)
    return {
        "macro_f1": float(100 * f1_score(truth, predictions, average="macro", zero_division=0)),
        "micro_f1": float(100 * f1_score(truth, predictions, average="micro", zero_division=0)),
    }


def _regression(outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        outputs = outputs[:, 0]
    if outputs.shape != labels.shape or labels.ndim != 1:
        raise ValueError(
            f"score: regression expects outputs [N] or [N, 1] and labels [N], got {outputs.shape} and {labels.shape}"
        )
    return {"mae": float(mean_absolute_error(labels, outputs))}
