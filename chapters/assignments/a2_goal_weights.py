# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [raw]
# # ASSIGNMENT CONFIG
# name: modbal-a2-goal-weights
# export_cell: false
# tests:
#   ok_format: false

# %% [markdown]
# # Assignment 2. GOAL's adaptive leveraging: which modality gets the weight?
#
# **You will learn:** how GOAL turns each modality's unimodal prediction into a confidence and a
# weight, what the temperature does, and that the weights reward confidence, not correctness.
#
# **Paper sections:** GOAL (ICLR 2026 submission) Eqs. 6–7, adaptive leveraging (AL).
#
# For sample $i$ and modality $m$, with unimodal logits $z_i^{(m)}$ over $K$ classes and
# $p = \mathrm{softmax}(z_i^{(m)})$:
#
# $$ u_i^{(m)} = \frac{-\sum_k p_k \log p_k}{\log K}, \qquad c_i^{(m)} = 1 - u_i^{(m)} \qquad \text{(Eq. 6)} $$
#
# $$ w^{(m)} = \frac{1}{N'} \sum_{i=1}^{N'} \frac{\exp(c_i^{(m)} / T)}{\sum_{m'} \exp(c_i^{(m')} / T)} \qquad \text{(Eq. 7)} $$
#
# $u$ is the normalised entropy (0 for a one-hot prediction, 1 for the uniform one), $c$ the
# confidence, $T$ the temperature. GOAL scales modality $m$'s fusion gradient by $w^{(m)}$.
#
# Fill in every `...`, run the check cell after each question (`grader.check(...)`), and hand in
# the notebook. The checks you see are only some of the tests used for grading.

# %%
import math

import torch

import modbal_lib
from modbal_lib.features import load_features
from modbal_lib.train import train

# %% tags=["parameters"]
FAST = modbal_lib.fast_mode()

# %%
EPOCHS = 3 if FAST else 8  # GOAL training in the exploration at the end

# %% [raw]
# # BEGIN QUESTION
# name: q1_entropy
# points: 2

# %% [markdown]
# ## Question 1. Normalised entropy
#
# Write `normalized_entropy(logits)`: $u$ of Eq. 6 over the last dimension of `logits` (one value
# per row; `logits` may be `[K]`, `[N, K]` or `[N, M, K]`). Use `torch.log_softmax` rather than
# `log(softmax(...))`, which gives `-inf` for very confident rows.

# %% [raw]
# # BEGIN SOLUTION

# %%
def normalized_entropy(logits):
    """u = H(softmax(logits)) / log K over the last dimension (GOAL Eq. 6)."""
    # BEGIN SOLUTION
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1) / math.log(logits.shape[-1])
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_q1_extremes(normalized_entropy):
    import torch

    u = normalized_entropy(torch.tensor([[0.0, 0.0, 0.0, 0.0], [50.0, 0.0, 0.0, 0.0]]))
    assert u.shape == (2,), f"one value per row: expected shape (2,), got {tuple(u.shape)}"
    assert abs(float(u[0]) - 1) < 1e-6, "the uniform prediction has normalised entropy 1"
    assert float(u[1]) < 1e-6, "a one-hot prediction has normalised entropy 0"


test_q1_extremes(normalized_entropy)


# %%
# HIDDEN
def test_q1_matches_library(normalized_entropy):
    import torch

    from modbal_lib.methods import goal

    generator = torch.Generator().manual_seed(0)
    for shape in [(7,), (10, 3), (6, 2, 5)]:
        logits = 3 * torch.randn(shape, generator=generator, dtype=torch.float64)
        assert torch.allclose(normalized_entropy(logits), goal.normalized_entropy(logits), atol=1e-10)
    assert torch.isfinite(normalized_entropy(torch.tensor([[1000.0, 0.0]]))).all(), "no nan for very confident rows"


test_q1_matches_library(normalized_entropy)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2_weights
# points: 3

