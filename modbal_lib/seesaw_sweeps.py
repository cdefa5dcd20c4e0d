r"""Controlled experiments on SeeSaw (chapter 2): what each modality can tell, how fast it is
learned, and how a jointly trained model splits the work as one knob of the data moves.

- ``linear_probes``: what each modality alone, and all together, can tell about the class, the group
  and the class within the group. Every one of the GC classes of SeeSaw is a Gaussian with the same
  covariance (:math:`\sigma_m^2 I` in each modality), so one linear discriminant analysis (LDA) fitted
  on the 16-class target is, up to estimation error, the Bayes rule *for that target*. A group (or a
  class within the group) is a mixture of C (or G) such Gaussians, for which an LDA fitted on the
  group labels would not be the Bayes rule; the probe therefore reads the group and the class within
  the group from the fitted class posterior, summed over the classes of each part (the Bayes rule
  for each part under the same fitted model). So the probe measures how *informative* a modality is,
  whatever a network would make of it.
- ``part_accuracies``: a multiclass prediction split into its two parts, the group
  :math:`\lfloor y / C \rfloor` and the class within the group :math:`y \bmod C`.
- how *fast* each modality is learned is ``dominance.halfway_iteration`` (the kit's one measure).
- ``signal_sweep``: ``experiments.compare`` repeated over the values of one knob of one modality
  (e.g. ``easy``'s ``coarse``), keeping per value and seed the unimodal ceilings and the joint
  model's Full and missing-modality scores.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from modbal_lib.data import load, seesaw
from modbal_lib.experiments import Experiment, Run, compare
from modbal_lib.stats import summarize

PROBE_TARGETS = ("group", "fine", "class")


def part_labels(labels: np.ndarray, classes_per_group: int) -> dict[str, np.ndarray]:
    """Class labels y as their parts: group ⌊y / C⌋, class within the group y mod C, and y itself."""
    labels = np.asarray(labels)
    return {"group": labels // classes_per_group, "fine": labels % classes_per_group, "class": labels}


def part_posteriors(class_posterior: np.ndarray, groups: int, classes_per_group: int) -> dict[str, np.ndarray]:
    """A class posterior [N, G C] (class y = g C + c) as the posteriors of its parts: the group [N, G]
    (summed over the classes within each group), the class within the group [N, C] (summed over the
    groups) and the class itself."""
    posterior = np.asarray(class_posterior, dtype=float)
    if posterior.ndim != 2 or posterior.shape[1] != groups * classes_per_group:
        raise ValueError(f"part_posteriors: expected [N, {groups * classes_per_group}] class probabilities, "
                         f"got shape {posterior.shape}")
    by_part = posterior.reshape(len(posterior), groups, classes_per_group)
    return {"group": by_part.sum(axis=2), "fine": by_part.sum(axis=1), "class": posterior}


def linear_probes(modality_sets: list[tuple[str, ...]] | None = None, **dataset_options) -> dict[str, dict[str, float]]:
    """Test accuracy (percent) of an LDA probe fitted on SeeSaw's training split (the class target).

    Returns ``{"easy": {"group": .., "fine": .., "class": ..}, ..., "easy+hard": {...}}``: one entry
    per modality set (default: each modality alone, then all of them, features concatenated), one
    accuracy per target of ``PROBE_TARGETS``: the argmax of the class posterior and of its parts'
    posteriors (``part_posteriors``), the Bayes rule for each target under the fitted Gaussian model.
    ``dataset_options`` go to ``modbal_lib.data.load``.
    """
    if dataset_options.get("target", "class") != "class":
        raise ValueError("linear_probes: needs the class target (target='class'), the probes predict group and class")
    train, test = load("seesaw", "train", **dataset_options), load("seesaw", "test", **dataset_options)
    modality_sets = modality_sets or [(m,) for m in train.modalities] + [train.modalities]
    groups, classes_per_group = train.options["groups"], train.options["classes_per_group"]
    test_parts = part_labels(test.labels, classes_per_group)
    probes = {}
    for modalities in modality_sets:
        unknown = set(modalities) - set(train.modalities)
        if unknown:
            raise ValueError(f"linear_probes: unknown modalities {sorted(unknown)}; the data have {train.modalities}")
        train_x = np.hstack([train.inputs[m] for m in modalities])
        test_x = np.hstack([test.inputs[m] for m in modalities])
        lda = LinearDiscriminantAnalysis().fit(train_x, train.labels)
        class_posterior = np.zeros((len(test_x), groups * classes_per_group))
        class_posterior[:, lda.classes_] = lda.predict_proba(test_x)  # a class absent from training: 0
        posteriors = part_posteriors(class_posterior, groups, classes_per_group)
        probes["+".join(modalities)] = {
            target: 100 * float(np.mean(posteriors[target].argmax(axis=1) == test_parts[target]))
            for target in PROBE_TARGETS
        }
    return probes


def part_accuracies(logits: torch.Tensor, labels: torch.Tensor, classes_per_group: int) -> dict[str, float]:
    """Accuracy (percent) of the argmax class, of its group and of its class within the group."""
    predicted = part_labels(logits.argmax(dim=1).numpy(), classes_per_group)
    true = part_labels(labels.numpy(), classes_per_group)
    return {part: 100 * float(np.mean(predicted[part] == true[part])) for part in PROBE_TARGETS}


@dataclass
class SignalSweep:
    """``compare``'s runs at each value of one knob: ``runs[i][method]`` is the list of Runs (one per
    seed) at ``values[i]``."""

    modality: str
    knob: str
    values: list[float]
    runs: list[dict[str, list[Run]]]

    def series(self, method: str, pick) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sample SD over seeds (``stats.summarize``) of ``pick(run)`` at each value, as two arrays."""
        summaries = [summarize(at_value[method], pick) for at_value in self.runs]
        return np.array([s.mean for s in summaries]), np.array([s.sd for s in summaries])

    def ceiling(self, modality: str) -> tuple[np.ndarray, np.ndarray]:
        """What ``modality`` reaches alone (the unimodal model's Full score) at each value."""
        return self.series(f"unimodal_{modality}", lambda run: run.table.full)

    def full(self, method: str = "joint") -> tuple[np.ndarray, np.ndarray]:
        return self.series(method, lambda run: run.table.full)

    def missing(self, modality: str, method: str = "joint") -> tuple[np.ndarray, np.ndarray]:
        """The score of ``method`` with ``modality`` missing at test time, at each value."""
        return self.series(method, lambda run: run.table.missing[modality])


