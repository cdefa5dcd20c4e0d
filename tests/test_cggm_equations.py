"""CGGM's equations: improvements, balancing terms (Eq. 7) with both guards, direction loss (Eq. 12)."""

import pytest
import torch
import torch.nn.functional as F

from modbal_lib.methods.cggm import balance_terms, direction_loss, metric_improvements


def close(actual, expected, atol=1e-5):
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype), atol=atol, rtol=0)


# --- improvements ------------------------------------------------------------------------

def test_metric_improvements_accuracy_and_mae():
    close(metric_improvements([0.5, 0.7], [0.4, 0.7]), [0.1, 0.0])
    # MAE falls from 1.0 to 0.8 for the first modality: that is progress of 0.2
    close(metric_improvements([0.8, 1.0], [1.0, 1.0], higher_is_better=False), [0.2, 0.0])


def test_metric_improvements_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same length"):
        metric_improvements([0.1, 0.2], [0.1, 0.2, 0.3])


# --- balancing terms (Eq. 7) -------------------------------------------------------------

@pytest.mark.parametrize("guard", ["robust", "official"])
def test_balance_terms_hand_cases(guard):
    close(balance_terms([0.3, 0.1], rho=1.2, guard=guard), [0.3, 0.9])  # 1.2 * (0.1, 0.3) / 0.4
    close(balance_terms([0.2, 0.1, 0.1], rho=1.0, guard=guard), [0.5, 0.75, 0.75])
    close(balance_terms([0.2, 0.0], rho=1.3, guard=guard), [0.0, 1.3])  # only one improved


@pytest.mark.parametrize("guard", ["robust", "official"])
def test_equal_improvements_give_the_neutral_value(guard):
    close(balance_terms([0.1, 0.1], rho=1.2, guard=guard), [0.6, 0.6])
    close(balance_terms([0.05, 0.05, 0.05], rho=1.2, guard=guard), [0.8, 0.8, 0.8])


def test_faster_improving_modality_is_slowed():
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        d = torch.rand(3, generator=generator) * 0.1
        B = balance_terms(d, rho=1.3)
        assert B.argmin() == d.argmax()
        assert B.argmax() == d.argmin()
        # sum_i B_i = rho * (M - 1) whenever sum d != 0
        assert B.sum().item() == pytest.approx(1.3 * 2, abs=1e-5)


def test_robust_guard_no_progress_gives_neutral_value():
    close(balance_terms([0.0, 0.0], rho=1.2), [0.6, 0.6])
    close(balance_terms([1e-9, 0.0, 0.0], rho=1.5), [1.0, 1.0, 1.0])


def test_robust_guard_all_worse_gives_neutral_value():
    close(balance_terms([-0.1, -0.3], rho=1.2), [0.6, 0.6])


def test_robust_guard_counts_a_worse_modality_as_no_progress():
    # the official code would give (-0.6, 1.8): a sign flip for modality 0
    close(balance_terms([0.3, -0.1], rho=1.2), [0.0, 1.2])
    close(balance_terms([0.1, -0.1], rho=1.2), [0.0, 1.2])


def test_robust_guard_keeps_terms_in_zero_to_rho():
    generator = torch.Generator().manual_seed(2)
    for _ in range(50):
        d = torch.randn(4, generator=generator) * 0.05
        B = balance_terms(d, rho=1.3)
        assert (B >= 0).all() and (B <= 1.3 + 1e-6).all()


def test_official_guard_reproduces_sign_flips_and_blow_ups():
    close(balance_terms([0.3, -0.1], rho=1.2, guard="official"), [-0.6, 1.8])
    # sum d = 0: divide by 1e-8
    B = balance_terms([0.1, -0.1], rho=1.2, guard="official")
    assert B[0].item() < -1e6 and B[1].item() > 1e6
    # no change at all: (1e-8 - 0) / 1e-8 = 1, so every B_i = rho
    close(balance_terms([0.0, 0.0], rho=1.2, guard="official"), [1.2, 1.2])
    # everyone got worse: the modality that fell most gets the SMALLER term
    close(balance_terms([-0.1, -0.3], rho=1.2, guard="official"), [0.9, 0.3])


