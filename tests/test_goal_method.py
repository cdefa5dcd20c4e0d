"""GOAL as a training method: AL then GO on the fusion-loss gradient only (modbal_lib.methods.goal.GOAL)."""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from modbal_lib.features import FeatureSet
from modbal_lib.grads import flatten, loss_grads, unflatten
from modbal_lib.methods import make
from modbal_lib.methods.base import Step
from modbal_lib.methods.goal import GOAL, orthogonalize
from modbal_lib.methods.joint import JointUnimodalHeads
from modbal_lib.models import LateFusion
from modbal_lib.train import train

from helpers import toy_features


def features_with(dims: dict[str, int], n: int = 96, classes: int = 4, seed: int = 0) -> FeatureSet:
    """Modalities of the given widths, each carrying the label with its own strength."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=generator)
    one_hot = F.one_hot(labels, classes).float()
    features = {}
    for strength, (m, dim) in enumerate(dims.items(), start=1):
        noise = torch.randn(n, dim, generator=generator)
        features[m] = noise + 2.0 / strength * F.pad(one_hot, (0, dim - classes))
    return FeatureSet(tuple(dims), features, labels, "multiclass", [f"c{k}" for k in range(classes)])


def fresh_model(features: FeatureSet, seed: int = 0, fusion: str = "concat") -> LateFusion:
    torch.manual_seed(seed)
    shapes = {m: tuple(x.shape[1:]) for m, x in features.features.items()}
    return LateFusion(shapes, len(features.class_names), hidden=16, fusion=fusion, unimodal_heads=True)


def forward(model: LateFusion, features: FeatureSet) -> Step:
    output = model(features.features)
    return Step(model, features.features, features.labels, features.task, output, 0, 0, 1, 1)


def take_step(model: LateFusion, features: FeatureSet, method) -> tuple[dict, dict[str, float]]:
    """One step of ``method`` on the whole (small) feature set; gradients land in ``.grad``.

    Also returns, per modality, the gradient that reached the embedding f_m in the method's
    LAST backward pass (the one into the branches), seen by a hook.
    """
    method.setup(model, features, 1e-3)
    step = forward(model, features)
    seen = {m: [] for m in model.modalities}
    for m, embedding in step.output.embeddings.items():
        embedding.register_hook(seen[m].append)
    scalars = method.backward(step, method.losses(step))
    return {m: grads[-1] for m, grads in seen.items()}, scalars


def reference_parts(model: LateFusion, features: FeatureSet) -> dict:
    """Computed independently of the method on the same model and batch: for each modality the
    fusion-loss gradient at the embedding (dL_mm/df_m) and on the branch (g), the unimodal-loss
    gradient at the embedding and on the branch (G), and the heads' plain gradients."""
    step = forward(model, features)
    embeddings = step.output.embeddings
    fusion_loss = F.cross_entropy(step.output.logits, features.labels)
    parts = {"head": loss_grads(fusion_loss, model.fusion_parameters()), "embedding_task": {}, "g": {},
             "embedding_uni": {}, "G": {}, "uni_head": {}, "uni_logits": {}}
    for m in model.modalities:
        uni_loss = F.cross_entropy(step.output.unimodal_logits[m], features.labels)
        parts["embedding_task"][m] = loss_grads(fusion_loss, [embeddings[m]])[0]
        parts["g"][m] = loss_grads(fusion_loss, model.branch_parameters(m))
        parts["embedding_uni"][m] = loss_grads(uni_loss, [embeddings[m]])[0]
        parts["G"][m] = loss_grads(uni_loss, model.branch_parameters(m))
        parts["uni_head"][m] = loss_grads(uni_loss, list(model.unimodal_heads[m].parameters()))
        parts["uni_logits"][m] = step.output.unimodal_logits[m].detach()
    parts["embeddings"] = embeddings
    return parts


def hand_weights(unimodal_logits: dict[str, torch.Tensor]) -> torch.Tensor:
    """AL weights written out from the paper's text (Eqs. 6-7), T = 1."""
    confidences = []
    for logits in unimodal_logits.values():
        p = logits.softmax(-1)
        confidences.append(1 + (p * p.log()).sum(-1) / math.log(p.shape[-1]))
    return torch.stack(confidences, dim=1).softmax(dim=1).mean(0)


def close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def rowwise_dot(a, b):
    return (a * b).sum(-1)


# --- what reaches each parameter ------------------------------------------------------------

