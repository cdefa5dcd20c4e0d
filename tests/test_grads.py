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
