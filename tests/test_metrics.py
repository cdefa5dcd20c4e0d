"""Metrics against scikit-learn on random data, hand cases, edge cases, and the Avg / DeltaGap summaries."""

import math

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, roc_auc_score

from modbal_lib.metrics import average, delta_gap, higher_is_better, primary_metric, score

# --- multiclass ------------------------------------------------------------------------------

def test_multiclass_matches_sklearn_on_random_data():
    generator = torch.Generator().manual_seed(0)
    outputs = torch.randn(300, 5, generator=generator)
    labels = torch.randint(0, 5, (300,), generator=generator)
    result = score("multiclass", outputs, labels)
    predictions = outputs.argmax(1).numpy()
    assert set(result) == {"accuracy", "macro_f1"}
    assert result["accuracy"] == pytest.approx(100 * accuracy_score(labels.numpy(), predictions))
    assert result["macro_f1"] == pytest.approx(100 * f1_score(labels.numpy(), predictions, average="macro"))


def test_multiclass_hand_case():
    outputs = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 2])  # predictions 0, 1, 2, 0
    result = score("multiclass", outputs, labels)
    assert result["accuracy"] == pytest.approx(50.0)
    # per-class F1: class 0 (P 1/2, R 1) 2/3; class 1 (P 1, R 1/2) 2/3; class 2: 0
    assert result["macro_f1"] == pytest.approx(100 * 4 / 9)


def test_binary_adds_auroc_matching_sklearn():
    generator = torch.Generator().manual_seed(1)
    outputs = torch.randn(200, 2, generator=generator)
    labels = torch.randint(0, 2, (200,), generator=generator)
    result = score("multiclass", outputs, labels)
    probs = torch.softmax(outputs, 1)[:, 1].numpy()
    assert set(result) == {"accuracy", "macro_f1", "auroc"}
    assert result["auroc"] == pytest.approx(100 * roc_auc_score(labels.numpy(), probs))


def test_binary_auroc_hand_case():
    # class-1 margins: positives 0.9 and 0.4, negatives 0.5 and 0.1 -> 3 of 4 pairs ranked right
    outputs = torch.tensor([[0.0, 0.9], [0.0, 0.4], [0.0, 0.5], [0.0, 0.1]])
    labels = torch.tensor([1, 1, 0, 0])
    assert score("multiclass", outputs, labels)["auroc"] == pytest.approx(75.0)


def test_binary_auroc_is_not_fooled_by_saturated_probabilities():
    # softmax in float32 rounds both class-1 probabilities to 1.0 (a tie, AUROC 50)
    outputs = torch.tensor([[0.0, 30.0], [0.0, 40.0]])
    assert score("multiclass", outputs, torch.tensor([0, 1]))["auroc"] == pytest.approx(100.0)


def test_binary_auroc_is_nan_when_labels_have_one_class():
    outputs = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 2.0]])
    result = score("multiclass", outputs, torch.tensor([1, 1, 1]))
    assert math.isnan(result["auroc"])
    assert result["accuracy"] == pytest.approx(200 / 3)


def test_multiclass_rejects_bad_labels_and_shapes():
    with pytest.raises(ValueError, match=r"0\.\.2"):
        score("multiclass", torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"\[N, K\]"):
        score("multiclass", torch.zeros(4), torch.zeros(4, dtype=torch.long))


# --- multilabel ------------------------------------------------------------------------------

def test_multilabel_matches_sklearn_on_random_data():
    generator = torch.Generator().manual_seed(2)
    outputs = torch.randn(250, 7, generator=generator)
    labels = (torch.rand(250, 7, generator=generator) < 0.3).float()
    result = score("multilabel", outputs, labels)
    predictions = (torch.sigmoid(outputs) > 0.5).int().numpy()
    truth = labels.int().numpy()
    assert result["macro_f1"] == pytest.approx(100 * f1_score(truth, predictions, average="macro"))
    assert result["micro_f1"] == pytest.approx(100 * f1_score(truth, predictions, average="micro"))


