"""GOAL's equations: normalised entropy and AL weights (Eqs. 6-7), gradient orthogonalization (Eqs. 9-10)."""

import math

import pytest
import torch

from modbal_lib.methods.goal import adaptive_weights, normalized_entropy, orthogonalize, total_variance


def close(actual, expected, atol=1e-6):
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype), atol=atol, rtol=0)


# --- entropy and total variance -------------------------------------------------------------

def test_normalized_entropy_hand_cases():
    logits = torch.tensor([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0]])
    close(normalized_entropy(logits), [1.0, 0.0])
    # p = (3/4, 1/4): H = -(3/4 ln 3/4 + 1/4 ln 1/4), divided by ln 2
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2)
    assert normalized_entropy(torch.tensor([math.log(3.0), 0.0])).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.811278, abs=1e-6)


def test_total_variance_hand_cases():
    close(total_variance(torch.tensor([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])),
          [0.75, 0.0, 0.5])


def test_entropy_and_total_variance_agree_to_second_order_near_uniform():
    # Appendix A.3. With p = 1/K + delta: 1 - u ~ K/(2 log K) |delta|^2 and
    # 1 - TV/(1 - 1/K) ~ K/(K - 1) |delta|^2, so their ratio tends to (K - 1) / (2 log K).
    K = 5
    direction = torch.tensor([1.0, -2.0, 0.5, 0.0, 0.5], dtype=torch.float64)
    for scale, tolerance in ((1e-2, 5e-2), (1e-3, 5e-3)):
        probs = torch.full((K,), 1 / K, dtype=torch.float64) + scale * direction
        entropy_gap = 1 - normalized_entropy(probs.log())
        variance_gap = 1 - total_variance(probs) / (1 - 1 / K)
        assert (entropy_gap / variance_gap).item() == pytest.approx((K - 1) / (2 * math.log(K)), rel=tolerance)


def test_normalized_entropy_needs_two_classes():
    with pytest.raises(ValueError, match="2 classes"):
        normalized_entropy(torch.zeros(3, 1))


# --- adaptive leveraging (Eqs. 6-7) --------------------------------------------------------

def test_adaptive_weights_hand_case():
    # one sample; modality 0 uniform (c = 0), modality 1 p = (3/4, 1/4) (c = 1 - 0.811278)
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])
    confidence = 1 - 0.8112781
    w1 = math.exp(confidence) / (1 + math.exp(confidence))
    close(adaptive_weights(logits), [1 - w1, w1])
    # temperature divides the confidences
    w1_cold = math.exp(confidence / 0.2) / (1 + math.exp(confidence / 0.2))
    close(adaptive_weights(logits, T=0.2), [1 - w1_cold, w1_cold])


def test_adaptive_weights_average_over_the_batch():
    confident, uniform = [10.0, -10.0], [0.0, 0.0]
    logits = torch.tensor([[confident, uniform], [uniform, confident]])
    e = math.e  # per sample: softmax over (1, 0) and (0, 1) confidences
    per_sample = torch.tensor([[e / (e + 1), 1 / (e + 1)], [1 / (e + 1), e / (e + 1)]])
    close(adaptive_weights(logits), per_sample.mean(0).tolist(), atol=1e-5)
    close(adaptive_weights(logits), [0.5, 0.5], atol=1e-5)


def test_adaptive_weights_are_positive_sum_to_one_and_favour_confidence():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 3, 6, generator=generator)
    logits[:, 2] *= 5  # modality 2 is far more confident
    weights = adaptive_weights(logits)
    assert weights.shape == (3,)
    assert (weights > 0).all()
    assert weights.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert weights.argmax().item() == 2


def test_temperature_controls_sharpness():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(16, 2, 4, generator=generator)
    logits[:, 0] *= 4
    close(adaptive_weights(logits, T=1e6), [0.5, 0.5], atol=1e-5)
    sharpness = [adaptive_weights(logits, T=T).max().item() for T in (1.0, 0.5, 0.2, 0.05)]
    assert sharpness == sorted(sharpness) and sharpness[-1] > sharpness[0]


