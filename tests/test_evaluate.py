import pytest
import torch

from modbal_lib.evaluate import evaluate
from modbal_lib.features import FeatureSet, Impairment
from modbal_lib.train import train

from helpers import toy_features


def impaired_source(clean: FeatureSet):
    """A stand-in for load_features: missing = zero rows, noisy = heavy Gaussian noise, on a seeded share."""
    def features_for(impairment: Impairment | None) -> FeatureSet:
        if impairment is None:
            return clean
        values = clean.features[impairment.modality].clone()
        n = len(clean)
        chosen = torch.randperm(n, generator=torch.Generator().manual_seed(impairment.seed))[: round(impairment.ratio * n)]
        values[chosen] = 0.0 if impairment.kind == "missing" else values[chosen] + 5 * torch.randn_like(values[chosen])
        return FeatureSet(clean.modalities, {**clean.features, impairment.modality: values}, clean.labels,
                          clean.task, clean.class_names)
    return features_for


def test_protocol_table_on_a_model_that_leans_on_one_modality():
    train_set, test_set = toy_features(seed=0), toy_features(seed=1)
    model = train(train_set, "joint", epochs=15, batch_size=64, lr=1e-2, device="cpu").model
    table = evaluate(model, impaired_source(test_set))
    assert table.metric == "accuracy"
    assert table.full > 90
    # leaning on the easy modality: losing it hurts far more than losing the hard one
    assert table.missing["easy"] < table.missing["hard"] - 20
    assert table.missing_delta_gap == pytest.approx(abs(table.missing["easy"] - table.missing["hard"]))
    assert table.missing_avg == pytest.approx((table.missing["easy"] + table.missing["hard"]) / 2)
    assert set(table.noisy) == {"easy", "hard"}
    sweep = table.ratio_sweep["easy"]
    assert list(sweep) == [0.2, 0.4, 0.6, 0.8]
    assert sweep[0.2] > sweep[0.8]  # more missing, lower score
    assert table.negative_transfer == []
    row_names = [name for name, _ in table.rows()]
    assert row_names[:4] == ["Full", "missing easy", "missing hard", "missing Avg"]
    as_dict = table.as_dict()
    assert as_dict["missing"]["delta_gap"] == table.missing_delta_gap and "0.4" in as_dict["ratio_sweep"]["hard"]


def test_negative_transfer_is_flagged():
    train_set = toy_features(seed=0)
    model = train(train_set, "joint", epochs=1, device="cpu").model
    table = evaluate(model, impaired_source(toy_features(seed=1)), ratios=(), noisy=False)
    table.full, table.missing = 50.0, {"easy": 40.0, "hard": 60.0}
    assert table.negative_transfer == ["hard"]