def test_multilabel_hand_case():
    outputs = torch.tensor([[1.0, -1.0, -1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, -1.0]])
    labels = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    result = score("multilabel", outputs, labels)
    # label 0: TP 1 FP 1 -> 2/3; label 1: TP 1 FN 1 -> 2/3; label 2: FN 1 -> 0
    assert result["macro_f1"] == pytest.approx(100 * 4 / 9)
    # pooled: TP 2, FP 1, FN 2 -> P 2/3, R 1/2, F1 4/7
    assert result["micro_f1"] == pytest.approx(100 * 4 / 7)


def test_multilabel_threshold_is_strictly_above_one_half():
    outputs = torch.tensor([[0.0, 0.1]])  # sigmoid 0.5 -> not predicted; 0.525 -> predicted
    labels = torch.tensor([[1.0, 1.0]])
    result = score("multilabel", outputs, labels)
    assert result["micro_f1"] == pytest.approx(100 * 2 / 3)  # TP 1, FN 1


def test_multilabel_rejects_bad_labels():
    with pytest.raises(ValueError, match="0 or 1"):
        score("multilabel", torch.zeros(2, 2), torch.tensor([[0.0, 2.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"\[N, K\]"):
        score("multilabel", torch.zeros(2, 3), torch.zeros(2, 2))


# --- regression ------------------------------------------------------------------------------

def test_regression_mae_hand_case_and_column_outputs():
    labels = torch.tensor([1.5, 2.0, 2.0])
    assert score("regression", torch.tensor([1.0, 2.0, 3.0]), labels) == {"mae": pytest.approx(0.5)}
    assert score("regression", torch.tensor([[1.0], [2.0], [3.0]]), labels)["mae"] == pytest.approx(0.5)


def test_regression_matches_sklearn_on_random_data():
    generator = torch.Generator().manual_seed(3)
    outputs, labels = torch.randn(100, generator=generator), torch.randn(100, generator=generator)
    assert score("regression", outputs, labels)["mae"] == pytest.approx(
        mean_absolute_error(labels.numpy(), outputs.numpy())
    )


# --- shared checks ---------------------------------------------------------------------------

def test_score_rejects_bad_input():
    with pytest.raises(ValueError, match="task must be"):
        score("ranking", torch.zeros(2, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="same N"):
        score("multiclass", torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="same N"):
        score("regression", torch.zeros(0), torch.zeros(0))
    with pytest.raises(ValueError, match="NaN"):
        score("regression", torch.tensor([1.0, float("nan")]), torch.zeros(2))


def test_primary_metric_per_task():
    assert primary_metric("multiclass", 101) == "accuracy"
    assert primary_metric("multiclass", 2) == "auroc"
    assert primary_metric("multilabel", 23) == "macro_f1"
    assert primary_metric("regression", 1) == "mae"
    with pytest.raises(ValueError, match="at least 2"):
        primary_metric("multiclass", 1)
    with pytest.raises(ValueError, match="task must be"):
        primary_metric("segmentation", 4)


def test_average_and_delta_gap():
    # BalGrad Table 1, Food-101 baseline: image impaired 12.99, text impaired 63.52
    assert average(12.99, 63.52) == pytest.approx(38.255)
    assert delta_gap(12.99, 63.52) == pytest.approx(50.53)
    assert delta_gap(63.52, 12.99) == delta_gap(12.99, 63.52)
    assert delta_gap(70.0, 70.0) == 0.0


def test_higher_is_better():
    assert all(higher_is_better(m) for m in ("accuracy", "macro_f1", "micro_f1", "auroc"))
    assert not higher_is_better("mae")
    with pytest.raises(ValueError, match="unknown metric"):
        higher_is_better("loss")


def test_average_and_delta_gap_over_three_modalities():
    assert average(10.0, 20.0, 60.0) == pytest.approx(30.0)
    assert delta_gap(10.0, 20.0, 60.0) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="at least 2"):
        delta_gap(10.0)
