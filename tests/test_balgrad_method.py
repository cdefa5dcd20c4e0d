"""The BalGrad training method: the gradients it writes (Fig. 3), its options, its ablations, M = 3."""

import math

import pytest
import torch
import torch.nn.functional as F

from modbal_lib.features import FeatureSet
from modbal_lib.methods import make
from modbal_lib.methods.balgrad import (
    BalGrad,
    kl_schedule,
    kl_weights,
    modality_kl_terms,
    modality_kl_weights,
    mutual_kl,
)
from modbal_lib.methods.base import Step
from modbal_lib.models import LateFusion
from modbal_lib.train import train

from helpers import toy_features

# --- one step on a tiny model, against a hand computation --------------------------------


def tiny_step(seed: int = 0, fusion: str = "concat", iteration: int = 3):
    """A 2-modality model with unimodal heads, one batch, and the Step the trainer would build."""
    torch.manual_seed(seed)
    model = LateFusion({"a": (3,), "b": (4,)}, num_outputs=3, hidden=5, fusion=fusion, unimodal_heads=True)
    inputs = {"a": torch.randn(8, 3), "b": torch.randn(8, 4)}
    labels = torch.randint(0, 3, (8,))
    output = model(inputs)
    return Step(model, inputs, labels, "multiclass", output, iteration=iteration, epoch=0,
                iterations_per_epoch=4, total_iterations=40)


def run_method(method: BalGrad, step: Step) -> dict[str, float]:
    step.model.zero_grad(set_to_none=True)
    return method.backward(step, method.losses(step))


def kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q), batch mean, written with torch's kl_div (independent of the code under test)."""
    return F.kl_div(log_q, log_p, log_target=True, reduction="batchmean")


def hand_losses(step: Step, detach_target: bool = True):
    """L_T, the unimodal CE losses and the KL pulls KL(p^a||p^b), KL(p^b||p^a), from a fresh forward pass."""
    output = step.model(step.inputs)
    task = F.cross_entropy(output.logits, step.labels)
    uni = {m: F.cross_entropy(z, step.labels) for m, z in output.unimodal_logits.items()}
    log_p = {m: F.log_softmax(z, dim=-1) for m, z in output.unimodal_logits.items()}
    target = {m: v.detach() if detach_target else v for m, v in log_p.items()}
    pulls = {"a": kl(log_p["a"], target["b"]), "b": kl(log_p["b"], target["a"])}
    return task, uni, pulls


def grads_of(loss, params):
    return [g if g is not None else torch.zeros_like(p)
            for p, g in zip(params, torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))]


def flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


@pytest.mark.parametrize("detach_target", [True, False])
def test_without_projection_or_reweighting_every_parameter_gets_the_plain_summed_gradient(detach_target):
    step = tiny_step()
    method = BalGrad(reweighting=False, projection=False, detach_target=detach_target)
    scalars = run_method(method, step)
    task, uni, pulls = hand_losses(step, detach_target)
    scale = kl_schedule(3 / 4)  # default unit: epochs, iteration 3 of 4 per epoch
    objective = task + uni["a"] + uni["b"] + scale * (0.5 * pulls["a"] + 0.5 * pulls["b"])
    params = list(step.model.parameters())
    for p, expected in zip(params, grads_of(objective, params)):
        torch.testing.assert_close(p.grad, expected)
    assert scalars["kl_scale"] == pytest.approx(scale)
    assert scalars["w_a"] == scalars["w_b"] == 0.5


def test_reweighting_uses_the_unimodal_loss_shares_as_constants():
    step = tiny_step(seed=1)
    scalars = run_method(BalGrad(projection=False), step)
    task, uni, pulls = hand_losses(step)
    total = uni["a"].item() + uni["b"].item()
    w_a, w_b = uni["a"].item() / total, uni["b"].item() / total
    objective = task + uni["a"] + uni["b"] + kl_schedule(3 / 4) * (w_a * pulls["a"] + w_b * pulls["b"])
    params = list(step.model.parameters())
    for p, expected in zip(params, grads_of(objective, params)):
        torch.testing.assert_close(p.grad, expected)
    assert scalars["w_a"] == pytest.approx(w_a) and scalars["w_b"] == pytest.approx(w_b)
    assert scalars["w_a"] + scalars["w_b"] == pytest.approx(1.0)


