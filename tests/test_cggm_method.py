"""CGGM's training method: classifiers, B from their progress, gradient scaling, both L_gm variants."""

import copy

import pytest
import torch

from modbal_lib.features import FeatureSet
from modbal_lib.methods.base import Step, Method
from modbal_lib.methods.cggm import CGGM, balance_terms, direction_loss, metric_improvements
from modbal_lib.models import LateFusion
from modbal_lib.train import train

from helpers import toy_features


def build(features: FeatureSet, method: Method, fusion: str = "concat", seed: int = 0) -> LateFusion:
    """A small seeded model for ``features``, with ``method`` set up on it."""
    torch.manual_seed(seed)
    outputs = 1 if features.task == "regression" else len(features.class_names)
    model = LateFusion({m: tuple(x.shape[1:]) for m, x in features.features.items()}, outputs, hidden=16, fusion=fusion)
    method.setup(model, features, lr=1e-3)
    return model


def step_grads(method: Method, model: LateFusion, features: FeatureSet, rows=slice(0, 64)) -> dict:
    """One trainer step up to the optimizer: zero grads, forward, losses, the method's backward (its recorded
    scalars, 0-dim tensors on the device, as floats)."""
    inputs = {m: x[rows] for m, x in features.features.items()}
    model.zero_grad(set_to_none=True)
    output = model(inputs)
    step = Step(model, inputs, features.labels[rows], features.task, output, 0, 0, 1, 1)
    scalars = method.backward(step, method.losses(step))
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad for v in scalars.values())
    return {key: float(value) for key, value in scalars.items()}


def grads_of(model: LateFusion) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def three_modalities(task: str = "multiclass", n: int = 256) -> FeatureSet:
    """The toy's two modalities plus a third, "mid", in between."""
    base = toy_features(n=n, task=task)
    generator = torch.Generator().manual_seed(5)
    mid = base.features["easy"][:, :4] * 0.5 + torch.randn(n, 4, generator=generator)
    return FeatureSet(("easy", "mid", "hard"), {**base.features, "mid": mid}, base.labels, base.task, base.class_names)


@pytest.mark.parametrize("magnitude", [True, False])
def test_branch_grads_are_joints_scaled_by_B_and_classifiers_send_nothing_back(magnitude):
    features = toy_features()
    method = CGGM(magnitude=magnitude, direction=False)
    model = build(features, method)
    joint_model = copy.deepcopy(model)
    classifiers_before = copy.deepcopy(method.classifiers)
    scalars = step_grads(method, model, features)
    step_grads(Method(), joint_model, features)
    cggm, joint = grads_of(model), grads_of(joint_model)
    for name in cggm:
        modality = name.split(".")[1] if name.startswith("branches.") else None
        B = scalars[f"B_{modality}"] if modality and magnitude else 1.0
        torch.testing.assert_close(cggm[name], B * joint[name], rtol=1e-6, atol=0)
    # the classifiers trained on their own losses (one Adam step) and left no gradient behind
    for before, after in zip(classifiers_before.parameters(), method.classifiers.parameters()):
        assert not torch.equal(before, after) and after.grad is None
    assert set(method.classifiers) == {"easy", "hard"}


