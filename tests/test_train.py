import pytest
import torch

from modbal_lib.methods import make
from modbal_lib.experiments import MSLR_CANDIDATES, prepared_options
from modbal_lib.methods.mslr import MSLR
from modbal_lib.grads import gram, loss_grads
from modbal_lib.methods.pcgrad import conflict_fraction, project_tasks
from modbal_lib.train import train

from helpers import toy_features


def test_same_seed_gives_identical_numbers_and_another_seed_does_not():
    features = toy_features()
    first = train(features, "joint", epochs=2, batch_size=32, seed=3, device="cpu")
    second = train(features, "joint", epochs=2, batch_size=32, seed=3, device="cpu")
    other = train(features, "joint", epochs=2, batch_size=32, seed=4, device="cpu")
    assert first.history == second.history
    for a, b in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(a, b)
    assert first.history["loss"] != other.history["loss"]


def test_history_has_one_row_per_iteration_and_loss_falls():
    features = toy_features(n=200)
    result = train(features, "joint_unimodal_heads", epochs=5, batch_size=50, lr=1e-2, seed=0, device="cpu")
    assert len(result.history["loss"]) == 5 * 4 == len(result.step_seconds)
    for key in ("loss_task", "loss_uni_easy", "loss_uni_hard", "acc_uni_easy", "grad_norm_hard"):
        assert len(result.history[key]) == 20
    assert result.curve("loss_task")[-4:].mean() < 0.5 * result.curve("loss_task")[:4].mean()
    # the easy modality is learned faster: its unimodal loss ends lower
    assert result.curve("loss_uni_easy")[-4:].mean() < result.curve("loss_uni_hard")[-4:].mean()
    assert result.curve("loss", smooth=4).shape == (17,)


def test_record_off_keeps_no_history():
    result = train(toy_features(), "joint", epochs=1, record=False, device="cpu")
    assert result.history == {} and len(result.step_seconds) == 2


@pytest.mark.parametrize("task", ["multilabel", "regression"])
def test_other_tasks_train(task):
    features = toy_features(task=task)
    result = train(features, "joint", epochs=8, batch_size=64, device="cpu", lr=1e-2)
    assert result.curve("loss")[-4:].mean() < result.curve("loss")[:4].mean()
    assert "acc_uni_easy" not in result.history


def test_unimodal_model_sees_one_modality():
    result = train(toy_features(), "unimodal_hard", epochs=1, device="cpu")
    assert result.model.modalities == ("hard",) and result.method.name == "unimodal_hard"
    with pytest.raises(ValueError, match="needs modalities"):
        train(toy_features(), "unimodal_sound", epochs=1, device="cpu")


def test_unknown_method_and_optimizer():
    with pytest.raises(ValueError, match="unknown method 'magic'"):
        make("magic")
    with pytest.raises(ValueError, match="unknown optimizer"):
        train(toy_features(), "joint", optimizer="rmsprop", device="cpu")


def test_pcgrad_surgery_matches_hand_computation():
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    projected = project_tasks([g1, g2])
    torch.testing.assert_close(projected[0], torch.tensor([0.5, 0.5]))   # g1 - (g1.g2/|g2|^2) g2
    torch.testing.assert_close(projected[1], torch.tensor([0.0, 1.0]))   # g2 - (g2.g1/|g1|^2) g1
    assert conflict_fraction(gram(torch.stack([g1, g2]))) == 1.0
    assert conflict_fraction(gram(torch.stack([g1, g1]))) == 0.0


def test_pcgrad_trains_and_records_conflicts():
    result = train(toy_features(), "pcgrad", epochs=2, device="cpu")
    values = result.history["conflict_fraction"]
    assert all(0.0 <= v <= 1.0 for v in values) and len(values) == 4


def test_mslr_gives_each_branch_its_learning_rate():
    result = train(toy_features(), MSLR(lr_scales={"easy": 0.5, "hard": 2.0}), epochs=1, lr=0.01, device="cpu")
    assert result.method.lr_scales == {"easy": 0.5, "hard": 2.0}
    with pytest.raises(ValueError, match="MSLR needs a learning-rate scale for every modality"):
        train(toy_features(), "mslr", epochs=1, device="cpu")  # the search belongs to the experiment layer
    options = prepared_options("mslr", {"lr": 0.01, "device": "cpu", "search_epochs": 1}, toy_features())
    searched = train(toy_features(), "mslr", epochs=1, **options)
    assert set(searched.method.lr_scales) == {"easy", "hard"}
    assert all(s in MSLR_CANDIDATES for s in searched.method.lr_scales.values())
    assert prepared_options("joint", {"lr": 0.01}, toy_features()) == {"lr": 0.01}


def test_cpu_training_uses_the_requested_threads_and_restores_the_setting():
    before = torch.get_num_threads()
    first = train(toy_features(), "joint", epochs=1, device="cpu", cpu_threads=1)
    assert torch.get_num_threads() == before
    again = train(toy_features(), "joint", epochs=1, device="cpu", cpu_threads=None)
    assert first.history["loss"][0] == pytest.approx(again.history["loss"][0])