def signal_sweep(
    modality: str,
    knob: str,
    values: list[float],
    seeds: list[int],
    *,
    methods: list[str] | None = None,
    dataset_options: dict | None = None,
    **train_options,
) -> SignalSweep:
    """Train and evaluate ``methods`` (default: joint and every unimodal model) for every seed at
    every value of SeeSaw knob ``knob`` of ``modality``; the other knobs as in ``dataset_options``.

    ``train_options`` go to ``train`` (via ``compare``); the per-iteration history is not recorded
    unless ``record=True`` is passed. The missing-ratio sweep is skipped (only Full, missing and noisy).
    """
    dataset_options = copy.deepcopy(dataset_options or {})
    modalities = tuple(seesaw.resolve_knobs(dataset_options.get("num_modalities", 2), None))
    if modality not in modalities:
        raise ValueError(f"signal_sweep: unknown modality {modality!r}; the modalities are {modalities}")
    if knob not in seesaw.DEFAULT_KNOBS[modality]:
        raise ValueError(f"signal_sweep: unknown knob {knob!r}; expected one of {sorted(seesaw.DEFAULT_KNOBS[modality])}")
    methods = methods or ["joint"] + [f"unimodal_{m}" for m in modalities]
    train_options.setdefault("record", False)
    runs = []
    for value in values:
        options = copy.deepcopy(dataset_options)
        options.setdefault("knobs", {}).setdefault(modality, {})[knob] = value
        runs.append(compare(Experiment("seesaw", dataset_options=options), methods, seeds, ratios=(), **train_options))
    return SignalSweep(modality, knob, list(values), runs)
