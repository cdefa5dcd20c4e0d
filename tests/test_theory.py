"""First-order checks of chapters 3 and 6: BalGrad Propositions 1-2 and GOAL appendix A.3, A.9, A.14."""

import math

import numpy as np
import pytest
import torch

from helpers import toy_features
from modbal_lib import grads, theory
from modbal_lib.grads import flatten
from modbal_lib.methods.base import task_loss
from modbal_lib.methods import goal
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
    """Leaving out the cross term (a rate without 2 g_T^v·g_T^l) under sum fusion breaks the slope."""
    model, inputs, labels = toy_model("sum")
    check = theory.proposition1_check(model, inputs, labels, "multiclass")
    wrong_rate = sum(check.terms.values()) - check.terms["head_cross"]
    wrong = theory.FirstOrderCheck(check.step_sizes, -check.step_sizes * wrong_rate, check.actual, {})
    assert wrong.slope < 1.2
    assert wrong.residual[0] / wrong.step_sizes[0] == pytest.approx(-check.terms["head_cross"], rel=1e-2)


def test_readings_of_the_printed_equation_on_a_hand_example():
    """Eq. 1 as printed, -2λ g_T^v·g_T^l - λ sum_i (g_i·g_i + g_T^i·g_T^i), evaluated on explicit vectors."""
    g = {"v": np.array([1.0, 2.0]), "l": np.array([0.0, 3.0])}                   # branch gradients
    g_T = {"v": np.array([1.0, -1.0, 2.0]), "l": np.array([2.0, 0.5, 1.0])}     # the head's split (sum fusion)
    g_T_full = g_T["v"] + g_T["l"]
    cross = g_T["v"] @ g_T["l"]                                                  # 2 - 0.5 + 2 = 3.5
    terms = {"branch_v": g["v"] @ g["v"], "branch_l": g["l"] @ g["l"], "head_v": g_T["v"] @ g_T["v"],
             "head_l": g_T["l"] @ g_T["l"], "head_cross": 2 * cross, "other": 0.25}
    assert (terms["branch_v"], terms["branch_l"], terms["head_v"], terms["head_l"]) == (5, 9, 6, 5.25)
    rates = theory.proposition1_rates(terms)
    # the corrected statement: |g_v|² + |g_l|² + |g_T^v + g_T^l|² = 5 + 9 + 18.25 (+ the unsplit 0.25)
    assert g_T_full @ g_T_full == 18.25
    assert rates["corrected"] == 5 + 9 + 18.25 + 0.25
    # printed, i in {v, l}: 2·3.5 + (5 + 6) + (9 + 5.25): the corrected rate, nothing dropped
    by_hand_v_l = 2 * cross + sum(g[i] @ g[i] + g_T[i] @ g_T[i] for i in ("v", "l")) + 0.25
    assert rates["over_v_l"] == by_hand_v_l == rates["corrected"]
    # printed, i in {v, l, T} with g_T^T := 0: adds |g_T|² once more
    by_hand_literal = by_hand_v_l + g_T_full @ g_T_full + 0.0
    assert rates["literal"] == by_hand_literal == 50.75
    branches, heads = 5 + 9, 6 + 5.25
    assert rates["literal"] == branches + 2 * heads + 2 * terms["head_cross"] + 0.25
    with pytest.raises(ValueError, match="head_cross"):
        theory.proposition1_rates({"branch_v": 1.0, "head_v": 1.0})