def test_balance_terms_rejects_bad_input():
    with pytest.raises(ValueError, match="guard"):
        balance_terms([0.1, 0.2], rho=1.2, guard="clipped")
    with pytest.raises(ValueError, match="M >= 2"):
        balance_terms([0.1], rho=1.2)


# --- direction loss (Eq. 12) -------------------------------------------------------------

def test_direction_loss_hand_cases():
    fused = torch.tensor([1.0, 0.0])
    # cosines (1, 0): ((1 - 1) + (2 - 0)) / 2
    loss = direction_loss(fused, [torch.tensor([3.0, 0.0]), torch.tensor([0.0, 5.0])], torch.tensor([1.0, 2.0]))
    assert loss.item() == pytest.approx(1.0)
    # negative B: cosines (1, -1): ((1 + 1) + (0.5 + 0.5)) / 2
    loss = direction_loss(fused, [torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0])], torch.tensor([-1.0, 0.5]))
    assert loss.item() == pytest.approx(1.5)


def test_direction_loss_is_zero_when_cosines_match_the_signs_of_B():
    fused = torch.tensor([[1.0, 1.0], [2.0, -1.0]])  # matrices are flattened
    grads = [2 * fused, -3 * fused]
    assert direction_loss(fused, grads, torch.tensor([1.0, -1.0])).item() == pytest.approx(0.0, abs=1e-6)


def test_direction_loss_matches_formula_on_random_matrices():
    generator = torch.Generator().manual_seed(3)
    fused = torch.randn(4, 6, generator=generator)
    grads = [torch.randn(4, 6, generator=generator) for _ in range(3)]
    B = torch.tensor([0.4, 1.1, -0.2])
    cosines = torch.stack([F.cosine_similarity(fused.flatten(), g.flatten(), dim=0) for g in grads])
    expected = (B.abs() - B * cosines).sum() / 3
    assert direction_loss(fused, grads, B).item() == pytest.approx(expected.item(), abs=1e-6)


def test_direction_loss_gradient_turns_fused_gradient_towards_positive_B():
    generator = torch.Generator().manual_seed(4)
    target = torch.randn(10, generator=generator)
    other = torch.randn(10, generator=generator)
    start = torch.randn(10, generator=generator)

    def cosine_after_step(B):
        fused = start.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(direction_loss(fused, [target, other], B), fused)
        moved = start - 0.1 * grad
        return F.cosine_similarity(moved, target, dim=0).item()

    before = F.cosine_similarity(start, target, dim=0).item()
    assert cosine_after_step(torch.tensor([1.0, 0.0])) > before  # positive B: cos goes up
    assert cosine_after_step(torch.tensor([-1.0, 0.0])) < before  # negative B: cos goes down


def test_direction_loss_treats_classifier_gradients_as_constants():
    fused = torch.randn(5, requires_grad=True)
    unimodal = [torch.randn(5, requires_grad=True), torch.randn(5, requires_grad=True)]
    direction_loss(fused, unimodal, torch.tensor([0.7, 1.2])).backward()
    assert fused.grad.abs().sum() > 0
    assert all(g.grad is None for g in unimodal)


def test_zero_classifier_gradient_has_cosine_zero():
    fused = torch.tensor([1.0, 2.0])
    loss = direction_loss(fused, [torch.zeros(2), fused.clone()], torch.tensor([0.5, 1.0]))
    assert loss.item() == pytest.approx((0.5 + 0.0) / 2)  # cosines 0 and 1


def test_direction_loss_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="one balancing term per modality"):
        direction_loss(torch.zeros(4), [torch.zeros(4)] * 2, torch.tensor([1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="same shape"):
        direction_loss(torch.zeros(4), [torch.zeros(4), torch.zeros(6)], torch.tensor([1.0, 1.0]))
