"""The first-order checks of chapter 3: BalGrad Propositions 1-2 and GOAL appendix A.3, A.9, A.14."""

import math

import numpy as np
import pytest
import torch

from helpers import toy_features
from modbal_lib import grads, theory
from modbal_lib.grads import flatten
from modbal_lib.methods.base import task_loss
from modbal_lib.methods.goal import normalized_entropy, total_variance
from modbal_lib.models import LateFusion

FUSIONS = ["concat", "sum", "attention"]


def toy_model(fusion="concat", heads=False, seed=0):
    """A random late-fusion model on the toy features, with a batch of 64 samples."""
    features = toy_features(n=64, seed=seed)
    torch.manual_seed(seed)
    shapes = {m: tuple(x.shape[1:]) for m, x in features.features.items()}
    model = LateFusion(shapes, num_outputs=4, hidden=16, fusion=fusion, unimodal_heads=heads)
    return model, features.features, features.labels


# --- helpers ---------------------------------------------------------------------------------

def test_loglog_slope_recovers_the_power():
    x = np.logspace(-4, -1, 7)
    assert theory.loglog_slope(x, 3 * x**2) == pytest.approx(2.0)
    assert theory.loglog_slope(x, -0.5 * x**3) == pytest.approx(3.0)  # sign ignored
    with pytest.raises(ValueError, match="y != 0"):
        theory.loglog_slope(x, np.zeros_like(x))


def test_loglog_slope_ignores_a_single_bent_point():
    """A ReLU switch can bend the residual at one step size; the median of pairwise slopes stays put."""
    x = np.logspace(-5, -2, 7)
    y = x**2
    y[2] *= 30
    assert theory.loglog_slope(x, y) == pytest.approx(2.0, abs=0.05)
    assert abs(np.polyfit(np.log(x), np.log(y), 1)[0] - 2.0) > 0.05  # least squares is thrown off


def test_loss_changes_restores_the_parameters_and_is_exact_for_a_quadratic():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    direction = [torch.tensor([0.5, 0.5], dtype=torch.float64)]
    changes = theory.loss_changes(lambda: (w**2).sum(), [w], direction, [0.1, 1.0])
    # L(w - λd) - L(w) = -2λ w·d + λ²|d|² with w·d = -0.5, |d|² = 0.5
    np.testing.assert_allclose(changes, [0.1 + 0.005, 1.0 + 0.5])
    assert w.tolist() == [1.0, -2.0]


# --- Proposition 1 ---------------------------------------------------------------------------

@pytest.mark.parametrize("fusion", FUSIONS)
def test_fusion_terms_add_up_to_the_fused_features(fusion):
    model, inputs, _ = toy_model(fusion)
    embeddings = model.embed(inputs)
    terms = theory.fusion_terms(model, embeddings)
    torch.testing.assert_close(sum(terms.values()), model.fuse(embeddings))


@pytest.mark.parametrize("fusion", FUSIONS)
def test_classifier_split_adds_up_to_the_head_weight_gradient(fusion):
    model, inputs, labels = toy_model(fusion)
    split = theory.classifier_split(model, inputs, labels, "multiclass")
    task_loss("multiclass", model(inputs).logits, labels).backward()
    torch.testing.assert_close(split["easy"] + split["hard"], model.head.weight.grad)
    assert split["easy"].shape == model.head.weight.shape


def test_concat_split_lives_in_disjoint_blocks_and_its_cross_term_is_zero():
    model, inputs, labels = toy_model("concat")
    split = theory.classifier_split(model, inputs, labels, "multiclass")
    assert split["easy"][:, 16:].abs().max() == 0 and split["hard"][:, :16].abs().max() == 0
    cross = theory.cross_term(split)
    assert cross["absolute"] == 0.0 and abs(cross["relative"]) < 1e-6


@pytest.mark.parametrize("fusion", ["sum", "attention"])
def test_sum_and_attention_cross_terms_are_clearly_non_zero(fusion):
    model, inputs, labels = toy_model(fusion)
    cross = theory.cross_term(theory.classifier_split(model, inputs, labels, "multiclass"))
    assert abs(cross["relative"]) > 0.05
    assert -1 <= cross["relative"] <= 1


