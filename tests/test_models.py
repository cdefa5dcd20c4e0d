import pytest
import torch

from modbal_lib.models import LateFusion


@pytest.mark.parametrize("fusion", ["concat", "sum", "attention"])
def test_shapes_and_probes_sum_to_fused_logits(fusion):
    torch.manual_seed(0)
    model = LateFusion({"a": (6,), "b": (3,)}, num_outputs=5, hidden=8, fusion=fusion, unimodal_heads=True)
    inputs = {"a": torch.randn(4, 6), "b": torch.randn(4, 3)}
    out = model(inputs)
    assert out.logits.shape == (4, 5)
    assert set(out.embeddings) == {"a", "b"} and out.embeddings["a"].shape == (4, 8)
    assert out.unimodal_logits["b"].shape == (4, 5)
    probes = model.probe_logits(out.embeddings)
    torch.testing.assert_close(probes["a"] + probes["b"], out.logits)


def test_attention_weights_are_a_distribution_over_modalities():
    model = LateFusion({"a": (2,), "b": (2,), "c": (2,)}, num_outputs=3, hidden=4, fusion="attention")
    weights = model.modality_weights(model.embed({m: torch.randn(5, 2) for m in "abc"}))
    assert weights.shape == (5, 3)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(5))


def test_concat_probe_is_the_weight_block_of_its_modality():
    model = LateFusion({"a": (3,), "b": (3,)}, num_outputs=2, hidden=4)
    embeddings = model.embed({"a": torch.randn(2, 3), "b": torch.randn(2, 3)})
    expected = embeddings["b"] @ model.head.weight[:, 4:].T + model.head.bias / 2
    torch.testing.assert_close(model.probe_logits(embeddings)["b"], expected)


def test_parameter_groups_partition_the_model():
    model = LateFusion({"a": (3,), "b": (3,)}, num_outputs=2, hidden=4, fusion="attention", unimodal_heads=True)
    branch = {id(p) for m in "ab" for p in model.branch_parameters(m)}
    fusion = {id(p) for p in model.fusion_parameters()}
    heads = {id(p) for p in model.unimodal_heads.parameters()}
    assert branch.isdisjoint(fusion) and branch.isdisjoint(heads)
    assert branch | fusion | heads == {id(p) for p in model.parameters()}


def test_bad_configuration_errors():
    with pytest.raises(ValueError, match="fusion must be one of"):
        LateFusion({"a": (3,)}, 2, fusion="product")
    with pytest.raises(ValueError, match=r"vector \[D\] or an image"):
        LateFusion({"a": (3, 4)}, 2)