def test_official_variant_adds_last_steps_weight_cosine_to_the_fused_head_weight_only():
    features = toy_features()
    method = CGGM(variant="official", magnitude=False, lam=0.5)
    model = build(features, method)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    head_weight = model.head.weight.detach().clone()  # the weights L_gm is taken on: before step 1's update
    classifier_weights = [method.classifiers[m][-1].weight.detach().clone() for m in model.modalities]
    first = step_grads(method, model, features, rows=slice(0, 64))
    optimizer.step()

    joint_model = copy.deepcopy(model)
    second = step_grads(method, model, features, rows=slice(64, 128))
    step_grads(Method(), joint_model, features, rows=slice(64, 128))
    cggm, joint = grads_of(model), grads_of(joint_model)
    for name in cggm:
        if name != "head.weight":
            assert torch.equal(cggm[name], joint[name]), name

    # the extra gradient is lam * d L_gm / dW_F, L_gm from step 1's weights and B / rho
    W = head_weight.requires_grad_()
    B = torch.tensor([first["B_easy"], first["B_hard"]]) / method.rho
    blocks = W.split(model.hidden, dim=1)
    expected = torch.stack([direction_loss(blocks[i], [classifier_weights[i]], B[i : i + 1]) for i in range(2)]).mean()
    assert first["loss_gm"] == pytest.approx(expected.item(), rel=1e-5)
    (extra,) = torch.autograd.grad(method.lam * expected, W)
    assert extra.abs().max() > 0
    torch.testing.assert_close(cggm["head.weight"] - joint["head.weight"], extra, rtol=1e-4, atol=1e-7)
    assert 0 <= second["loss_gm"] <= 2 * max(abs(second["B_easy"]), abs(second["B_hard"])) / method.rho


@pytest.mark.parametrize("fusion", ["concat", "sum", "attention"])
def test_paper_variant_is_eq12_on_gradients_and_trains_head_and_branches(fusion):
    features = toy_features()
    method = CGGM(variant="paper", magnitude=False, lam=0.2)
    model = build(features, method, fusion=fusion)
    classifiers = copy.deepcopy(method.classifiers)
    plain_model = copy.deepcopy(model)
    scalars = step_grads(method, model, features)
    plain = CGGM(variant="paper", magnitude=False, direction=False)
    plain.setup(plain_model, features, 1e-3)
    step_grads(plain, plain_model, features)

    # L_gm by hand: cos(dL_T/dW_F (its block W_i under concat), dL_i/dW_{f_i}) with the step's B
    rows = slice(0, 64)
    inputs = {m: x[rows] for m, x in features.features.items()}
    output = model(inputs)
    task = torch.nn.functional.cross_entropy(output.logits, features.labels[rows])
    (fused_grad,) = torch.autograd.grad(task, model.head.weight)
    blocks = fused_grad.split(model.hidden, dim=1) if fusion == "concat" else [fused_grad, fused_grad]
    expected = 0.0
    for i, m in enumerate(model.modalities):
        logits = classifiers[m](output.embeddings[m].detach())
        loss = torch.nn.functional.cross_entropy(logits, features.labels[rows])
        (grad,) = torch.autograd.grad(loss, classifiers[m][-1].weight)
        cos = torch.nn.functional.cosine_similarity(blocks[i].flatten(), grad.flatten(), dim=0)
        expected += (abs(scalars[f"B_{m}"]) - scalars[f"B_{m}"] * float(cos)) / 2
    assert scalars["loss_gm"] == pytest.approx(expected, rel=1e-4)
    # through the double backward L_gm moves the fused head and the branches, not only the last layer
    with_gm, without = grads_of(model), grads_of(plain_model)
    for name in ("head.weight", "branches.easy.0.weight", "branches.hard.0.weight"):
        assert not torch.allclose(with_gm[name], without[name]), name


def test_cggm_slows_the_faster_improving_modality():
    """"easy" carries the label, "hard" is noise: easy's classifier improves, so B_easy < B_hard."""
    for seed in (0, 1):
        base = toy_features(n=4096, seed=seed)
        noise = torch.randn(4096, 12, generator=torch.Generator().manual_seed(seed + 100))
        features = FeatureSet(base.modalities, {"easy": base.features["easy"], "hard": noise}, base.labels,
                              base.task, base.class_names)
        result = train(features, "cggm", epochs=3, batch_size=512, seed=seed, device="cpu", show_progress=False,
                       direction=False)
        easy_gain = result.curve("acc_clf_easy")[-4:].mean() - result.curve("acc_clf_easy")[:4].mean()
        hard_gain = result.curve("acc_clf_hard")[-4:].mean() - result.curve("acc_clf_hard")[:4].mean()
        assert easy_gain > 0.2 and abs(hard_gain) < 0.1
        assert result.curve("B_easy").mean() < result.curve("B_hard").mean() - 0.05