@pytest.mark.parametrize("fusion", FUSIONS)
def test_proposition1_terms_sum_to_the_squared_gradient_norm(fusion):
    model, inputs, labels = toy_model(fusion)
    check = theory.proposition1_check(model, inputs, labels, "multiclass")
    params = list(model.parameters())
    model.zero_grad()
    task_loss("multiclass", model.double()(
        {m: x.double() for m, x in inputs.items()}).logits, labels).backward()
    squared_norm = float(flatten([p.grad for p in params]).pow(2).sum())
    assert sum(check.terms.values()) == pytest.approx(squared_norm, rel=1e-10)
    expected_keys = {"branch_easy", "branch_hard", "head_easy", "head_hard", "head_cross", "other"}
    assert set(check.terms) == expected_keys
    assert (check.terms["head_cross"] == 0.0) == (fusion == "concat")


@pytest.mark.parametrize("fusion", FUSIONS)
def test_proposition1_residual_is_second_order(fusion):
    model, inputs, labels = toy_model(fusion)
    before = [p.detach().clone() for p in model.parameters()]
    check = theory.proposition1_check(model, inputs, labels, "multiclass")
    assert 1.8 <= check.slope <= 2.2
    assert abs(check.residual[0] / check.predicted[0]) < 1e-3   # λ = 1e-4: the prediction is the change
    assert (check.predicted < 0).all()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # model untouched
    assert next(model.parameters()).dtype == torch.float32


def test_a_wrong_decomposition_leaves_a_first_order_residual():
    """Dropping the cross term (the printed statement's slip under sum fusion) breaks the slope."""
    model, inputs, labels = toy_model("sum")
    check = theory.proposition1_check(model, inputs, labels, "multiclass")
    wrong_rate = sum(check.terms.values()) - check.terms["head_cross"]
    wrong = theory.FirstOrderCheck(check.step_sizes, -check.step_sizes * wrong_rate, check.actual, {})
    assert wrong.slope < 1.2
    assert wrong.residual[0] / wrong.step_sizes[0] == pytest.approx(-check.terms["head_cross"], rel=1e-2)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_readings_of_the_printed_statement(fusion):
    model, inputs, labels = toy_model(fusion)
    check = theory.proposition1_check(model, inputs, labels, "multiclass")
    readings = theory.proposition1_readings(check)
    np.testing.assert_allclose(readings["corrected"].predicted, check.predicted)
    assert 1.8 <= readings["corrected"].slope <= 2.2
    assert readings["literal"].slope < 1.2                      # the classifier counted twice
    if fusion == "concat":                                      # no cross term to drop
        np.testing.assert_allclose(readings["no_cross"].predicted, check.predicted)
    else:
        assert readings["no_cross"].slope < 1.5


# --- Proposition 2 ---------------------------------------------------------------------------

@pytest.mark.parametrize("fusion", FUSIONS)
def test_proposition2_joint_and_task_predictions_are_first_order(fusion):
    model, inputs, labels = toy_model(fusion, heads=True)
    joint, task_only = theory.proposition2_check(model, inputs, labels, "multiclass")
    assert 1.8 <= joint.slope <= 2.2 and 1.8 <= task_only.slope <= 2.2
    assert joint.terms["inner"] == pytest.approx(2 * task_only.terms["inner"])
    assert joint.terms["task"] == task_only.terms["task"] and joint.terms["kl"] > 0
    assert abs(joint.residual[0] / joint.predicted[0]) < 1e-3
    assert abs(task_only.residual[0] / task_only.predicted[0]) < 1e-3


def test_proposition2_inner_product_enters_the_loss_change():
    """Leaving out 2 G^τ·G^kl gives a first-order residual: the inner product is part of ΔL."""
    model, inputs, labels = toy_model("concat", heads=True)
    joint, _ = theory.proposition2_check(model, inputs, labels, "multiclass")
    inner = joint.terms["inner"]
    assert inner != 0
    without_inner = joint.terms["task"] + joint.terms["kl"]
    wrong = theory.FirstOrderCheck(joint.step_sizes, -joint.step_sizes * without_inner, joint.actual, {})
    # its residual is first order, -λ 2G^τ·G^kl + O(λ²), where the right one is O(λ²)
    assert wrong.residual[0] / wrong.step_sizes[0] == pytest.approx(-inner, rel=0.05)
    assert abs(wrong.residual[0]) > 10 * abs(joint.residual[0])


