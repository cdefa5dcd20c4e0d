"""BalGrad's equations: mutual KL, loss-based reweighting, the schedule (Eq. 4), the projection (Eq. 6)."""

import math

import pytest
import torch
import torch.nn.functional as F

from modbal_lib.methods.balgrad import kl_schedule, kl_weights, mutual_kl, project_conflicting

# --- mutual KL ---------------------------------------------------------------------------

def test_mutual_kl_hand_case():
    # p^v = (1/2, 1/2), p^l = (3/4, 1/4)
    logits_v = torch.zeros(1, 2)
    logits_l = torch.tensor([[math.log(3.0), 0.0]])
    kl_v, kl_l = mutual_kl(logits_v, logits_l)
    expected_kl_l = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)  # KL(p^l || p^v)
    expected_kl_v = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)  # KL(p^v || p^l)
    assert kl_l.item() == pytest.approx(expected_kl_l, abs=1e-6)
    assert kl_v.item() == pytest.approx(expected_kl_v, abs=1e-6)
    assert kl_l.item() == pytest.approx(0.130812, abs=1e-5)
    assert kl_v.item() == pytest.approx(0.143841, abs=1e-5)


def test_mutual_kl_matches_torch_kl_div_and_is_batch_mean():
    generator = torch.Generator().manual_seed(0)
    logits_v = torch.randn(16, 5, generator=generator)
    logits_l = torch.randn(16, 5, generator=generator)
    kl_v, kl_l = mutual_kl(logits_v, logits_l)
    # F.kl_div(log q, p) = KL(p || q)
    reference_l = F.kl_div(F.log_softmax(logits_v, -1), F.softmax(logits_l, -1), reduction="batchmean")
    reference_v = F.kl_div(F.log_softmax(logits_l, -1), F.softmax(logits_v, -1), reduction="batchmean")
    torch.testing.assert_close(kl_l, reference_l)
    torch.testing.assert_close(kl_v, reference_v)
    assert kl_v > 0 and kl_l > 0


def test_mutual_kl_is_zero_for_equal_predictions():
    logits = torch.randn(4, 3)
    kl_v, kl_l = mutual_kl(logits, logits.clone())
    assert kl_v.item() == pytest.approx(0.0, abs=1e-6)
    assert kl_l.item() == pytest.approx(0.0, abs=1e-6)


def test_mutual_kl_detached_target_moves_only_its_own_branch():
    logits_v = torch.randn(8, 4, requires_grad=True)
    logits_l = torch.randn(8, 4, requires_grad=True)
    _, kl_l = mutual_kl(logits_v, logits_l, detach_target=True)
    kl_l.backward()
    assert logits_v.grad is None
    assert logits_l.grad.abs().sum() > 0


def test_mutual_kl_without_detach_sends_gradient_into_both_branches():
    logits_v = torch.randn(8, 4, requires_grad=True)
    logits_l = torch.randn(8, 4, requires_grad=True)
    _, kl_l = mutual_kl(logits_v, logits_l, detach_target=False)
    kl_l.backward()
    assert logits_v.grad.abs().sum() > 0
    assert logits_l.grad.abs().sum() > 0


def test_mutual_kl_values_do_not_depend_on_detaching():
    logits_v, logits_l = torch.randn(6, 3), torch.randn(6, 3)
    detached = mutual_kl(logits_v, logits_l, detach_target=True)
    attached = mutual_kl(logits_v, logits_l, detach_target=False)
    for a, b in zip(detached, attached, strict=True):
        torch.testing.assert_close(a, b)


def test_kl_l_step_pulls_language_prediction_towards_vision():
    logits_v = torch.tensor([[2.0, 0.0, -1.0]])
    logits_l = torch.tensor([[-1.0, 0.5, 1.0]], requires_grad=True)
    _, kl_l = mutual_kl(logits_v, logits_l)
    (grad,) = torch.autograd.grad(kl_l, logits_l)
    _, kl_after = mutual_kl(logits_v, logits_l.detach() - 0.1 * grad)
    assert kl_after < kl_l


def test_mutual_kl_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same"):
        mutual_kl(torch.zeros(2, 3), torch.zeros(2, 4))


# --- reweighting -------------------------------------------------------------------------