# %% [markdown]
# ## Question 2. The adaptive weights
#
# Write `adaptive_weights(logits, T=1.0)`: `logits` holds the unimodal logits, shape
# `[N', M, K]` (samples, modalities, classes); return the `M` weights $w^{(m)}$ of Eq. 7 as a tensor
# of shape `[M]`. Note where the softmax runs: over **modalities**, sample by sample, before the
# average over samples.

# %% [raw]
# # BEGIN SOLUTION

# %%
def adaptive_weights(logits, T=1.0):
    """GOAL's w^(m), one per modality, from unimodal logits [N', M, K] (Eqs. 6-7)."""
    # BEGIN SOLUTION
    confidence = 1 - normalized_entropy(logits)
    return torch.softmax(confidence / T, dim=1).mean(0)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_q2_shape_and_sum(adaptive_weights):
    import torch

    logits = torch.randn(8, 3, 4, generator=torch.Generator().manual_seed(1))
    weights = adaptive_weights(logits)
    assert weights.shape == (3,), f"one weight per modality: expected shape (3,), got {tuple(weights.shape)}"
    assert abs(float(weights.sum()) - 1) < 1e-5, "the weights sum to 1"


test_q2_shape_and_sum(adaptive_weights)


# %%
# HIDDEN
def test_q2_matches_library(adaptive_weights):
    import torch

    from modbal_lib.methods import goal

    generator = torch.Generator().manual_seed(2)
    for shape in [(1, 2, 2), (16, 2, 10), (5, 4, 3)]:
        logits = 4 * torch.randn(shape, generator=generator, dtype=torch.float64)
        for T in [0.2, 1.0, 5.0]:
            assert torch.allclose(adaptive_weights(logits, T), goal.adaptive_weights(logits, T), atol=1e-10), (shape, T)


test_q2_matches_library(adaptive_weights)