def test_proposition2_needs_unimodal_heads():
    model, inputs, labels = toy_model("concat", heads=False)
    with pytest.raises(ValueError, match="unimodal heads"):
        theory.proposition2_check(model, inputs, labels, "multiclass")


# --- GOAL A.3 --------------------------------------------------------------------------------

def test_rescaled_variance_matches_entropy_value_and_curvature_at_uniform():
    K = 6
    uniform = torch.full((K,), 1 / K, dtype=torch.float64)
    assert float(theory.rescaled_total_variance(uniform)) == pytest.approx(1.0)
    assert float(theory.entropy_of(uniform)) == pytest.approx(1.0)
    one_hot = torch.eye(K, dtype=torch.float64)[0]
    assert float(theory.entropy_of(one_hot)) == pytest.approx(0.0, abs=1e-12)


def test_entropy_variance_gap_is_third_order_with_the_derived_coefficient():
    direction = torch.tensor([1.0, -2.0, 0.5, 0.0, 0.5], dtype=torch.float64)  # sum d³ = -6.75
    epsilons = np.logspace(-2, -4, 5)
    gaps = theory.entropy_variance_gaps(direction, epsilons)
    assert theory.loglog_slope(epsilons, gaps) == pytest.approx(3.0, abs=0.05)
    coefficient = theory.predicted_gap_coefficient(direction)
    assert coefficient == pytest.approx(25 * -6.75 / (6 * math.log(5)))
    assert gaps[-1] / epsilons[-1] ** 3 == pytest.approx(coefficient, rel=1e-2)


def test_symmetric_direction_gives_a_fourth_order_gap():
    direction = torch.tensor([1.0, -1.0, 0.0, 0.0], dtype=torch.float64)  # sum d³ = 0
    epsilons = np.logspace(-1, -2.5, 4)
    assert theory.predicted_gap_coefficient(direction) == 0.0
    assert theory.loglog_slope(epsilons, theory.entropy_variance_gaps(direction, epsilons)) == pytest.approx(4.0, abs=0.1)


def test_normalising_variance_by_its_maximum_alone_disagrees_at_second_order():
    K = 5
    direction = torch.tensor([1.0, -2.0, 0.5, 0.0, 0.5], dtype=torch.float64)
    epsilons = np.logspace(-2, -4, 5)
    probs = torch.stack([torch.full((K,), 1 / K, dtype=torch.float64) + e * direction for e in epsilons])
    plain_gap = (theory.entropy_of(probs) - total_variance(probs) / (1 - 1 / K)).numpy()
    assert theory.loglog_slope(epsilons, plain_gap) == pytest.approx(2.0, abs=0.05)


def test_entropy_variance_gaps_rejects_bad_directions():
    with pytest.raises(ValueError, match="sum to 0"):
        theory.entropy_variance_gaps(torch.tensor([1.0, 0.0]), [0.1])
    with pytest.raises(ValueError, match="non-positive"):
        theory.entropy_variance_gaps(torch.tensor([1.0, -1.0]), [0.9])


def test_majorization_and_schur_concavity():
    p, q = torch.tensor([0.5, 0.3, 0.2]), torch.tensor([0.4, 0.4, 0.2])   # q: a Robin Hood transfer of p
    assert theory.majorizes(p, q) and not theory.majorizes(q, p)
    for phi in (theory.entropy_of, total_variance):
        assert float(phi(p.double())) < float(phi(q.double()))
    # not comparable: the two measures may rank them differently
    a, b = torch.tensor([0.7, 0.15, 0.15]), torch.tensor([0.5, 0.5, 0.0])
    assert not theory.majorizes(a, b) and not theory.majorizes(b, a)
    assert float(theory.entropy_of(a.double())) > float(theory.entropy_of(b.double()))
    assert float(total_variance(a)) < float(total_variance(b))
    with pytest.raises(ValueError, match="one shape and total"):
        theory.majorizes(torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.4]))