@pytest.mark.parametrize("fusion", ["concat", "attention"])
def test_projection_removes_the_conflict_from_the_branches_and_leaves_the_fused_head_its_task_gradient(fusion):
    step = tiny_step(seed=0, fusion=fusion)
    model = step.model
    scalars = run_method(BalGrad(), step)
    task, uni, pulls = hand_losses(step)
    total_uni = uni["a"] + uni["b"]
    w_a, w_b = (u.item() / total_uni.item() for u in (uni["a"], uni["b"]))
    kl_loss = kl_schedule(3 / 4) * (w_a * pulls["a"] + w_b * pulls["b"])
    branches = [p for m in ("a", "b") for p in model.branch_parameters(m)]
    g_task, g_kl, g_uni = (flat(grads_of(loss, branches)) for loss in (task, kl_loss, total_uni))
    dot = g_task @ g_kl
    assert dot < 0, "the constructed case must conflict for this test to mean anything"
    projected = g_task - dot / (g_kl @ g_kl) * g_kl  # Eq. 6 by hand
    written = flat([p.grad for p in branches])
    torch.testing.assert_close(written, projected + g_kl + g_uni)
    assert (written - g_kl - g_uni) @ g_kl == pytest.approx(0.0, abs=1e-6)  # no conflict left
    assert not torch.allclose(written, g_task + g_kl + g_uni)
    # f_T (and the attention scorer) get exactly the task gradient: no KL, no unimodal CE
    fused = model.fusion_parameters()
    for p, expected in zip(fused, grads_of(task, fused)):
        torch.testing.assert_close(p.grad, expected)
    # the unimodal heads get their CE plus their KL gradient
    heads = list(model.unimodal_heads.parameters())
    for p, expected in zip(heads, grads_of(total_uni + kl_loss, heads)):
        torch.testing.assert_close(p.grad, expected)
    assert scalars["conflict"] == 1.0
    assert scalars["cos_task_kl"] == pytest.approx((dot / (g_task.norm() * g_kl.norm())).item(), abs=1e-6)


def test_flat_and_per_tensor_scopes_differ_in_a_constructed_case():
    like = [torch.zeros(2), torch.zeros(2)]
    # tensor 1 conflicts (-1), tensor 2 agrees strongly (+6): the whole vectors agree (+5)
    g_task = torch.tensor([1.0, 0.0, 2.0, 0.0])
    g_kl = torch.tensor([-1.0, 0.0, 3.0, 0.0])
    flat_result = BalGrad(projection_scope="flat").project(g_task, g_kl, like)
    per_tensor = BalGrad(projection_scope="per_tensor").project(g_task, g_kl, like)
    torch.testing.assert_close(flat_result, g_task)  # no conflict overall: unchanged
    torch.testing.assert_close(per_tensor, torch.tensor([0.0, 0.0, 2.0, 0.0]))  # first segment projected
    # the whole vectors conflict (-1): flat moves every coordinate; per tensor only the conflicting one
    g_task = torch.tensor([1.0, 1.0, 1.0, 1.0])
    g_kl = torch.tensor([-2.0, 0.0, 1.0, 0.0])  # flat: -1 (conflict); per tensor: -2 and +1
    torch.testing.assert_close(BalGrad(projection_scope="flat").project(g_task, g_kl, like),
                               torch.tensor([1 - 2 / 5, 1.0, 1 + 1 / 5, 1.0]))
    torch.testing.assert_close(BalGrad(projection_scope="per_tensor").project(g_task, g_kl, like),
                               torch.tensor([0.0, 1.0, 1.0, 1.0]))


# --- training runs ------------------------------------------------------------------------

ABLATIONS = {  # the four rows of the paper's Table 2
    "baseline": dict(reweighting=False, projection=False),
    "reweighting": dict(reweighting=True, projection=False),
    "projection": dict(reweighting=False, projection=True),
    "full": dict(reweighting=True, projection=True),
}


@pytest.fixture(scope="module")
def ablation_runs():
    features = toy_features(n=192)
    return {name: train(features, "balgrad", epochs=2, batch_size=32, seed=0, device="cpu", show_progress=False,
                        **options) for name, options in ABLATIONS.items()}


def test_the_four_ablations_record_their_scalars_and_train_differently(ablation_runs):
    for result in ablation_runs.values():
        for key in ("cos_task_kl", "conflict", "kl_scale", "w_easy", "w_hard", "loss_kl_easy", "loss_kl_hard",
                    "loss_task", "loss_uni_easy"):
            assert len(result.history[key]) == 12, key
        assert set(result.history["conflict"]) <= {0.0, 1.0}
        assert all(-1.0 <= c <= 1.0 for c in result.history["cos_task_kl"])
        for w_easy, w_hard in zip(result.history["w_easy"], result.history["w_hard"]):
            assert w_easy + w_hard == pytest.approx(1.0)
    for name in ("baseline", "projection"):
        assert set(ablation_runs[name].history["w_easy"]) == {0.5}
    for name in ("reweighting", "full"):  # the easy modality converges first: it gets the smaller pull
        assert ablation_runs[name].curve("w_easy")[-4:].mean() < 0.5
    finals = {name: flat(r.model.parameters()).detach() for name, r in ablation_runs.items()}
    names = list(finals)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not torch.allclose(finals[a], finals[b]), (a, b)


def test_same_seed_gives_identical_runs():
    features = toy_features(n=96)
    first, second = (train(features, "balgrad", epochs=2, batch_size=32, seed=5, device="cpu", show_progress=False)
                     for _ in range(2))
    assert first.history == second.history
    for a, b in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("unit", ["epoch", "iteration", "progress"])
