import pytest
import torch

from modbal_lib.grads import (cosine, current_grads, flatten, grad_norm, loss_grads, project_conflicting,
                              scale_grads, unflatten, write_grads)


def small_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))


def test_loss_grads_equal_separate_backward_passes():
    net = small_net()
    x = torch.randn(8, 5)
    params = list(net.parameters())
    for make_loss in (lambda: net(x)[:, 0].pow(2).mean(), lambda: net(x)[:, 1:].sum()):
        grads = loss_grads(make_loss(), params)
        net.zero_grad()
        make_loss().backward()
        for p, g in zip(params, grads):
            torch.testing.assert_close(p.grad, g)


def test_loss_grads_give_zeros_for_unused_parameters():
    net = small_net()
    unused = torch.nn.Parameter(torch.ones(2))
    loss = net(torch.randn(3, 5)).sum()
    grads = loss_grads(loss, [*net.parameters(), unused])
    assert torch.equal(grads[-1], torch.zeros(2))


def test_flatten_unflatten_round_trip_and_size_check():
    tensors = [torch.randn(2, 3), torch.randn(4), torch.randn(1, 1, 2)]
    vector = flatten(tensors)
    assert vector.shape == (12,)
    for a, b in zip(unflatten(vector, tensors), tensors):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="11 elements"):
        unflatten(vector[:11], tensors)


def test_write_grads_changes_exactly_the_chosen_parameters():
    net = small_net()
    net(torch.randn(4, 5)).sum().backward()
    before = current_grads(list(net.parameters()))
    chosen = list(net[2].parameters())
    new = [torch.full_like(p, 7.0) for p in chosen]
    write_grads(chosen, new)
    for p in chosen:
        assert torch.all(p.grad == 7.0)
    for p, old in zip(list(net[0].parameters()), before[:2]):
        assert torch.equal(p.grad, old)
    write_grads(chosen, new, accumulate=True)
    assert torch.all(chosen[0].grad == 14.0)
    scale_grads(chosen, 0.5)
    assert torch.all(chosen[0].grad == 7.0)


def test_grad_norm_and_cosine():
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([3.0, 4.0])
    assert grad_norm([p]) == pytest.approx(5.0)
    assert cosine(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])) == pytest.approx(0.0)
    assert cosine(torch.tensor([1.0, 1.0]), torch.tensor([-2.0, -2.0])) == pytest.approx(-1.0)
    assert cosine(torch.zeros(3), torch.ones(3)) == 0.0


def test_project_conflicting_removes_exactly_the_conflicting_component():
    ref = torch.tensor([1.0, 0.0, 0.0])
    g = torch.tensor([-2.0, 1.0, 3.0])
    projected = project_conflicting(g, ref)
    torch.testing.assert_close(projected, torch.tensor([0.0, 1.0, 3.0]))
    assert float(projected @ ref) == pytest.approx(0.0)
    aligned = torch.tensor([2.0, -1.0, 0.5])
    assert torch.equal(project_conflicting(aligned, ref), aligned)
    assert torch.equal(project_conflicting(g, torch.zeros(3)), g)
    rows = project_conflicting(torch.stack([g, aligned]), torch.stack([ref, ref]))
    torch.testing.assert_close(rows, torch.stack([torch.tensor([0.0, 1.0, 3.0]), aligned]))


def test_to_floats_converts_tensors_and_numbers_in_one_transfer(monkeypatch):
    from modbal_lib.grads import to_floats

    stacks = []
    real_stack = torch.stack
    monkeypatch.setattr(torch, "stack", lambda tensors, *a, **k: stacks.append(len(tensors)) or real_stack(tensors, *a, **k))
    scalars = to_floats({"w": torch.tensor(0.25), "flag": torch.tensor(True), "scale": 0.75, "cos": torch.tensor([-0.5])})
    assert scalars == {"w": 0.25, "flag": 1.0, "scale": 0.75, "cos": -0.5}
    assert all(type(v) is float for v in scalars.values()) and stacks == [3]
    assert to_floats({"k": 1}) == {"k": 1.0}


# --- several losses' gradients, and their dot products without forming them -------------------------------

from modbal_lib.grads import (conflict_coefficient, cosine_from_gram, gram, linear_gram, losses_grads,  # noqa: E402
                              parameter_gram)
from modbal_lib.models import SmallCNN, make_branch  # noqa: E402


def three_losses(net, x):
    out = net(x)
    return [out[:, 0].pow(2).mean(), out[:, 1:].sum(), out[:, 2].exp().mean()]