def test_entropy_of_agrees_with_normalized_entropy_on_logits():
    logits = torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(theory.entropy_of(logits.softmax(-1)), normalized_entropy(logits))


# --- GOAL A.9 --------------------------------------------------------------------------------

def test_orthogonality_after_projection_on_real_feature_gradients():
    model, inputs, labels = toy_model("concat", seed=1)
    result = theory.orthogonality_check(model, inputs, labels, "multiclass")
    assert result["conflict_before"] > 0.1          # the random model has conflicting samples
    assert result["conflict_after"] == 0.0
    assert result["max_abs_cos_to_other"] < 1e-12
    assert result["cos_before"].shape == (64,) and (result["cos_after"] >= -1e-12).all()
    unchanged = result["cos_before"] >= 0
    np.testing.assert_allclose(result["cos_after"][unchanged], result["cos_before"][unchanged])


def test_sum_fusion_feature_gradients_never_conflict():
    """Under sum fusion dL/df_v = dL/df_l = W^T δ: identical per-sample gradients, cosine 1."""
    model, inputs, labels = toy_model("sum")
    result = theory.orthogonality_check(model, inputs, labels, "multiclass")
    assert result["conflict_before"] == 0.0
    np.testing.assert_allclose(result["cos_before"], 1.0)


def test_rowwise_cosine():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 2.0], [-1.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(grads.rowwise_cosine(a, b), torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64))


# --- GOAL A.14 -------------------------------------------------------------------------------

def test_relu_pattern_counts_active_units():
    branch = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())
    x = torch.randn(5, 2)
    pattern = theory.relu_pattern(branch, lambda: branch(x))
    assert pattern.shape == (15,)
    assert torch.equal(pattern, (branch(x) > 0).flatten())
    assert len(branch[1]._forward_hooks) == 0   # hooks removed afterwards


@pytest.mark.parametrize("fusion", ["concat", "attention"])
def test_hessian_vector_prediction_error_shrinks_with_the_step(fusion):
    model, inputs, labels = toy_model(fusion, heads=True)
    check = theory.indirect_effect_check(model, inputs, labels, "multiclass", "hard",
                                         step_sizes=np.logspace(-5, -3, 5))
    assert check.smooth.all() and check.taylor_regime.sum() >= 3
    errors = check.relative_error[check.taylor_regime]
    assert (np.diff(errors) > 0).all()          # a smaller step, a smaller relative error
    assert 0.8 <= check.slope <= 1.2
    assert errors[0] < 1e-3 and check.cosine[0] > 0.999999


def test_taylor_regime_lies_between_round_off_and_the_first_switch():
    check = theory.IndirectEffectCheck(
        step_sizes=np.logspace(-6, -1, 6),
        relative_error=np.array([1e-6, 1e-7, 1e-6, 1e-5, 1e-4, 0.9]),
        cosine=np.ones(6), actual_norm=np.ones(6), flipped=np.array([0, 0, 0, 0, 0, 3]))
    assert check.taylor_regime.tolist() == [False, False, True, True, True, False]
    assert check.slope == pytest.approx(1.0)
    check.flipped[3] = 1
    with pytest.raises(ValueError, match="fewer than 2 step sizes"):
        _ = check.slope


def test_indirect_effect_breaks_down_when_a_relu_switches():
    model, inputs, labels = toy_model("concat", heads=True)
    check = theory.indirect_effect_check(model, inputs, labels, "multiclass", "easy",
                                         step_sizes=np.logspace(-5, 1, 7))
    assert check.flipped[0] == 0 and check.flipped[-1] > 0
    assert (np.diff(check.flipped) >= 0).all()
    assert check.relative_error[-1] > 100 * check.relative_error[0]


def test_indirect_effect_needs_unimodal_heads():
    model, inputs, labels = toy_model("concat", heads=False)
    with pytest.raises(ValueError, match="unimodal heads"):
        theory.indirect_effect_check(model, inputs, labels, "multiclass", "easy")