@pytest.mark.parametrize("fusion", FUSIONS)
def test_readings_of_the_printed_statement(fusion):
    model, inputs, labels = toy_model(fusion)
    check = theory.proposition1_check(model, inputs, labels, "multiclass")
    readings = theory.proposition1_readings(check)
    assert set(readings) == {"corrected", "over_v_l", "literal"}
    np.testing.assert_allclose(readings["corrected"].predicted, check.predicted)
    np.testing.assert_allclose(readings["over_v_l"].predicted, check.predicted)   # the same rate, any fusion
    assert 1.8 <= readings["corrected"].slope <= 2.2
    assert readings["literal"].slope < 1.2                      # the classifier counted twice
    heads = sum(v for k, v in check.terms.items() if k.startswith("head_"))     # |g_T|², cross term included
    excess = readings["literal"].terms["rate"] - readings["corrected"].terms["rate"]
    assert excess == pytest.approx(heads)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_proposition1_shares_split_the_decrease(fusion):
    model, inputs, labels = toy_model(fusion)
    check = theory.proposition1_check(model, inputs, labels, "multiclass")
    shares = theory.proposition1_shares(check)
    assert set(shares) == {"easy", "hard", "cross", "other"}
    assert sum(shares.values()) == pytest.approx(1.0)
    total = sum(check.terms.values())
    assert shares["easy"] == pytest.approx((check.terms["branch_easy"] + check.terms["head_easy"]) / total)
    assert (shares["cross"] == 0.0) == (fusion == "concat")
    assert shares["easy"] > 0 and shares["hard"] > 0


def test_rescaled_branch_keeps_the_function_and_moves_the_split():
    model, inputs, labels = toy_model("concat", heads=True)
    factor = 4.0
    rescaled = theory.rescaled_branch(model, "easy", factor)
    before, after = model(inputs), rescaled(inputs)
    torch.testing.assert_close(after.logits, before.logits)
    torch.testing.assert_close(after.unimodal_logits["easy"], before.unimodal_logits["easy"])
    original = theory.proposition1_check(model, inputs, labels, "multiclass")
    moved = theory.proposition1_check(rescaled, inputs, labels, "multiclass")
    # g_m / c on the branch, c g_T^m on the head block; the other modality is untouched
    assert moved.terms["branch_easy"] == pytest.approx(original.terms["branch_easy"] / factor**2, rel=1e-6)
    assert moved.terms["head_easy"] == pytest.approx(original.terms["head_easy"] * factor**2, rel=1e-6)
    assert moved.terms["branch_hard"] == pytest.approx(original.terms["branch_hard"], rel=1e-9)
    assert sum(moved.terms.values()) != pytest.approx(sum(original.terms.values()), rel=1e-3)  # even ‖g‖² moves
    shares, moved_shares = theory.proposition1_shares(original), theory.proposition1_shares(moved)
    assert abs(moved_shares["easy"] - shares["easy"]) > 0.05
    assert next(model.parameters()).data_ptr() != next(rescaled.parameters()).data_ptr()   # a copy


def test_rescaled_branch_rejects_what_it_cannot_rescale():
    model, _, _ = toy_model("sum")
    with pytest.raises(ValueError, match="concat"):
        theory.rescaled_branch(model, "easy", 2.0)
    model, _, _ = toy_model("concat")
    with pytest.raises(ValueError, match="factor"):
        theory.rescaled_branch(model, "easy", 0.0)
    with pytest.raises(ValueError, match="modality 'audio'"):
        theory.rescaled_branch(model, "audio", 2.0)


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


