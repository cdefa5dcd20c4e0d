"""The method lab (chapter 7): a method and its knobs -> curves against joint, the impairment table, its edits."""

import matplotlib.pyplot as plt
import pytest

from modbal_lib.evaluate import evaluate
from modbal_lib.experiments import Experiment
from modbal_lib.train import train
from modbal_lib.whatif import METHOD_LAB_SMOOTH, lab_options, method_lab, trace_keys


@pytest.fixture(autouse=True, scope="module")
def close_figures():
    yield
    plt.close("all")


def lab(method, **knobs):
    figure, numbers = method_lab(method, "seesaw", **knobs)
    plt.close(figure)
    return numbers


def test_the_lab_takes_each_methods_own_options_and_defaults():
    assert lab_options("balgrad", {"gamma": 0.7}) == {"gamma": 0.7, "schedule_unit": "epoch"}
    assert lab_options("cggm", {"variant": "official"}) == {"rho": 1.3, "lam": 0.05, "variant": "official"}
    assert lab_options("goal", {"T": 0.5}) == {"T": 0.5, "adaptive_leveraging": True, "orthogonalization": True}
    assert lab_options("joint", {}) == {} and lab_options("ogm_ge", {"alpha": 0.5}) == {"alpha": 0.5}
    with pytest.raises(ValueError, match="goal has no option 'temperature'; its options: variant, adaptive_leveraging"):
        lab_options("goal", {"temperature": 0.5})
    with pytest.raises(ValueError, match="expected a boolean"):
        lab_options("goal", {"orthogonalization": "no"})
    assert trace_keys("cggm", ["a", "b"]) == ["B_a", "B_b"]
    assert trace_keys("balgrad", ["a", "b"]) == ["conflict", "cos_task_kl"]
    assert trace_keys("mslr", ["a", "b"]) == ["grad_norm_a", "grad_norm_b"]


def test_a_knob_reaches_the_method_and_the_table_is_the_protocols():
    numbers = lab("balgrad", gamma=1.5)
    assert numbers["options"] == {"gamma": 1.5, "schedule_unit": "epoch"} and numbers["epochs"] == 8
    experiment = Experiment("seesaw", dataset_options={"num_samples": 4000})
    model = train(experiment.features("train"), "balgrad", gamma=1.5, epochs=8, seed=0, device="cpu",
                  show_progress=False).model
    assert numbers["table"] == evaluate(model, experiment.test_source(), seed=0).as_dict()
    assert lab("balgrad", gamma=0.0)["table"] != numbers["table"]
    assert numbers["delta_gap_change"] == pytest.approx(
        numbers["table"]["missing"]["delta_gap"] - numbers["joint"]["missing"]["delta_gap"])
    assert 0 <= numbers["traces"]["conflict"] <= 1 and -1 <= numbers["traces"]["cos_task_kl"] <= 1


def test_joint_against_itself_changes_nothing():
    numbers = lab("joint")
    assert numbers["table"] == numbers["joint"] and numbers["delta_gap_change"] == 0
    assert set(numbers["traces"]) == {"grad_norm_easy", "grad_norm_hard"}
    assert numbers["step_time_ratio"] == 1.0
    iterations = 8 * -(-2800 // 128)
    for key in ("loss_uni_easy", "joint_loss_uni_hard", "grad_norm_easy"):
        assert numbers["curves"][key].shape == (iterations - METHOD_LAB_SMOOTH + 1,)
    assert (numbers["curves"]["loss_uni_easy"] == numbers["curves"]["joint_loss_uni_easy"]).all()


def test_goal_switches_show_in_the_conflict_traces():
    with_go, without_go = lab("goal"), lab("goal", orthogonalization=False)
    assert with_go["traces"]["conflict_before"] > 0.05 and with_go["traces"]["conflict_after"] == 0.0
    assert without_go["traces"]["conflict_after"] == without_go["traces"]["conflict_before"] > 0.05


def test_cggm_variant_and_balancing_terms():
    numbers = lab("cggm", variant="official", rho=2.0)
    assert numbers["options"] == {"rho": 2.0, "lam": 0.05, "variant": "official"}
    assert set(numbers["traces"]) == {"B_easy", "B_hard"} and all(b >= 0 for b in numbers["traces"].values())


def test_same_arguments_same_numbers_and_bad_dataset():
    from modbal_lib import whatif

    first = lab("goal", T=0.3)
    whatif._lab_run.cache_clear()
    second = lab("goal", T=0.3)
    assert first["table"] == second["table"] and first["traces"] == second["traces"]
    with pytest.raises(ValueError, match="dataset must be one of"):
        method_lab("goal", "food101")


def test_a_run_of_the_method_lab_on_emoji_takes_seconds():
    """The lab's Run (emoji, default epochs, joint already trained): at most 2 s on 2 idle cores. Measured here
    as the process's CPU time, which other jobs on a shared machine do not inflate, with a generous bound."""
    import time

    from modbal_lib import whatif

    plt.close(method_lab("joint", "emoji")[0])  # the panel's first draw: loads the data, trains joint
    for method in whatif.METHOD_PANEL_METHODS:
        began = time.process_time()
        figure, numbers = method_lab(method, "emoji")
        plt.close(figure)
        seconds = time.process_time() - began
        assert seconds < 4.0, f"{method}: a Run took {seconds:.1f} s of CPU time"
        assert numbers["epochs"] == 15