@pytest.mark.parametrize("fusion", ["concat", "sum", "attention"])
@pytest.mark.parametrize("variant", ["feature", "parameter"])
def test_without_al_and_go_it_is_joint_training_with_unimodal_heads(variant, fusion):
    features = features_with({"a": 10, "b": 10})
    joint, goal = fresh_model(features, fusion=fusion), fresh_model(features, fusion=fusion)
    take_step(joint, features, JointUnimodalHeads())
    _, scalars = take_step(goal, features, GOAL(variant=variant, adaptive_leveraging=False, orthogonalization=False))
    for (name, p), q in zip(joint.named_parameters(), goal.parameters()):
        assert q.grad is not None, name
        close(q.grad, p.grad)
    assert scalars["w_a"] == scalars["w_b"] == 1.0
    assert scalars["cos_a_b_before"] == scalars["cos_a_b_after"]


def test_al_scales_each_branch_fusion_gradient_by_its_weight():
    features = features_with({"a": 12, "b": 7})
    model = fresh_model(features)
    parts = reference_parts(model, features)
    weights = hand_weights(parts["uni_logits"])
    assert abs(weights[0] - weights[1]) > 1e-3  # the check would not see a swap otherwise
    _, scalars = take_step(model, features, GOAL(orthogonalization=False))
    for k, m in enumerate(model.modalities):
        assert scalars[f"w_{m}"] == pytest.approx(weights[k].item(), abs=1e-6)
        for p, g, G in zip(model.branch_parameters(m), parts["g"][m], parts["G"][m]):
            close(p.grad, weights[k] * g + G)
    assert scalars["w_a"] + scalars["w_b"] == pytest.approx(1.0, abs=1e-6)


def test_go_removes_the_per_sample_conflicts_and_leaves_unimodal_gradients_alone():
    features = features_with({"a": 12, "b": 7})
    model = fresh_model(features)
    parts = reference_parts(model, features)
    at_embeddings, scalars = take_step(model, features, GOAL())
    weights = hand_weights(parts["uni_logits"])
    leveraged = [w * parts["embedding_task"][m] for w, m in zip(weights, model.modalities)]
    expected = orthogonalize(leveraged, eps=0.0)
    # the fusion part of the gradient reaching each embedding f_m is the orthogonalized one
    reaching = {m: at_embeddings[m] - parts["embedding_uni"][m] for m in model.modalities}
    close(reaching["a"], expected[0])
    close(reaching["b"], expected[1])
    conflicts_before = rowwise_dot(leveraged[0], leveraged[1]) < 0
    assert conflicts_before.any()
    assert scalars["conflict_before"] == pytest.approx(conflicts_before.float().mean().item())
    assert (rowwise_dot(reaching["a"], reaching["b"]) >= 0).all()
    assert scalars["conflict_after"] == 0.0
    assert scalars["cos_a_b_after"] > scalars["cos_a_b_before"]
    # branch m receives exactly backprop(g'') + G^(m); heads get their plain gradients
    for m, g_edited in zip(model.modalities, expected):
        backprop = torch.autograd.grad(parts["embeddings"][m], model.branch_parameters(m), g_edited, retain_graph=True)
        for p, fusion_part, G in zip(model.branch_parameters(m), backprop, parts["G"][m]):
            close(p.grad, fusion_part + G)
        for p, plain in zip(model.unimodal_heads[m].parameters(), parts["uni_head"][m]):
            close(p.grad, plain)
    for p, plain in zip(model.fusion_parameters(), parts["head"]):
        close(p.grad, plain)


def test_sum_fusion_gives_every_modality_the_same_feature_gradient():
    # f_fus = sum_m f_m, so dL_mm/df_m = dL_mm/df_fus for every m: nothing to orthogonalize
    features = features_with({"a": 12, "b": 7})
    _, scalars = take_step(fresh_model(features, fusion="sum"), features, GOAL(adaptive_leveraging=False))
    assert scalars["conflict_before"] == scalars["conflict_after"] == 0.0
    assert scalars["cos_a_b_before"] == pytest.approx(1.0, abs=1e-5)


def test_parameter_variant_orthogonalizes_flat_branch_gradients():
    features = features_with({"a": 10, "b": 10})
    saw_a_conflict = False
    for seed in range(8):
        model = fresh_model(features, seed=seed)
        parts = reference_parts(model, features)
        weights = hand_weights(parts["uni_logits"])
        flat = [w * flatten(parts["g"][m]) for w, m in zip(weights, model.modalities)]
        expected = orthogonalize(flat, eps=0.0)
        _, scalars = take_step(model, features, GOAL(variant="parameter"))
        for m, g_edited in zip(model.modalities, expected):
            params = model.branch_parameters(m)
            for p, fusion_part, G in zip(params, unflatten(g_edited, params), parts["G"][m]):
                close(p.grad, fusion_part + G)
        conflicted = float(flat[0] @ flat[1] < 0)
        assert scalars["conflict_before"] == conflicted
        assert scalars["conflict_after"] == 0.0
        saw_a_conflict |= conflicted == 1.0
    assert saw_a_conflict