# %%
# HIDDEN
def test_q2_temperature_limits(adaptive_weights):
    import torch

    confident_a = torch.tensor([[[9.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])  # A one-hot, B uniform
    assert torch.allclose(adaptive_weights(confident_a, T=1000.0), torch.tensor([0.5, 0.5]), atol=1e-3)
    assert float(adaptive_weights(confident_a, T=0.01)[0]) > 0.999


test_q2_temperature_limits(adaptive_weights)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q3_favour_b
# points: 3

# %% [markdown]
# ## Question 3. Make modality B win
#
# Modality A is index 0 and modality B index 1 of the middle dimension; there are 3 classes and the
# true labels of four samples are `LABELS` below.
#
# 1. Set `logits_b_wins`, a float tensor `[4, 2, 3]`, so that B gets the larger weight at $T = 1$.
# 2. Set `logits_b_wins_while_wrong`, also `[4, 2, 3]`, so that B **still** gets the larger
#    weight although B's prediction (argmax) is wrong for every sample and A's is right for every
#    sample.
#
# Then explain in a sentence (for yourself) what part (2) says about using confidence as a
# stand-in for how well a modality has learned.

# %%
LABELS = torch.tensor([0, 1, 2, 0])

# %% [raw]
# # BEGIN SOLUTION

# %%
# BEGIN SOLUTION
right = torch.nn.functional.one_hot(LABELS, 3).float()
wrong = torch.nn.functional.one_hot((LABELS + 1) % 3, 3).float()
logits_b_wins = torch.stack([0.1 * right, 5 * right], dim=1)
logits_b_wins_while_wrong = torch.stack([0.5 * right, 8 * wrong], dim=1)
# END SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_q3_shapes(logits_b_wins, logits_b_wins_while_wrong):
    import torch

    for name, value in [("logits_b_wins", logits_b_wins), ("logits_b_wins_while_wrong", logits_b_wins_while_wrong)]:
        assert isinstance(value, torch.Tensor) and value.shape == (4, 2, 3), f"{name} must be a tensor of shape [4, 2, 3]"


test_q3_shapes(logits_b_wins, logits_b_wins_while_wrong)


# %%
# HIDDEN
def test_q3_b_gets_the_larger_weight(logits_b_wins):
    from modbal_lib.methods.goal import adaptive_weights

    weights = adaptive_weights(logits_b_wins.float(), T=1.0)
    assert weights[1] > weights[0], f"weights (A, B) = {weights.tolist()}: B should get more"


test_q3_b_gets_the_larger_weight(logits_b_wins)


# %%
# HIDDEN
def test_q3_b_wins_while_wrong(logits_b_wins_while_wrong):
    import torch

    from modbal_lib.methods.goal import adaptive_weights

    labels = torch.tensor([0, 1, 2, 0])
    logits = logits_b_wins_while_wrong.float()
    assert (logits[:, 0].argmax(-1) == labels).all(), "A must predict every label correctly"
    assert (logits[:, 1].argmax(-1) != labels).all(), "B must predict every label wrongly"
    weights = adaptive_weights(logits, T=1.0)
    assert weights[1] > weights[0], f"weights (A, B) = {weights.tolist()}: B should get more"


test_q3_b_wins_while_wrong(logits_b_wins_while_wrong)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q4_how_far_apart
# points: 2

# %% [markdown]
# ## Question 4. How far apart can the weights be?
#
# With two modalities, the most lopsided sample has one modality certain ($c = 1$) and the other
# clueless ($c = 0$). Work out on paper, then check with your `adaptive_weights`:
#
# - `max_weight_at_T1`: the largest weight one of two modalities can get at GOAL's default $T = 1$;
# - `T_for_max_weight_090`: the temperature at which that largest weight is 0.9.

# %% [raw]
# # BEGIN SOLUTION

# %%
max_weight_at_T1 = 1 / (1 + math.exp(-1))  # SOLUTION
T_for_max_weight_090 = 1 / math.log(9)  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_q4_ranges(max_weight_at_T1, T_for_max_weight_090):
    assert 0.5 <= float(max_weight_at_T1) <= 1, "the larger of two weights summing to 1 is between 0.5 and 1"
    assert float(T_for_max_weight_090) > 0, "temperatures are positive"


test_q4_ranges(max_weight_at_T1, T_for_max_weight_090)


# %%
# HIDDEN
def test_q4_values(max_weight_at_T1, T_for_max_weight_090):
    import torch

    from modbal_lib.methods.goal import adaptive_weights

    certain_vs_clueless = torch.tensor([[[60.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], dtype=torch.float64)
    assert abs(float(max_weight_at_T1) - float(adaptive_weights(certain_vs_clueless, 1.0)[0])) < 1e-3
    assert abs(float(adaptive_weights(certain_vs_clueless, float(T_for_max_weight_090))[0]) - 0.9) < 1e-3


test_q4_values(max_weight_at_T1, T_for_max_weight_090)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## Explore (not graded): the weights during training
#
# GOAL records its weights at every step (`w_<modality>` in the training history), and the trainer
# records each unimodal head's accuracy (`acc_uni_<modality>`). Train GOAL on the SeeSaw world of
# chapter 2, where `easy` tells only the coarse group (loudly) and `hard` the fine class, and compare
# early and late in training. Which modality does AL favour, and is it the more accurate one?
# Connect the answer to Question 3.

# %%
features = load_features("seesaw", "train", num_samples=1000)
result = train(features, "goal", epochs=EPOCHS, show_progress=False)
steps_per_epoch = len(result.history["w_easy"]) // EPOCHS
for name, window in [("first epoch", slice(0, steps_per_epoch)), ("last epoch", slice(-steps_per_epoch, None))]:
    means = {key: torch.tensor(result.history[key][window]).mean().item()
             for key in ["w_easy", "w_hard", "acc_uni_easy", "acc_uni_hard"]}
    print(f"{name}: " + ", ".join(f"{key} = {value:.3f}" for key, value in means.items()))