def test_pcgrad_writes_the_surgery_of_the_explicit_task_gradients():
    """The training step works from the tasks' Gram matrix; the branches must receive the sum of the projected
    task gradients formed the plain way, in the same random order, and the heads their plain gradients."""
    from modbal_lib.methods.base import Step
    from modbal_lib.methods.pcgrad import PCGrad
    from modbal_lib.models import LateFusion

    features = toy_features()
    torch.manual_seed(0)
    model = LateFusion({m: tuple(x.shape[1:]) for m, x in features.features.items()}, 4, hidden=6, unimodal_heads=True)
    method = PCGrad()
    method.setup(model, features, 1e-3, seed=5)
    inputs = {m: x[:32] for m, x in features.features.items()}
    step = Step(model, inputs, features.labels[:32], "multiclass", model(inputs), 0, 0, 1, 1)
    losses = method.losses(step)
    branches = [p for m in model.modalities for p in model.branch_parameters(m)]
    task_grads = [torch.cat([g.reshape(-1) for g in loss_grads(loss, branches)]) for loss in losses.values()]
    expected = sum(project_tasks(task_grads, torch.Generator().manual_seed(5)))
    heads = [p for p in model.parameters() if all(p is not b for b in branches)]
    expected_heads = torch.autograd.grad(sum(losses.values()), heads, retain_graph=True)
    scalars = method.backward(step, losses)
    torch.testing.assert_close(torch.cat([p.grad.reshape(-1) for p in branches]), expected, rtol=1e-4, atol=1e-6)
    for p, g in zip(heads, expected_heads):
        torch.testing.assert_close(p.grad, g)
    assert float(scalars["conflict_fraction"]) == conflict_fraction(gram(torch.stack(task_grads)))


def count_host_reads(monkeypatch) -> list[str]:
    """Record every float()/int()/bool()/item()/tolist() of a tensor made directly by the kit's own code."""
    import sys

    reads = []
    for name in ("__float__", "__int__", "__bool__", "item", "tolist"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            frame = sys._getframe(1)
            if "/modbal_lib/" in frame.f_code.co_filename and frame.f_code.co_name != "random_order":
                reads.append(f"{_name} in {frame.f_code.co_name}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return reads


@pytest.mark.parametrize("method, options", [
    ("joint", {}), ("joint_unimodal_heads", {}), ("ogm_ge", {}), ("mslr", {"lr_scales": {"easy": 1.0, "hard": 2.0}}),
    ("pcgrad", {}), ("balgrad", {}), ("balgrad", {"projection_scope": "per_tensor"}), ("cggm", {}),
    ("cggm", {"variant": "official"}), ("goal", {}), ("ogm_ge+go", {}),
])
def test_no_step_reads_a_value_from_the_device(monkeypatch, method, options):
    """The step's scalars, the finite check and the step times reach the host once per epoch: twice the steps
    per epoch (half the batch size) make no more reads of a tensor's value by the kit's code."""
    reads = count_host_reads(monkeypatch)
    per_batch_size = {}
    for batch_size in (64, 32):
        reads.clear()
        train(toy_features(), method, epochs=2, batch_size=batch_size, device="cpu", show_progress=False, **options)
        per_batch_size[batch_size] = list(reads)
    assert per_batch_size[32] == per_batch_size[64], per_batch_size


def test_history_values_are_python_floats_equal_to_the_per_step_values():
    result = train(toy_features(), "goal", epochs=2, batch_size=64, device="cpu", show_progress=False)
    assert all(type(v) is float for values in result.history.values() for v in values)
    assert all(len(values) == 8 for values in result.history.values())
    loss_sum = [a + b + c for a, b, c in zip(*(result.history[f"loss_{k}"] for k in ("task", "uni_easy", "uni_hard")))]
    assert result.history["loss"] == pytest.approx(loss_sum, rel=1e-6)
    assert all(0 <= v <= 1 for v in result.history["conflict_before"])


def test_interleaved_step_seconds_takes_one_epoch_of_every_method_in_turn(monkeypatch):
    from modbal_lib import train as train_module
    from modbal_lib.train import interleaved_step_seconds

    calls = []
    real_train = train_module.train

    def recording_train(features, method, **options):
        calls.append((method, options["seed"], options["epochs"], options.get("lr")))
        return real_train(features, method, **options)

    monkeypatch.setattr(train_module, "train", recording_train)
    features = toy_features(n=200)
    runs = interleaved_step_seconds(features, {"joint": ("joint", {}), "fast": ("joint", {"lr": 0.01})}, rounds=2,
                                    batch_size=64, device="cpu")
    # round by round, every method in the order given, the round's seed, the method's own options over the shared
    assert calls == [("joint", 0, 1, None), ("joint", 0, 1, 0.01), ("joint", 1, 1, None), ("joint", 1, 1, 0.01)]
    assert list(runs) == ["joint", "fast"] and all(len(results) == 2 for results in runs.values())
    assert all(len(r.step_seconds) == 4 and min(r.step_seconds) > 0 for results in runs.values() for r in results)
    # each round is an ordinary training run: the same model as train() with that seed and those options
    direct = real_train(features, "joint", epochs=1, seed=1, lr=0.01, batch_size=64, device="cpu", show_progress=False)
    for a, b in zip(runs["fast"][1].model.parameters(), direct.model.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="rounds=0"):
        interleaved_step_seconds(features, {"joint": ("joint", {})}, rounds=0)


def test_pooled_median_step_seconds_takes_the_median_over_all_runs_steps():
    from types import SimpleNamespace

    from modbal_lib.train import pooled_median_step_seconds

    runs = [SimpleNamespace(step_seconds=[0.001, 0.009]), SimpleNamespace(step_seconds=[0.002, 0.003, 0.004])]
    assert pooled_median_step_seconds(runs) == 0.003  # not the median of the runs' medians (0.004)