def test_schedule_unit_decides_what_t_counts(unit):
    features = toy_features(n=96)  # 3 iterations per epoch, 9 in all
    result = train(features, "balgrad", epochs=3, batch_size=32, device="cpu", show_progress=False, schedule_unit=unit)
    t = {"epoch": [i / 3 for i in range(9)], "iteration": list(range(9)), "progress": [i / 9 for i in range(9)]}[unit]
    assert result.history["kl_scale"] == pytest.approx([kl_schedule(x) for x in t])
    last = result.history["kl_scale"][-1]
    assert {"epoch": 0.95 < last < 0.99, "iteration": last > 0.999, "progress": last < 0.87}[unit]


def test_the_literal_iteration_reading_saturates_at_once_the_epoch_reading_ramps():
    # Section 3.2.1: the KL factor grows "as iteration t progresses". Counted in raw iterations, s(t) is
    # within 1 % of its limit 2 * gamma from the fifth step on; counted in epochs (the kit's default) the
    # ramp spans the first epochs, here of 100 iterations each.
    def scale(unit, iteration):
        step = Step(None, {}, None, "multiclass", None, iteration=iteration, epoch=iteration // 100,
                    iterations_per_epoch=100, total_iterations=2000)
        method = BalGrad(schedule_unit=unit)
        return kl_schedule(method.schedule_time(step), method.gamma)

    assert scale("iteration", 3) < 0.99 <= scale("iteration", 4)
    assert all(scale("iteration", i) >= 0.99 for i in range(4, 2000, 37))
    assert scale("epoch", 4) == pytest.approx(kl_schedule(0.04)) and scale("epoch", 4) < 0.76
    assert scale("epoch", 100) == pytest.approx(kl_schedule(1.0)) and scale("epoch", 100) < 0.87
    assert scale("epoch", 300) < 0.99 <= scale("epoch", 400)
    assert BalGrad().schedule_unit == "epoch"  # the kit's deviation is the default, the literal reading an option


def test_gamma_scales_the_schedule():
    step = tiny_step()
    assert run_method(BalGrad(gamma=1.0), step)["kl_scale"] == pytest.approx(kl_schedule(0.75, gamma=1.0))


# --- more than two modalities -------------------------------------------------------------


def test_for_two_modalities_the_generalisation_is_exactly_the_paper():
    generator = torch.Generator().manual_seed(0)
    logits_v, logits_l = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    terms = modality_kl_terms({"v": logits_v, "l": logits_l})
    kl_v, kl_l = mutual_kl(logits_v, logits_l)
    assert torch.equal(terms["v"], kl_v) and torch.equal(terms["l"], kl_l)
    losses = torch.tensor([0.37, 1.91])
    assert torch.equal(modality_kl_weights(losses), torch.stack(kl_weights(losses[0], losses[1])))


def test_three_modality_kl_is_the_mean_of_the_pairwise_pulls():
    generator = torch.Generator().manual_seed(1)
    logits = {m: torch.randn(5, 3, generator=generator) for m in "abc"}
    terms = modality_kl_terms(logits)
    log_p = {m: F.log_softmax(z, dim=-1) for m, z in logits.items()}
    for m in "abc":
        others = [k for k in "abc" if k != m]
        torch.testing.assert_close(terms[m], sum(kl(log_p[m], log_p[k]) for k in others) / 2)
    weights = modality_kl_weights(torch.tensor([1.0, 2.0, 5.0]))
    torch.testing.assert_close(weights, torch.tensor([0.125, 0.25, 0.625]))
    torch.testing.assert_close(modality_kl_weights(torch.zeros(3)), torch.full((3,), 1 / 3))


def test_three_modalities_train():
    base = toy_features(n=128)
    third = base.features["hard"][:, :6] + torch.randn(128, 6, generator=torch.Generator().manual_seed(2))
    features = FeatureSet(("easy", "hard", "third"), {**base.features, "third": third}, base.labels, base.task,
                          base.class_names)
    result = train(features, "balgrad", epochs=2, batch_size=32, device="cpu", show_progress=False)
    rows = zip(result.history["w_easy"], result.history["w_hard"], result.history["w_third"])
    assert all(sum(row) == pytest.approx(1.0) for row in rows)
    assert {"loss_kl_easy", "loss_kl_hard", "loss_kl_third"} <= set(result.history)
    assert all(math.isfinite(v) for v in result.history["cos_task_kl"])


# --- tasks and options ----------------------------------------------------------------------


def test_multilabel_uses_label_wise_bernoulli_kl_and_regression_is_refused():
    result = train(toy_features(task="multilabel"), "balgrad", epochs=1, batch_size=64, device="cpu",
                   show_progress=False)
    assert all(v >= 0 and math.isfinite(v) for v in result.history["loss_kl_easy"])
    with pytest.raises(ValueError, match="regression"):
        train(toy_features(task="regression"), "balgrad", epochs=1, device="cpu", show_progress=False)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="schedule_unit"):
        make("balgrad", schedule_unit="minute")
    with pytest.raises(ValueError, match="projection_scope"):
        make("balgrad", projection_scope="per_layer")
    with pytest.raises(ValueError, match="two modalities"):
        BalGrad().setup(LateFusion({"a": (3,)}, 2, unimodal_heads=True), toy_features(), 1e-3)
