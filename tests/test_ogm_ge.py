"""OGM-GE's coefficient (Eq. 10, official tanh(alpha * ratio) form) and its Gaussian GE noise."""

import math

import pytest
import torch

from modbal_lib.grads import current_grads
from modbal_lib.methods.base import Step, Method
from modbal_lib.methods.ogm_ge import OGMGE, coefficients, ge_noise, modality_scores
from modbal_lib.models import LateFusion
from modbal_lib.train import train

from helpers import toy_features


def test_first_modality_dominates():
    k_a, k_b = coefficients(30.0, 10.0, alpha=0.8)  # ratio 3
    assert k_a == pytest.approx(1 - math.tanh(2.4))
    assert k_a == pytest.approx(0.016325, abs=1e-6)
    assert k_b == 1.0


def test_second_modality_dominates():
    k_a, k_b = coefficients(10.0, 30.0, alpha=0.8)
    assert k_a == 1.0
    assert k_b == pytest.approx(1 - math.tanh(2.4))


def test_equal_scores_slow_neither():
    assert coefficients(12.5, 12.5, alpha=0.8) == (1.0, 1.0)


def test_coefficient_jumps_at_ratio_one():
    # tanh(alpha * r), not tanh(alpha * (r - 1)): a tiny lead already cuts the gradient to 1 - tanh(alpha)
    k_a, _ = coefficients(10.001, 10.0, alpha=0.8)
    assert k_a == pytest.approx(1 - math.tanh(0.8), abs=1e-4)
    assert k_a == pytest.approx(0.335963, abs=1e-4)


def test_stronger_lead_and_larger_alpha_slow_more():
    assert coefficients(20, 10, 0.8)[0] < coefficients(12, 10, 0.8)[0]
    assert coefficients(12, 10, 1.0)[0] < coefficients(12, 10, 0.5)[0]
    assert coefficients(12, 10, 0.0) == (1.0, 1.0)


def test_coefficients_accept_tensor_scores():
    k_a, k_b = coefficients(torch.tensor(3.0), torch.tensor(6.0), alpha=0.5)
    assert (k_a, k_b) == (1.0, pytest.approx(1 - math.tanh(1.0)))


def test_coefficients_reject_bad_input():
    with pytest.raises(ValueError, match="positive"):
        coefficients(0.0, 1.0, alpha=0.8)
    with pytest.raises(ValueError, match="alpha"):
        coefficients(1.0, 2.0, alpha=-0.1)


def test_ge_noise_has_the_gradient_spread():
    generator = torch.Generator().manual_seed(0)
    grad = 2.0 * torch.randn(200, 500, generator=generator)
    noise = ge_noise(grad, torch.Generator().manual_seed(1))
    assert noise.shape == grad.shape and noise.dtype == grad.dtype
    assert noise.std().item() == pytest.approx(grad.std().item(), rel=0.01)
    assert abs(noise.mean().item()) < 0.02


def test_ge_noise_is_reproducible_with_a_generator():
    grad = torch.randn(10, 10)
    first = ge_noise(grad, torch.Generator().manual_seed(3))
    again = ge_noise(grad, torch.Generator().manual_seed(3))
    other = ge_noise(grad, torch.Generator().manual_seed(4))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_ge_noise_of_a_constant_gradient_is_tiny():
    noise = ge_noise(torch.ones(1000), torch.Generator().manual_seed(0))
    assert noise.abs().max().item() < 1e-7
    assert ge_noise(torch.tensor([3.0])).shape == (1,)  # a one-element gradient is defined




def _one_step_grads(method, features, seed=0):
    torch.manual_seed(seed)
    model = LateFusion({m: tuple(x.shape[1:]) for m, x in features.features.items()}, len(features.class_names), hidden=8)
    method.setup(model, features, 1e-3)
    inputs = {m: x[:32] for m, x in features.features.items()}
    output = model(inputs)
    step = Step(model, inputs, features.labels[:32], features.task, output, 0, 0, 1, 1)
    scalars = method.backward(step, method.losses(step))
    return model, current_grads(list(model.parameters())), scalars, step


def test_strategy_scales_the_dominant_branch_by_k():
    features = toy_features()
    _, joint_grads, _, _ = _one_step_grads(Method(), features)
    model, grads, scalars, step = _one_step_grads(OGMGE(alpha=0.8, ge=False), features)
    score_easy, score_hard = modality_scores(model, step.output.embeddings, step.labels)
    k_easy, k_hard = coefficients(score_easy, score_hard, 0.8)
    assert float(scalars["k_easy"]) == k_easy and float(scalars["k_hard"]) == k_hard
    assert float(scalars["score_easy"]) == float(score_easy) / len(step.labels)
    names = [name for name, _ in model.named_parameters()]
    for name, joint, ogm in zip(names, joint_grads, grads):
        factor = k_easy if name.startswith("branches.easy") else k_hard if name.startswith("branches.hard") else 1.0
        torch.testing.assert_close(ogm, joint * factor)


def test_strategy_without_modulation_or_noise_is_joint_training():
    features = toy_features()
    _, joint_grads, _, _ = _one_step_grads(Method(), features)
    _, grads, _, _ = _one_step_grads(OGMGE(alpha=0.0, ge=False), features)
    for a, b in zip(joint_grads, grads):
        torch.testing.assert_close(a, b)


def test_ge_noise_changes_branch_gradients_only_and_training_is_repeatable():
    features = toy_features()
    _, joint_grads, _, _ = _one_step_grads(Method(), features)
    model, grads, _, _ = _one_step_grads(OGMGE(alpha=0.0, ge=True), features)
    names = [name for name, _ in model.named_parameters()]
    for name, a, b in zip(names, joint_grads, grads):
        assert torch.equal(a, b) != name.startswith("branches.")
    first = train(features, "ogm_ge", epochs=2, device="cpu")
    second = train(features, "ogm_ge", epochs=2, device="cpu")
    assert first.history == second.history and "k_easy" in first.history


def test_strategy_needs_two_modalities_and_classes():
    with pytest.raises(ValueError, match="two modalities and a multiclass task"):
        train(toy_features(task="regression"), "ogm_ge", epochs=1, device="cpu")