@pytest.mark.parametrize("vectorised", [True, False])
def test_losses_grads_equal_separate_autograd_calls(vectorised):
    net = small_net()
    x = torch.randn(6, 5, requires_grad=True)
    unused = torch.nn.Parameter(torch.ones(3))
    losses = three_losses(net, x)
    inputs = [*net.parameters(), x, unused]
    batched = losses_grads(losses, inputs, vectorised=vectorised)
    assert [tuple(g.shape) for g in batched] == [(3, *t.shape) for t in inputs]
    for k, loss in enumerate(losses):
        separate = torch.autograd.grad(loss, inputs, retain_graph=True, allow_unused=True)
        for row, expected, t in zip(batched, separate, inputs):
            torch.testing.assert_close(row[k], torch.zeros_like(t) if expected is None else expected)
    assert torch.equal(batched[-1], torch.zeros(3, 3))
    # the loss on output column 0 does not reach the last layer's rows 1, 2
    assert torch.equal(batched[2][0, 1:], torch.zeros(2, 4))


def explicit_gram(losses, params):
    """The Gram matrix of the losses' flattened parameter gradients, the plain way."""
    flat = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params, retain_graph=True)]) for loss in losses]
    return torch.stack([torch.stack([a.double() @ b.double() for b in flat]) for a in flat])


def test_gram_is_the_dot_products_at_any_magnitude():
    vectors = torch.randn(3, 50)
    torch.testing.assert_close(gram(vectors), vectors.double() @ vectors.double().T, rtol=1e-5, atol=1e-5)
    huge, tiny = vectors * 1e30, vectors * 1e-30
    torch.testing.assert_close(gram(huge) / 1e60, gram(vectors), rtol=1e-5, atol=0)
    torch.testing.assert_close(gram(tiny) * 1e60, gram(vectors), rtol=1e-5, atol=0)
    assert torch.equal(gram(torch.zeros(2, 4)), torch.zeros(2, 2, dtype=torch.float64))


def test_linear_gram_equals_the_gram_of_the_weight_and_bias_gradients():
    torch.manual_seed(0)
    layer = torch.nn.Linear(7, 4)
    x = torch.randn(9, 7)
    y = layer(x)
    losses = [y.pow(2).mean(), y[:, 1].sum(), (y * torch.randn(9, 4)).sum()]
    output_grads = torch.stack([torch.autograd.grad(loss, y, retain_graph=True)[0] for loss in losses])
    expected = explicit_gram(losses, list(layer.parameters()))
    torch.testing.assert_close(linear_gram(x, output_grads), expected, rtol=1e-5, atol=1e-6)
    for magnitude in (1e-30, 1e25):  # scale-safe in the gradients
        torch.testing.assert_close(linear_gram(x, output_grads * magnitude) / magnitude**2, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("branch_input", [(6,), (3, 8, 8)])
def test_parameter_gram_through_a_branch_equals_the_explicit_gram(branch_input):
    """The feature branch (linear + ReLU: the Gram trick) and the pixel CNN (one vectorised backward)."""
    torch.manual_seed(1)
    branch = make_branch(branch_input, hidden=5)
    assert isinstance(branch, SmallCNN) == (len(branch_input) == 3)
    x = torch.randn(4, *branch_input)
    embedding = branch(x)
    head = torch.nn.Linear(5, 3)
    losses = three_losses(head, embedding)
    at_embedding = losses_grads(losses, [embedding])
    expected = explicit_gram(losses, list(branch.parameters()))
    torch.testing.assert_close(parameter_gram([branch], [x], [embedding], at_embedding), expected, rtol=1e-4, atol=1e-7)
    # two branches: the sum of their Grams (the flat gradient over both)
    two = parameter_gram([branch, branch], [x, x], [embedding, embedding], at_embedding * 2)
    torch.testing.assert_close(two, 2 * expected, rtol=1e-4, atol=1e-7)


def test_conflict_coefficient_and_cosine_from_a_gram_matrix():
    g, ref = torch.tensor([-2.0, 1.0, 3.0]), torch.tensor([1.0, 0.0, 0.0])
    c = conflict_coefficient(g @ ref, ref @ ref)
    torch.testing.assert_close(g - c * ref, project_conflicting(g, ref))
    assert conflict_coefficient(torch.tensor(2.0), torch.tensor(1.0)) == 0  # agreeing: nothing removed
    assert conflict_coefficient(torch.tensor(0.0), torch.tensor(0.0)) == 0  # a zero ref: nothing removed, no NaN
    vectors = torch.stack([g, ref, torch.zeros(3)])
    matrix = gram(vectors)
    assert float(cosine_from_gram(matrix, 0, 1)) == pytest.approx(cosine(g, ref))
    assert float(cosine_from_gram(matrix, 0, 2)) == 0.0 and float(cosine_from_gram(matrix, 2, 2)) == 0.0