def test_goal_correction_is_the_edit_back_propagated_into_the_branch():
    """Δv = g̃ − g (A.14's correction), computed by hand from AL's weights and GO; its Hessian-vector
    prediction is first order like the fusion gradient's."""
    model, inputs, labels = toy_model("concat", heads=True, seed=1)
    model64, inputs64, labels64 = theory.as_float64(model, inputs, labels)
    output = model64(inputs64)
    fusion_loss = task_loss("multiclass", output.logits, labels64)
    params = model64.branch_parameters("hard")
    # by hand: AL weights, GO per sample, minus the unedited feature gradients, through the branch
    grads_f = torch.autograd.grad(fusion_loss, [output.embeddings[m] for m in model64.modalities], retain_graph=True)
    logits = torch.stack([output.unimodal_logits[m].detach().float() for m in model64.modalities], dim=1)
    weights = goal.adaptive_weights(logits)
    edited = goal.orthogonalize([w * g for w, g in zip(weights, grads_f)], eps=0.0)   # GOAL's default eps
    by_hand = torch.autograd.grad(output.embeddings["hard"], params, grad_outputs=edited[1] - grads_f[1],
                                  retain_graph=True)
    correction = theory.goal_correction(model64, inputs64, labels64, "multiclass", output, fusion_loss, "hard")
    assert [c.shape for c in correction] == [p.shape for p in params]
    for a, b in zip(correction, by_hand):
        torch.testing.assert_close(a, b)
    check = theory.indirect_effect_check(model, inputs, labels, "multiclass", "hard",
                                         step_sizes=np.logspace(-5, -3, 5), edit="goal")
    assert check.smooth.all() and 0.8 <= check.slope <= 1.2 and check.cosine[0] > 0.99999
    with pytest.raises(ValueError, match="edit must be one of"):
        theory.indirect_effect_check(model, inputs, labels, "multiclass", "hard", edit="parameter")


# --- the checks over seeds (the claims ledger's numbers) ---------------------------------------

@pytest.fixture(scope="module")
def seeded():
    """Per seed 0, 1, 2: joint_unimodal_heads and GOAL trained one epoch on the toy features, batches of 32."""
    features = toy_features(n=64)
    return {method: theory.briefly_trained(features, [0, 1, 2], method, epochs=1, batch_size=32)
            for method in ("joint_unimodal_heads", "goal")}


def test_briefly_trained_gives_one_model_per_seed_and_the_seeds_batches(seeded):
    trained = seeded["joint_unimodal_heads"]
    assert [t.seed for t in trained] == [0, 1, 2] and all(t.batches == 2 for t in trained)
    first, second = (flatten(list(t.model.parameters())) for t in trained[:2])
    assert not torch.equal(first, second)                       # each seed its own model
    inputs, labels = trained[0].batch()
    rows = torch.randperm(64, generator=torch.Generator().manual_seed(0))[:32]   # the chapters' batch of seed 0
    assert torch.equal(labels, trained[0].features.labels[rows]) and inputs["easy"].shape == (32, 8)
    assert not torch.equal(trained[0].batch(1)[1], labels)
    with pytest.raises(ValueError, match="index must be in 0..1"):
        trained[0].batch(2)


@pytest.mark.parametrize("arguments, message", [
    (dict(seeds=[]), "seeds must be distinct integers"),
    (dict(seeds=[0, 0]), "seeds must be distinct integers"),
    (dict(seeds=[True]), "seeds must be distinct integers"),
    (dict(seeds=[0], epochs=0), "epochs must be an integer >= 1"),
    (dict(seeds=[0], batch_size=1), "batch_size must be an integer >= 2"),
    (dict(seeds=[0], batch_size=65), "batch_size 65 is larger than the 64 samples"),
])
def test_briefly_trained_refuses_bad_sizes_before_training(arguments, message):
    with pytest.raises(ValueError, match=message):
        theory.briefly_trained(toy_features(n=64), **arguments)


def test_checks_over_seeds_need_trained_settings():
    for check in (theory.proposition1_over_seeds, theory.proposition2_over_seeds, theory.entropy_variance_over_seeds,
                  theory.orthogonality_over_seeds, theory.indirect_effect_over_seeds):
        with pytest.raises(ValueError, match="non-empty list of Trained"):
            check([])


def test_relative_error_at_the_smallest_step():
    check = theory.FirstOrderCheck(np.array([1e-2, 1e-4]), np.array([-2.0, -0.02]), np.array([-1.9, -0.0199]), {})
    assert check.relative_error == pytest.approx(0.005)
    with pytest.raises(ValueError, match="prediction is 0"):
        _ = theory.FirstOrderCheck(np.array([1e-3]), np.array([0.0]), np.array([1e-9]), {}).relative_error