def test_kl_weights_hand_case():
    w_v, w_l = kl_weights(torch.tensor(1.0), torch.tensor(3.0))
    assert w_v.item() == pytest.approx(0.25)
    assert w_l.item() == pytest.approx(0.75)


def test_kl_weights_favour_the_lagging_modality_and_sum_to_one():
    w_v, w_l = kl_weights(0.2, 1.4)  # language lags (higher loss): pulled harder
    assert w_l > w_v
    assert (w_v + w_l).item() == pytest.approx(1.0)


def test_kl_weights_are_constants():
    loss_v = torch.tensor(0.7, requires_grad=True)
    loss_l = torch.tensor(0.3, requires_grad=True)
    w_v, w_l = kl_weights(loss_v * 2, loss_l * 2)
    assert not w_v.requires_grad and not w_l.requires_grad


def test_kl_weights_zero_losses_give_equal_weights():
    w_v, w_l = kl_weights(0.0, 0.0)
    assert w_v.item() == 0.5 and w_l.item() == 0.5


def test_kl_weights_reject_negative_losses():
    with pytest.raises(ValueError, match="non-negative"):
        kl_weights(-0.1, 1.0)


# --- schedule (Eq. 4) -------------------------------------------------------------------

def test_kl_schedule_values():
    assert kl_schedule(0) == pytest.approx(0.75)
    assert kl_schedule(0, gamma=1.0) == pytest.approx(1.5)
    assert kl_schedule(1) == pytest.approx(0.5 + 0.5 / (1 + math.exp(-1)))
    assert kl_schedule(1) == pytest.approx(0.8655293, abs=1e-7)


def test_kl_schedule_grows_to_twice_gamma():
    values = [kl_schedule(t) for t in (0, 0.5, 1, 2, 5, 10)]
    assert values == sorted(values)
    assert kl_schedule(50) == pytest.approx(1.0, abs=1e-12)
    assert kl_schedule(1e6, gamma=0.3) == pytest.approx(0.6)
    assert all(0.75 <= v < 1.0 for v in values)


def test_kl_schedule_rejects_negative_progress():
    with pytest.raises(ValueError, match=">= 0"):
        kl_schedule(-1)


# --- projection (Eq. 6) -----------------------------------------------------------------

def test_projection_hand_case():
    g = torch.tensor([1.0, 0.0])
    ref = torch.tensor([-1.0, 1.0])  # g . ref = -1, ||ref||^2 = 2
    projected = project_conflicting(g, ref)
    torch.testing.assert_close(projected, torch.tensor([0.5, 0.5]))
    assert torch.dot(projected, ref).item() == pytest.approx(0.0, abs=1e-7)


def test_projection_leaves_aligned_and_orthogonal_vectors_untouched():
    g = torch.tensor([1.0, 2.0, -3.0])
    assert torch.equal(project_conflicting(g, torch.tensor([1.0, 0.0, 0.0])), g)  # aligned
    assert torch.equal(project_conflicting(g, torch.tensor([2.0, -1.0, 0.0])), g)  # orthogonal, dot = 0


def test_projection_against_zero_reference_is_identity():
    g = torch.tensor([1.0, -2.0])
    result = project_conflicting(g, torch.zeros(2))
    assert torch.equal(result, g)


def test_projection_removes_exactly_the_conflicting_component():
    generator = torch.Generator().manual_seed(1)
    conflicts = 0
    for _ in range(50):
        g = torch.randn(20, generator=generator, dtype=torch.float64)
        ref = torch.randn(20, generator=generator, dtype=torch.float64)
        projected = project_conflicting(g, ref)
        removed = g - projected
        if torch.dot(g, ref) < 0:
            conflicts += 1
            assert torch.dot(projected, ref).item() == pytest.approx(0.0, abs=1e-10)
            # what was removed is a multiple of ref: the part of g orthogonal to ref is kept
            assert torch.linalg.matrix_rank(torch.stack([removed, ref])).item() == 1
        else:
            assert torch.equal(projected, g)
    assert 10 < conflicts < 40  # both branches were exercised


def test_projection_rejects_bad_shapes():
    with pytest.raises(ValueError, match="1-D"):
        project_conflicting(torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="1-D"):
        project_conflicting(torch.zeros(3), torch.zeros(4))
