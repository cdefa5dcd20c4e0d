"""GO as a plug-in (modbal_lib.methods.plus_go): names and options, the gradients it hands the wrapped
method (unchanged without conflicts, orthogonalized with them), and training through the registry."""

import pytest
import torch

from modbal_lib.experiments import check_comparison, prepared_options
from modbal_lib.methods import make, method_class, option_defaults, option_hints
from modbal_lib.methods.base import Step
from modbal_lib.methods.goal import orthogonalize
from modbal_lib.methods.joint import Joint, JointUnimodalHeads
from modbal_lib.methods.ogm_ge import OGMGE
from modbal_lib.methods.plus_go import PlusGO, split_go, with_go
from modbal_lib.models import LateFusion
from modbal_lib.grads import loss_grads
from modbal_lib.train import train

from helpers import toy_features

SMALL = dict(epochs=2, batch_size=64, hidden=16, show_progress=False)


def test_names_options_and_registry():
    method = make("ogm_ge+go", alpha=0.5, ge=False)
    assert isinstance(method, PlusGO) and isinstance(method.method, OGMGE)
    assert method.name == "ogm_ge+go" and method.method.alpha == 0.5 and method.method.ge is False
    assert method_class("mslr+go") is PlusGO
    assert option_hints("ogm_ge+go") == option_hints("ogm_ge")
    assert option_defaults("mslr+go") == option_defaults("mslr")
    assert make("joint_unimodal_heads+go").unimodal_heads and not make("joint+go").unimodal_heads
    assert split_go("cggm+go") == ("cggm", True) and split_go("cggm") == ("cggm", False)
    check_comparison(["a=ogm_ge+go", "b=ogm_ge"], {"a": {"alpha": 0.3}})


@pytest.mark.parametrize("name, message", [
    ("nope+go", "unknown method 'nope'"),
    ("goal+go", "already orthogonalizes"),
    ("joint+go+go", "already orthogonalizes"),
    ("unimodal_easy+go", "unimodal model"),
])
def test_bad_bases_are_refused_by_name(name, message):
    with pytest.raises(ValueError, match=message):
        method_class(name)


def test_an_option_of_another_method_is_refused():
    with pytest.raises(ValueError, match="a.gamma: ogm_ge\\+go has no option 'gamma'"):
        check_comparison(["a=ogm_ge+go"], {"a": {"gamma": 1.0}})


def one_step(method, fusion: str, heads: bool, flip_head: bool = False):
    """A fresh model, one ``method`` step on toy data: the branch gradients, the embeddings' gradients seen by
    the backward pass, and the raw fusion-loss gradients at the embeddings."""
    features = toy_features(n=64)
    torch.manual_seed(0)
    model = LateFusion({m: tuple(x.shape[1:]) for m, x in features.features.items()}, 4, hidden=8, fusion=fusion,
                       unimodal_heads=heads)
    if flip_head:  # W_hard = -W_easy: the two fusion gradients are opposite for every sample
        with torch.no_grad():
            model.head.weight[:, 8:] = -model.head.weight[:, :8]
    method.setup(model, features, 1e-3)
    output = model(features.features)
    step = Step(model, features.features, features.labels, "multiclass", output, 0, 0, 1, 1)
    losses = method.losses(step)
    raw = [g.clone() for g in loss_grads(losses["task"], list(output.embeddings.values()))]
    seen = {}
    for m, embedding in output.embeddings.items():
        embedding.register_hook(lambda grad, m=m: seen.__setitem__(m, grad.clone()))  # the last pass's
    scalars = method.backward(step, losses)
    return {n: p.grad.clone() for n, p in model.named_parameters()}, seen, raw, scalars


def test_without_conflicts_the_gradients_are_the_base_methods():
    # sum fusion: dL/df_easy = dL/df_hard = W^T (p - y), so no sample has a conflict
    base, _, _, _ = one_step(JointUnimodalHeads(), "sum", heads=True)
    plus, _, raw, scalars = one_step(PlusGO(JointUnimodalHeads()), "sum", heads=True)
    assert torch.equal(raw[0], raw[1]) and scalars["conflict_before"] == 0.0
    for name in base:
        torch.testing.assert_close(plus[name], base[name], rtol=0, atol=1e-7)


def test_opposite_fusion_gradients_cancel_and_the_rest_is_untouched():
    base, _, raw, _ = one_step(Joint(), "concat", heads=False, flip_head=True)
    plus, seen, _, scalars = one_step(PlusGO(Joint()), "concat", heads=False, flip_head=True)
    torch.testing.assert_close(raw[1], -raw[0])
    assert scalars["conflict_before"] == 1.0 and scalars["conflict_after"] == 0.0
    for m in ("easy", "hard"):  # g_1'' = g_1 - (g_1.g_2 / |g_2|^2) g_2 = g_1 - g_1 = 0
        assert float(seen[m].abs().max()) < 1e-7
        assert float(plus[f"branches.{m}.0.weight"].abs().max()) < 1e-7
        assert float(base[f"branches.{m}.0.weight"].abs().max()) > 1e-4
    for name in ("head.weight", "head.bias"):  # the fusion head's gradient is not GO's business
        torch.testing.assert_close(plus[name], base[name], rtol=0, atol=0)


def test_with_conflicts_the_backward_sees_the_orthogonalized_fusion_gradient():
    _, seen, raw, scalars = one_step(PlusGO(Joint()), "concat", heads=False)
    expected = orthogonalize(raw, eps=0.0)
    assert 0 < scalars["conflict_before"] < 1 and scalars["conflict_after"] == 0.0
    for m, g in zip(("easy", "hard"), expected):
        torch.testing.assert_close(seen[m], g, rtol=1e-5, atol=1e-9)
    dots = (seen["easy"] * seen["hard"]).sum(1)
    assert float(dots.min()) >= -1e-9 * float(seen["easy"].norm() * seen["hard"].norm())


def test_with_go_keeps_the_loss_value_and_adds_the_change_at_the_embedding():
    e = torch.randn(3, 2, requires_grad=True)
    loss = (e ** 2).sum()
    change = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    edited = with_go(loss, [e], [change])
    assert float(edited.detach()) == float(loss.detach())
    (grad,) = torch.autograd.grad(edited, e)
    torch.testing.assert_close(grad, 2 * e.detach() + change)


def test_heads_plus_go_trains_as_goal_without_adaptive_leveraging():
    a = train(toy_features(), "joint_unimodal_heads+go", **SMALL)
    b = train(toy_features(), "goal", adaptive_leveraging=False, **SMALL)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert a.history["conflict_before"] == b.history["conflict_before"]
    assert not any(key.startswith("w_") for key in a.history)


def test_ogm_ge_plus_go_keeps_its_options_and_records():
    result = train(toy_features(), "ogm_ge+go", alpha=0.0, **SMALL)
    assert set(result.history["k_easy"]) == {1.0}  # alpha = 0 switches OGM's modulation off
    assert set(result.history["conflict_after"]) == {0.0} and max(result.history["conflict_before"]) > 0


def test_mslr_plus_go_gets_its_learning_rates_searched():
    options = prepared_options("mslr+go", {"search_epochs": 1, "hidden": 8}, toy_features(n=64))
    assert set(options["lr_scales"]) == {"easy", "hard"}
