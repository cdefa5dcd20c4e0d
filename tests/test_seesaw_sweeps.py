"""Chapter 2's measurements on SeeSaw: probes, prediction parts, learning speed and knob sweeps."""

import numpy as np
import pytest
import torch

from modbal_lib.seesaw_sweeps import linear_probes, part_accuracies, part_labels, part_posteriors, signal_sweep


def test_linear_probes_measure_what_each_modality_can_tell():
    probes = linear_probes(num_samples=4000)
    assert list(probes) == ["easy", "hard", "easy+hard"]
    easy, hard, both = probes["easy"], probes["hard"], probes["easy+hard"]
    assert easy["group"] > 95 and easy["fine"] < 35       # easy: the group, nothing within it (chance 25)
    assert hard["fine"] > 70 and 35 < hard["group"] < 75  # hard: the class within the group, the group faintly
    assert hard["class"] > easy["class"] + 10             # hard alone is the better modality ...
    assert both["class"] > hard["class"] + 25             # ... and the two together are much better
    assert set(linear_probes([("hard",)], num_samples=400)) == {"hard"}


def test_part_posteriors_sum_the_class_posterior_over_each_part():
    # 2 groups x 3 classes: y = 3 g + c
    posterior = np.array([[0.1, 0.2, 0.1, 0.3, 0.0, 0.3], [0.3, 0.0, 0.0, 0.25, 0.25, 0.2]])
    parts = part_posteriors(posterior, groups=2, classes_per_group=3)
    assert parts["group"] == pytest.approx(np.array([[0.4, 0.6], [0.3, 0.7]]))
    assert parts["fine"] == pytest.approx(np.array([[0.4, 0.2, 0.4], [0.55, 0.25, 0.2]]))
    assert parts["class"] == pytest.approx(posterior)
    # the most likely class (0) lies in group 0, yet group 1 is the more likely group: the Bayes rule for the
    # group sums over its classes instead of taking the group of the argmax class
    assert posterior[1].argmax() == 0 and parts["group"][1].argmax() == 1
    with pytest.raises(ValueError, match=r"expected \[N, 6\]"):
        part_posteriors(posterior[:, :4], groups=2, classes_per_group=3)


def test_linear_probes_reject_bad_requests():
    with pytest.raises(ValueError, match="unknown modalities \\['loud'\\]"):
        linear_probes([("loud",)], num_samples=400)
    with pytest.raises(ValueError, match="target='class'"):
        linear_probes(target="regression")


def test_part_labels_and_accuracies_split_group_and_class_within_group():
    parts = part_labels(np.array([0, 5, 15]), 4)
    assert parts["group"].tolist() == [0, 1, 3] and parts["fine"].tolist() == [0, 1, 3]
    labels = torch.tensor([0, 5, 6, 15])
    predicted = torch.tensor([0, 1, 7, 11])  # right; right fine wrong group; right group wrong fine; right fine wrong group
    logits = torch.nn.functional.one_hot(predicted, 16).float()
    assert part_accuracies(logits, labels, 4) == {"group": 50.0, "fine": 75.0, "class": 25.0}




def test_signal_sweep_a_louder_easy_modality_is_learned_instead_of_hard():
    sweep = signal_sweep("easy", "coarse", [0.0, 8.0], [0, 1], epochs=3, device="cpu",
                         dataset_options={"num_samples": 3000})
    assert sweep.values == [0.0, 8.0] and len(sweep.runs) == 2
    assert set(sweep.runs[0]) == {"joint", "unimodal_easy", "unimodal_hard"}
    assert [run.seed for run in sweep.runs[1]["joint"]] == [0, 1]
    assert sweep.runs[0]["joint"][0].result.history == {}  # not recorded by default
    easy_alone, easy_spread = sweep.ceiling("easy")
    hard_alone, _ = sweep.ceiling("hard")
    without_easy, _ = sweep.missing("easy")
    full, _ = sweep.full()
    assert easy_alone.shape == easy_spread.shape == (2,) and (easy_spread >= 0).all()
    assert easy_alone[0] < 12 and easy_alone[1] > 20        # silent easy: chance (1/16); loud: it tells the group
    assert hard_alone[1] == pytest.approx(hard_alone[0])    # hard's samples do not depend on easy's knobs
    assert full[1] > full[0] + 15                           # both modalities together are better ...
    assert without_easy[0] > hard_alone[0] - 8              # ... when easy is silent the joint model uses hard fully;
    assert without_easy[1] < hard_alone[1] - 8              # when it is loud, hard's group cue goes unlearned
    joint = [run.table.missing["easy"] for run in sweep.runs[1]["joint"]]
    assert sweep.missing("easy")[0][1] == pytest.approx(np.mean(joint))


def test_signal_sweep_keeps_other_knobs_and_names_bad_ones():
    sweep = signal_sweep("hard", "coarse", [2.0], [0], methods=["unimodal_hard"], epochs=1, device="cpu",
                         dataset_options={"num_samples": 400, "knobs": {"hard": {"dim": 12}}})
    assert sweep.runs[0]["unimodal_hard"][0].result.model.branches["hard"][0].in_features == 12
    with pytest.raises(ValueError, match="unknown modality 'loud'"):
        signal_sweep("loud", "coarse", [1.0], [0])
    with pytest.raises(ValueError, match="unknown knob 'snr'"):
        signal_sweep("easy", "snr", [1.0], [0])
    with pytest.raises(ValueError, match="num_modalities"):
        signal_sweep("easy", "coarse", [1.0], [0], dataset_options={"num_modalities": 5})