def test_proposition1_over_seeds_corrected_second_order_literal_first_order(seeded):
    rows = theory.proposition1_over_seeds(seeded["joint_unimodal_heads"])
    assert [r.seed for r in rows] == [0, 1, 2]
    for r in rows:
        assert abs(r.corrected_slope - 2) < 0.1 and abs(r.literal_slope - 1) < 0.1
        assert r.corrected_error < 1e-3 and r.literal_error > 0.1
        assert r.literal_excess > 0                             # |g_T|² added on top of the corrected rate
        assert r.literal_error == pytest.approx(r.literal_excess / (1 + r.literal_excess), rel=1e-3)


def test_proposition2_over_seeds_a_conflict_slows_the_decrease_by_its_inner_product(seeded):
    rows = theory.proposition2_over_seeds(seeded["joint_unimodal_heads"])
    assert [r.seed for r in rows] == [0, 1, 2]
    for r in rows:
        assert abs(r.slope - 2) < 0.1 and isinstance(r.measured_rate, float)
        # −ΔL/λ at a small step ≈ ‖G^τ‖² + ‖G^kl‖² + 2 G^τ·G^kl
        assert r.measured_rate - r.rate_without_inner == pytest.approx(r.inner, rel=0.05)
        assert r.conflict == (r.inner < 0) and (r.measured_rate < r.rate_without_inner) == r.conflict
        assert r.batch == 0 or r.conflict or r.batch == 1       # searched on until a conflict or out of batches
    with pytest.raises(ValueError, match="tries must be an integer >= 1"):
        theory.proposition2_over_seeds(seeded["joint_unimodal_heads"], tries=0)


def test_entropy_variance_over_seeds_third_order_after_rescaling_second_without(seeded):
    rows = theory.entropy_variance_over_seeds(seeded["goal"], samples=4)
    for r in rows:
        assert abs(r.rescaled_slope - 3) < 0.1 and abs(r.plain_slope - 2) < 0.1 and r.directions == 8
    with pytest.raises(ValueError, match="unimodal heads on a multiclass task"):
        theory.entropy_variance_over_seeds(theory.briefly_trained(toy_features(n=64), [0], "joint", batch_size=32))
    with pytest.raises(ValueError, match="samples must be an integer >= 1"):
        theory.entropy_variance_over_seeds(seeded["goal"], samples=0)


def test_entropy_variance_gaps_without_rescaling_is_the_max_normalised_variance():
    direction = torch.tensor([0.3, -0.1, -0.2, 0.0], dtype=torch.float64)
    epsilons = [0.1, 0.01]
    probs = torch.stack([torch.full((4,), 0.25, dtype=torch.float64) + e * direction for e in epsilons])
    expected = theory.entropy_of(probs) - total_variance(probs) / (1 - 1 / 4)
    np.testing.assert_allclose(theory.entropy_variance_gaps(direction, epsilons, rescaled=False), expected.numpy())


def test_orthogonality_over_seeds_leaves_no_conflict(seeded):
    rows = theory.orthogonality_over_seeds(seeded["goal"])
    assert [r.seed for r in rows] == [0, 1, 2] and any(r.conflict_before > 0 for r in rows)
    assert all(r.conflict_after == 0.0 and r.max_abs_cos_to_other < 1e-12 for r in rows)


def test_indirect_effect_over_seeds_one_row_per_seed_and_branch(seeded):
    rows = theory.indirect_effect_over_seeds(seeded["goal"], np.logspace(-7, -2, 11))
    assert [(r.seed, r.modality) for r in rows] == [(s, m) for s in (0, 1, 2) for m in ("easy", "hard")]
    assert all(abs(r.slope - 1) < 0.1 and r.min_cosine > 0.9999 for r in rows)
    coarse = theory.indirect_effect_over_seeds(seeded["goal"][:1], [1e-3])   # one step size: no regime to read
    assert [(r.slope, r.min_cosine) for r in coarse] == [(None, None), (None, None)]
