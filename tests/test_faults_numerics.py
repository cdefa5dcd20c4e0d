"""Edge numerics: projections and cosines at any magnitude and dtype, refused NaN inputs, the trainer's
stop at the first non-finite loss or gradient, and the methods' random draws following the training seed."""

import math

import pytest
import torch

from modbal_lib.grads import cosine, project_conflicting, rowwise_cosine
from modbal_lib.methods.balgrad import project_conflicting as balgrad_projection
from modbal_lib.methods.base import Method
from modbal_lib.methods.goal import GOAL, adaptive_weights, orthogonalize
from modbal_lib.methods.ogm_ge import OGMGE, coefficients
from modbal_lib.methods.pcgrad import PCGrad
from modbal_lib.models import LateFusion
from modbal_lib.train import NonFiniteError, train

from helpers import toy_features

MAGNITUDES = [10.0**k for k in range(-30, 31, 5)]
DTYPES = [torch.float16, torch.bfloat16, torch.float32]


def random_pair(conflicting: bool, rows: int = 4, width: int = 32, seed: int = 0):
    """[rows, width] float64 (g, ref) whose rows clearly conflict (g.ref < 0) or clearly agree."""
    generator = torch.Generator().manual_seed(seed)
    g = torch.randn(rows, width, generator=generator, dtype=torch.float64)
    other = torch.randn(rows, width, generator=generator, dtype=torch.float64)
    ref = (-g if conflicting else g) + 0.5 * other
    return g, ref


def cast_or_skip(x: torch.Tensor, magnitude: float, dtype: torch.dtype) -> torch.Tensor:
    """x * magnitude in ``dtype``; magnitudes the dtype cannot hold (inf, or a row all zero) are skipped."""
    cast = (x * magnitude).to(dtype)
    if not torch.isfinite(cast).all() or (cast == 0).all(-1).any():
        pytest.skip(f"{magnitude:g} is not representable in {dtype} (the input itself is inf or zero)")
    return cast