@pytest.mark.parametrize("task,metric", [("multiclass", "acc"), ("regression", "mae"), ("multilabel", "f1")])
def test_B_follows_eq7_from_the_recorded_metrics_across_epochs(task, metric):
    result = train(toy_features(task=task), "cggm", epochs=3, batch_size=64, device="cpu", show_progress=False,
                   lr=1e-2)
    values = torch.tensor([result.history[f"{metric}_clf_easy"], result.history[f"{metric}_clf_hard"]]).T
    B = torch.tensor([result.history["B_easy"], result.history["B_hard"]]).T
    higher_is_better = metric != "mae"
    previous = torch.zeros(2) if higher_is_better else values[0]  # eps(0) = 0; MAE starts from the first batch
    for t in range(len(values)):  # 12 steps over 3 epochs: the previous value is carried over epoch ends
        d = metric_improvements(values[t], previous, higher_is_better=higher_is_better)
        torch.testing.assert_close(B[t], balance_terms(d, rho=1.3), rtol=1e-5, atol=1e-6)
        previous = values[t]
    assert ((B >= 0) & (B <= 1.3 + 1e-6)).all()
    if task == "regression":
        assert B[0].tolist() == pytest.approx([0.65, 0.65])  # no progress yet: the neutral rho (M - 1) / M


@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_three_modalities_and_regression_train(variant, task):
    features = three_modalities(task)
    result = train(features, "cggm", epochs=6, batch_size=64, lr=1e-2, device="cpu", show_progress=False,
                   variant=variant)
    metric = "mae" if task == "regression" else "acc"
    for m in ("easy", "mid", "hard"):
        assert len(result.history[f"B_{m}"]) == len(result.history[f"{metric}_clf_{m}"]) == 24
        assert len(result.history[f"loss_clf_{m}"]) == 24
    assert len(result.history["loss_gm"]) == 24
    B = torch.tensor([result.history[f"B_{m}"] for m in ("easy", "mid", "hard")])
    # each step's B sums to rho (M - 1) = 2.6, whether from Eq. 7 or the neutral value
    torch.testing.assert_close(B.sum(0), torch.full((24,), 2.6), rtol=1e-5, atol=1e-5)
    assert result.curve("loss_task")[-4:].mean() < 0.7 * result.curve("loss_task")[:4].mean()


def test_same_seed_same_numbers_and_the_model_is_the_fusion_model_alone():
    features = toy_features()
    first = train(features, "cggm", epochs=2, batch_size=32, seed=3, device="cpu", show_progress=False)
    second = train(features, "cggm", epochs=2, batch_size=32, seed=3, device="cpu", show_progress=False)
    assert first.history == second.history
    for a, b in zip([*first.model.parameters(), *first.method.classifiers.parameters()],
                    [*second.model.parameters(), *second.method.classifiers.parameters()]):
        assert torch.equal(a, b)
    # the classifiers are the method's: evaluation sees the same parameters as a joint model's
    joint = train(features, "joint", epochs=1, device="cpu", show_progress=False)
    assert first.model.state_dict().keys() == joint.model.state_dict().keys()
    assert first.model.unimodal_heads is None


def test_clipping_bounds_the_model_gradient_norm():
    features = toy_features()
    method = CGGM(clip_norm=0.05)
    model = build(features, method)
    step_grads(method, model, features)
    total = torch.stack([p.grad.norm() for p in model.parameters()]).norm()
    assert float(total) <= 0.05 + 1e-6


def test_bad_options_and_one_modality_are_refused():
    for options, message in [({"variant": "v2"}, "variant"), ({"guard": "none"}, "guard"),
                             ({"classifier": "transformer"}, "classifier"), ({"rho": 0}, "rho")]:
        with pytest.raises(ValueError, match=message):
            CGGM(**options)
    one_modality = CGGM()
    one_modality.modalities = ("easy",)
    with pytest.raises(ValueError, match="at least two"):
        train(toy_features(), one_modality, epochs=1, device="cpu")