def test_parameter_variant_names_the_shapes_when_branches_differ():
    features = features_with({"a": 10, "b": 6})
    with pytest.raises(ValueError, match=r"same parameter shapes.*\(16, 10\).*\(16, 6\)"):
        train(features, "goal", variant="parameter", hidden=16, epochs=1, device="cpu")


# --- training, M >= 3, tasks, records -------------------------------------------------------

def test_three_modalities_train_and_record_every_pair():
    features = features_with({"a": 6, "b": 9, "c": 5}, n=256)
    result = train(features, "goal", epochs=6, batch_size=32, lr=3e-3, device="cpu", show_progress=False)
    history = result.history
    for key in ("w_a", "w_b", "w_c", "conflict_before", "conflict_after"):
        assert len(history[key]) == 48
    for pair in ("a_b", "a_c", "b_c"):
        assert f"cos_{pair}_before" in history and f"cos_{pair}_after" in history
    sums = result.curve("w_a") + result.curve("w_b") + result.curve("w_c")
    assert abs(sums - 1).max() < 1e-5
    assert result.curve("conflict_after").mean() < 0.5 * result.curve("conflict_before").mean()
    assert result.curve("loss_task")[-8:].mean() < 0.6 * result.curve("loss_task")[:8].mean()


def test_same_seed_same_numbers_and_kept_cosines():
    features = toy_features(n=128)
    runs = [train(features, "goal", epochs=2, batch_size=32, seed=5, device="cpu", show_progress=False,
                  keep_cosines=True) for _ in range(2)]
    assert runs[0].history == runs[1].history
    for a, b in zip(runs[0].model.parameters(), runs[1].model.parameters()):
        assert torch.equal(a, b)
    cosines = runs[0].method.cosines
    assert len(cosines) == 8 and set(cosines[0]) == {"easy_hard_before", "easy_hard_after"}
    first = cosines[0]["easy_hard_before"]
    assert first.shape == (32,) and first.abs().max() <= 1 + 1e-6
    assert runs[0].history["cos_easy_hard_before"][0] == pytest.approx(first.mean().item(), abs=1e-6)
    assert runs[0].history["conflict_before"][0] == pytest.approx((first < 0).float().mean().item())


def test_multilabel_weights_treat_each_label_as_a_binary_prediction():
    logits = {"a": torch.tensor([[3.0, -1.0]]), "b": torch.tensor([[0.0, 0.5]])}
    step = SimpleNamespace(model=SimpleNamespace(modalities=("a", "b")), task="multilabel",
                           output=SimpleNamespace(unimodal_logits=logits))
    weights = GOAL().leverage_weights(step)
    # label k of modality m: p = sigmoid(z), c = 1 - H(p)/log 2; softmax over modalities per label, mean over labels
    confidence = {}
    for m, z in logits.items():
        p = torch.sigmoid(z[0])
        confidence[m] = 1 + (p * p.log() + (1 - p) * (1 - p).log()) / math.log(2)
    expected = torch.stack([confidence["a"], confidence["b"]], dim=1).softmax(dim=1).mean(0)
    close(weights, expected)
    result = train(toy_features(task="multilabel"), "goal", epochs=1, device="cpu", show_progress=False)
    assert result.history["w_easy"][0] + result.history["w_hard"][0] == pytest.approx(1.0, abs=1e-6)


def test_regression_refuses_al_but_trains_with_go_only():
    features = toy_features(task="regression")
    with pytest.raises(ValueError, match="adaptive_leveraging=False"):
        train(features, "goal", epochs=1, device="cpu")
    result = train(features, "goal", adaptive_leveraging=False, epochs=1, device="cpu", show_progress=False)
    assert result.history["w_easy"] == [1.0, 1.0] and result.history["conflict_after"] == [0.0, 0.0]


def test_bfloat16_autocast_step_runs_and_removes_conflicts():
    result = train(toy_features(n=128), "goal", epochs=1, batch_size=64, amp=True, device="cpu", show_progress=False)
    assert all(math.isfinite(v) for v in result.history["loss"])
    assert result.history["conflict_after"] == [0.0, 0.0]


def test_options_are_checked():
    assert make("goal").name == "goal" and make("goal").unimodal_heads
    with pytest.raises(ValueError, match="variant"):
        GOAL(variant="weights")
    with pytest.raises(ValueError, match="positive"):
        GOAL(T=0)