def test_adaptive_weights_are_constants():
    logits = torch.randn(4, 2, 3, requires_grad=True)
    assert not adaptive_weights(logits).requires_grad


def test_adaptive_weights_reject_bad_input():
    with pytest.raises(ValueError, match=r"\[batch, modalities, classes\]"):
        adaptive_weights(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="positive"):
        adaptive_weights(torch.zeros(4, 2, 3), T=0.0)


# --- gradient orthogonalization (Eqs. 9-10) ------------------------------------------------

def test_orthogonalize_two_modalities_hand_case():
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])  # g1 . g2 = -1
    r1, r2 = orthogonalize([g1, g2])
    close(r1, [0.5, 0.5])  # g1 + (1/2) g2
    close(r2, [0.0, 1.0])  # g2 + 1 g1
    assert torch.dot(r1, g2).item() == pytest.approx(0.0, abs=1e-6)
    assert torch.dot(r2, g1).item() == pytest.approx(0.0, abs=1e-6)
    assert torch.dot(r1, r2).item() >= 0


def test_orthogonalize_leaves_aligned_gradients_untouched_and_inputs_unmodified():
    g1, g2 = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -1.0])  # dot = 1
    r1, r2 = orthogonalize([g1, g2])
    assert torch.equal(r1, g1) and torch.equal(r2, g2)
    g3 = torch.tensor([-1.0, 0.0])
    orthogonalize([g1, g3])
    assert torch.equal(g1, torch.tensor([1.0, 2.0])) and torch.equal(g3, torch.tensor([-1.0, 0.0]))


def test_orthogonalize_projects_row_by_row():
    g1 = torch.tensor([[1.0, 0.0], [1.0, 2.0]])
    g2 = torch.tensor([[-1.0, 1.0], [3.0, -1.0]])  # row 0 conflicts, row 1 does not
    r1, r2 = orthogonalize([g1, g2])
    close(r1, [[0.5, 0.5], [1.0, 2.0]])
    close(r2, [[0.0, 1.0], [3.0, -1.0]])


def test_after_orthogonalize_two_modalities_no_longer_conflict():
    generator = torch.Generator().manual_seed(2)
    g1 = torch.randn(64, 16, generator=generator)
    g2 = torch.randn(64, 16, generator=generator)
    assert ((g1 * g2).sum(-1) < 0).sum() > 10  # many rows conflicted before
    r1, r2 = orthogonalize([g1, g2])
    assert ((r1 * r2).sum(-1) >= -1e-6).all()
    assert ((r1 * g2).sum(-1) >= -1e-6).all()
    assert ((r2 * g1).sum(-1) >= -1e-6).all()
    flat1, flat2 = orthogonalize([g1.flatten(), -g1.flatten() + 0.1 * g2.flatten()])
    assert torch.dot(flat1, flat2).item() >= -1e-6


def test_orthogonalize_three_modalities_order_and_original_reference_matter():
    g1, g2, g3 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0]), torch.tensor([-1.0, -2.0])
    r1, r2, r3 = orthogonalize([g1, g2, g3])
    # g1: against g2 -> (0.5, 0.5); then against g3 (dot -1.5, ||g3||^2 5) -> (0.2, -0.1)
    close(r1, [0.2, -0.1])
    # the second projection brought back a conflict with g2
    assert torch.dot(r1, g2).item() == pytest.approx(-0.3, abs=1e-6)
    # g2 is projected against the ORIGINAL g1 (-> (0, 1)), then g3 (dot -2) -> (-0.4, 0.2);
    # a first step against the already projected r1 would have given (0.2, 0.4) instead of (0, 1)
    close(r2, [-0.4, 0.2])
    close(r3, [-1.0, -1.0])
    # the loop order matters: with g3 listed before g2, g1 ends at (0.2, 0.2)
    close(orthogonalize([g1, g3, g2])[0], [0.2, 0.2])


def test_orthogonalize_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        orthogonalize([torch.zeros(3)])
    with pytest.raises(ValueError, match="one shape"):
        orthogonalize([torch.zeros(3), torch.zeros(4)])
    with pytest.raises(ValueError, match="one shape"):
        orthogonalize([torch.zeros(2, 2, 2), torch.zeros(2, 2, 2)])
