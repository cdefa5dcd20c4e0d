import pytest
import torch

from modbal_lib.methods import make
from modbal_lib.experiments import MSLR_CANDIDATES, prepared_options
from modbal_lib.methods.mslr import MSLR
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
    assert conflict_fraction([g1, g2]) == 1.0 and conflict_fraction([g1, g1]) == 0.0


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