def rounding_allowance(g: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """How far from 0 g'.ref may be per row, in float64: the result's rounding to its dtype, relative
    (eps |g| |ref|) and, for subnormal results, absolute (smallest subnormal * sum |ref|)."""
    info = torch.finfo(g.dtype)
    g64, ref64 = g.double(), ref.double()
    return 2 * info.eps * g64.norm(dim=-1) * ref64.norm(dim=-1) + info.tiny * info.eps * ref64.abs().sum(-1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("magnitude", MAGNITUDES)
def test_projection_is_finite_and_orthogonal_at_any_magnitude(magnitude, dtype):
    g64, ref64 = random_pair(conflicting=True)
    g, ref = cast_or_skip(g64, magnitude, dtype), cast_or_skip(ref64, magnitude, dtype)
    assert ((g.double() * ref.double()).sum(-1) < 0).all()
    projected = project_conflicting(g, ref)
    assert projected.dtype == dtype and torch.isfinite(projected).all()
    after = (projected.double() * ref.double()).sum(-1)
    assert (after.abs() <= rounding_allowance(g, ref)).all(), (after, rounding_allowance(g, ref))
    # the 1-D form (BalGrad's, PCGrad's) gives the same as each row
    for row in range(len(g)):
        assert torch.equal(project_conflicting(g[row], ref[row]), projected[row])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("magnitude", MAGNITUDES)
def test_projection_leaves_agreeing_gradients_exactly_alone(magnitude, dtype):
    g64, ref64 = random_pair(conflicting=False)
    g, ref = cast_or_skip(g64, magnitude, dtype), cast_or_skip(ref64, magnitude, dtype)
    assert ((g.double() * ref.double()).sum(-1) > 0).all()
    assert torch.equal(project_conflicting(g, ref), g)
    assert torch.equal(project_conflicting(g, torch.zeros_like(ref)), g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_projection_of_tiny_and_huge_gradients_against_each_other(dtype):
    g64, ref64 = random_pair(conflicting=True)
    big, small = (1e30, 1e-30) if dtype != torch.float16 else (3e3, 1e-4)
    for g_scale, ref_scale in ((big, small), (small, big)):
        g, ref = cast_or_skip(g64, g_scale, dtype), cast_or_skip(ref64, ref_scale, dtype)
        projected = project_conflicting(g, ref)
        assert torch.isfinite(projected).all()
        assert ((projected.double() * ref.double()).sum(-1).abs() <= rounding_allowance(g, ref)).all()


def test_projection_in_float16_is_not_clamped():
    # the squared norm 5e-5 is below finfo(float16).tiny; it used to be clamped there, giving [0.5903, 0.4097]
    g = torch.tensor([1.0, 0.0], dtype=torch.float16)
    ref = torch.tensor([-0.005, 0.005], dtype=torch.float16)
    assert torch.equal(project_conflicting(g, ref), torch.tensor([0.5, 0.5], dtype=torch.float16))
    # and gradients of a few hundred, whose squares overflow float16 (max 65504)
    g, ref = torch.tensor([300.0, 0.0], dtype=torch.float16), torch.tensor([-300.0, 300.0], dtype=torch.float16)
    assert torch.equal(project_conflicting(g, ref), torch.tensor([150.0, 150.0], dtype=torch.float16))


def test_projection_eps_counts_in_the_gradients_units():
    g, ref = torch.tensor([1.0, 0.0]), torch.tensor([-1e-20, 1e-20])  # ||ref||^2 = 2e-40
    torch.testing.assert_close(project_conflicting(g, ref), torch.tensor([0.5, 0.5]))
    # eps = 1e-8 dwarfs ||ref||^2: almost nothing is removed, and nothing turns into NaN
    torch.testing.assert_close(project_conflicting(g, ref, eps=1e-8), g)
    # at normal magnitudes eps enters as in the formula
    g, ref = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    torch.testing.assert_close(project_conflicting(g, ref, eps=2.0), torch.tensor([0.75, 0.25]))


def test_balgrad_and_goal_projections_are_scale_safe():
    g = torch.tensor([1.0, 0.0]) * 1e25
    ref = torch.tensor([-1.0, 1.0]) * 1e25
    torch.testing.assert_close(balgrad_projection(g, ref), torch.tensor([0.5e25, 0.5e25]))
    first, second = orthogonalize([g, ref], eps=0.0)
    assert torch.isfinite(first).all() and torch.isfinite(second).all()
    torch.testing.assert_close(first, torch.tensor([0.5e25, 0.5e25]))
    torch.testing.assert_close(second, torch.tensor([0.0, 1e25]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("magnitude", MAGNITUDES)
def test_cosine_is_scale_invariant(magnitude, dtype):
    a64, b64 = random_pair(conflicting=True, rows=1)
    a, b = cast_or_skip(a64[0], magnitude, dtype), cast_or_skip(b64[0], magnitude, dtype)
    a_, b_ = a.double(), b.double()
    truth = float(a_ @ b_ / (a_.norm() * b_.norm()))  # of the vectors as cast
    assert math.isfinite(cosine(a, b))
    assert cosine(a, b) == pytest.approx(truth, abs=1e-6)
    rows = rowwise_cosine(torch.stack([a, a]), torch.stack([b, torch.zeros_like(b)]))
    assert rows.tolist() == pytest.approx([truth, 0.0], abs=1e-6)


def test_cosine_of_tiny_huge_and_zero_vectors():
    assert cosine(torch.tensor([1e-30, 0.0]), torch.tensor([1e-30, 1e-30])) == pytest.approx(1 / math.sqrt(2))
    assert cosine(torch.tensor([1e30, 1e30]), torch.tensor([-1e30, -1e30])) == pytest.approx(-1.0)
    assert cosine(torch.tensor([1e-45, 0.0]), torch.tensor([3e38, 0.0])) == pytest.approx(1.0)
    assert cosine(torch.zeros(3), torch.tensor([1e30, 0.0, 0.0])) == 0.0
    assert cosine(torch.zeros(3), torch.zeros(3)) == 0.0


@pytest.mark.parametrize("T", [float("nan"), float("inf"), -1.0, 0.0])
def test_adaptive_weights_and_goal_refuse_a_bad_temperature(T):
    with pytest.raises(ValueError, match="temperature T must be a finite positive number"):
        adaptive_weights(torch.zeros(4, 2, 3), T=T)
    with pytest.raises(ValueError, match="temperature T must be a finite positive number"):
        GOAL(T=T)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_ogm_coefficients_refuse_non_finite_scores(bad):
    with pytest.raises(ValueError, match="score_a must be a finite positive number"):
        coefficients(bad, 1.0, alpha=0.8)
    with pytest.raises(ValueError, match="score_b must be a finite positive number"):
        coefficients(1.0, torch.tensor(bad), alpha=0.8)
    if bad != -1.0:
        with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
            coefficients(1.0, 2.0, alpha=bad)


# --- the trainer stops at the first non-finite loss or gradient -----------------------------------------

def test_training_with_a_huge_learning_rate_stops_at_the_first_nan_loss():
    with pytest.raises(NonFiniteError) as error:
        train(toy_features(), "balgrad", epochs=3, batch_size=64, lr=1e30, optimizer="sgd", device="cpu")
    message = str(error.value)
    # the first step is finite, the step of lr 1e30 makes the next forward pass overflow
    assert "training 'balgrad' stopped at epoch 0" in message and "iteration 1 " in message
    assert "non-finite loss 'task' = nan" in message and "gradient of branches.easy.0.weight" in message


def test_features_with_inf_stop_training_at_the_first_step():
    features = toy_features()
    features.features["hard"][:, 2] = float("inf")
    with pytest.raises(NonFiniteError, match=r"'joint' stopped at epoch 0 .*iteration 0 .*loss 'task' = nan"):
        train(features, "joint", epochs=2, device="cpu")


class BreaksOneGradient(Method):
    """Joint training that writes inf into one weight of the 'hard' branch at iteration 5."""

    name = "breaks_one_gradient"

    def backward(self, step, losses):
        scalars = super().backward(step, losses)
        if step.iteration == 5:
            step.model.branch_parameters("hard")[0].grad[0, 0] = float("inf")
        return scalars


def test_a_non_finite_gradient_names_the_epoch_iteration_and_parameter():
    # 256 samples in batches of 64: iteration 5 is the second of epoch 1
    with pytest.raises(NonFiniteError) as error:
        train(toy_features(), BreaksOneGradient(), epochs=3, batch_size=64, device="cpu")
    message = str(error.value)
    assert "'breaks_one_gradient' stopped at epoch 1 (of epochs 0..2), iteration 5 " in message
    assert "non-finite gradient of branches.hard.0.weight." in message and "non-finite loss" not in message


def test_a_finite_run_finishes_with_finite_parameters():
    result = train(toy_features(), "goal", epochs=2, batch_size=64, device="cpu")
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    assert all(math.isfinite(v) for values in result.history.values() for v in values)


# --- the methods' own random draws follow the training seed ---------------------------------------------

def test_ogm_ge_noise_follows_the_training_seed():
    features = toy_features()
    runs = {seed: train(features, "ogm_ge", epochs=1, batch_size=64, seed=seed, device="cpu") for seed in (0, 1)}
    assert runs[0].method.generator.initial_seed() == 0 and runs[1].method.generator.initial_seed() == 1
    again = train(features, "ogm_ge", epochs=1, batch_size=64, seed=1, device="cpu")
    assert again.history == runs[1].history
    # the noise itself: same model, same batch, the method set up with two training seeds
    model = LateFusion({m: tuple(x.shape[1:]) for m, x in features.features.items()}, 4, hidden=8)
    noises = []
    for seed in (0, 1, 1):
        method = OGMGE()
        method.setup(model, features, 1e-3, seed=seed)
        noises.append(torch.randn(100, generator=method.generator))
    assert not torch.equal(noises[0], noises[1]) and torch.equal(noises[1], noises[2])


def test_an_explicit_seed_option_wins_over_the_training_seed():
    features = toy_features()
    for method_class in (OGMGE, PCGrad):
        runs = [train(features, method_class(seed=7), epochs=1, seed=seed, device="cpu") for seed in (0, 1)]
        seeds = {run.method.generator.initial_seed() for run in runs}
        assert seeds == {7}


def test_pcgrad_order_follows_the_training_seed_and_restarts_with_each_run():
    features = toy_features()
    method = PCGrad()
    first = train(features, method, epochs=1, batch_size=64, seed=2, device="cpu")
    assert first.method.generator.initial_seed() == 2
    # the same instance trained again draws the same order (it used to continue its old stream)
    second = train(features, method, epochs=1, batch_size=64, seed=2, device="cpu")
    assert first.history == second.history
