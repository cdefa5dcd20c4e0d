# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [raw]
# # ASSIGNMENT CONFIG
# name: modbal-a1-projection
# export_cell: false
# tests:
#   ok_format: false

# %% [markdown]
# # Assignment 1. Gradient surgery: removing the conflicting component
#
# **You will learn:** what it means for two gradients to *conflict*, how PCGrad's projection
# removes the conflicting component, and why the result never undoes either objective.
#
# **Paper sections:** BalGrad (Kim et al. 2025) Eq. 6, inter-task projection; GOAL Eq. 10,
# gradient orthogonalization; both specialise PCGrad (Yu et al. 2020).
#
# Two gradients $g$ and $r$ *conflict* when $g \cdot r < 0$: a step along $g$ increases the loss
# whose gradient is $r$. The projection keeps $g$ when there is no conflict and otherwise removes
# its component along $r$:
#
# $$ g' = g - \frac{\min(g \cdot r,\ 0)}{\lVert r \rVert^2}\, r . $$
#
# Fill in every `...`, run the check cell after each question (`grader.check(...)`), and hand in
# the notebook. The checks you see are only some of the tests used for grading.

# %%
import math

import torch

import modbal_lib

# %% tags=["parameters"]
FAST = modbal_lib.fast_mode()

# %%
NUM_DRAWS = 200 if FAST else 2000  # random gradient pairs in the exploration at the end

# %% [raw]
# # BEGIN QUESTION
# name: q1_project
# points: 4

# %% [markdown]
# ## Question 1. The projection
#
# Write `project(g, ref)` following the formula above. It must work on
#
# - two 1-D tensors `[D]`, and
# - two 2-D tensors `[B, D]`, row by row (row `i` of `g` is projected against row `i` of `ref`),
#   without a Python loop over the rows.
#
# A zero `ref` must leave `g` unchanged (and produce no `nan`), and the inputs must not be modified.
# Hint: `(g * ref).sum(-1, keepdim=True)` gives one dot product per row and keeps the dimension,
# so it broadcasts against `ref`.

# %% [raw]
# # BEGIN SOLUTION

# %%
def project(g, ref):
    """g with its component along ref removed when g . ref < 0 (row by row for [B, D])."""
    # BEGIN SOLUTION
    dot = (g * ref).sum(-1, keepdim=True)
    squared_norm = (ref * ref).sum(-1, keepdim=True)
    safe_norm = torch.where(squared_norm > 0, squared_norm, torch.ones_like(squared_norm))
    return g - dot.clamp(max=0) / safe_norm * ref
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_q1_hand_case(project):
    import torch

    g, ref = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    # g . ref = -1 and |ref|^2 = 2, so g' = g + ref / 2
    assert torch.allclose(project(g, ref), torch.tensor([0.5, 0.5])), "g=[1,0], ref=[-1,1] should give [0.5, 0.5]"


test_q1_hand_case(project)


# %%
def test_q1_aligned_untouched(project):
    import torch

    g, ref = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 1.0])
    assert torch.equal(project(g, ref), g), "g . ref > 0: g must come back unchanged"


test_q1_aligned_untouched(project)


# %%
# HIDDEN
def test_q1_matches_library_on_random_cases(project):
    import torch

    from modbal_lib.grads import project_conflicting

    generator = torch.Generator().manual_seed(7)
    for shape in [(5,), (64,), (16, 8), (3, 100)]:
        for _ in range(20):
            g = torch.randn(shape, generator=generator, dtype=torch.float64)
            ref = torch.randn(shape, generator=generator, dtype=torch.float64)
            result = project(g.clone(), ref.clone())
            assert result.shape == g.shape, f"shape {tuple(result.shape)} instead of {tuple(g.shape)}"
            assert torch.allclose(result, project_conflicting(g, ref), atol=1e-10), f"wrong values for shape {shape}"


test_q1_matches_library_on_random_cases(project)


# %%
# HIDDEN
def test_q1_conflicting_rows_become_orthogonal_aligned_rows_untouched(project):
    import torch

    generator = torch.Generator().manual_seed(3)
    g = torch.randn(200, 10, generator=generator, dtype=torch.float64)
    ref = torch.randn(200, 10, generator=generator, dtype=torch.float64)
    result = project(g, ref)
    conflicting = (g * ref).sum(-1) < 0
    assert 0 < conflicting.sum() < 200
    assert torch.allclose((result * ref).sum(-1)[conflicting], torch.zeros(int(conflicting.sum()), dtype=torch.float64), atol=1e-10)
    assert torch.equal(result[~conflicting], g[~conflicting])


test_q1_conflicting_rows_become_orthogonal_aligned_rows_untouched(project)


# %%
# HIDDEN
def test_q1_zero_reference_and_inputs_untouched(project):
    import torch

    g, ref = torch.tensor([[1.0, -2.0], [0.5, 0.5]]), torch.tensor([[0.0, 0.0], [-1.0, 0.0]])
    g_before, ref_before = g.clone(), ref.clone()
    result = project(g, ref)
    assert torch.isfinite(result).all(), "a zero ref must not produce nan or inf"
    assert torch.equal(result[0], g_before[0]), "a zero ref must leave g unchanged"
    assert torch.equal(g, g_before) and torch.equal(ref, ref_before), "project must not modify its inputs"


test_q1_zero_reference_and_inputs_untouched(project)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q2_combine
# points: 3

# %% [markdown]
# ## Question 2. PCGrad for two objectives
#
# With two gradients $g_a$ and $g_b$ (two tasks in PCGrad, two modalities in GOAL), each one is
# projected against the *original* other one, and the update is the sum:
#
# $$ u = \mathrm{project}(g_a, g_b) + \mathrm{project}(g_b, g_a). $$
#
# Write `combine(g_a, g_b)` with your `project`. (GOAL's `orthogonalize` in
# `modbal_lib.methods.goal` does this for any number of modalities.) The hidden tests also check a
# property worth proving on paper: $u \cdot g_a \ge 0$ and $u \cdot g_b \ge 0$, so the update never
# increases either loss to first order, while the plain sum $g_a + g_b$ can.

# %% [raw]
# # BEGIN SOLUTION

# %%
def combine(g_a, g_b):
    """PCGrad's update for two gradients: each projected against the other's original, then summed."""
    return project(g_a, g_b) + project(g_b, g_a)  # SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_q2_hand_case(combine):
    import torch

    g_a, g_b = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    # project(g_a, g_b) = [0.5, 0.5]; project(g_b, g_a) = [0, 1]
    assert torch.allclose(combine(g_a, g_b), torch.tensor([0.5, 1.5]))


test_q2_hand_case(combine)


# %%
# HIDDEN
def test_q2_matches_goal_orthogonalize(combine):
    import torch

    from modbal_lib.methods.goal import orthogonalize

    generator = torch.Generator().manual_seed(11)
    for shape in [(6,), (32, 4)]:
        for _ in range(20):
            g_a = torch.randn(shape, generator=generator, dtype=torch.float64)
            g_b = torch.randn(shape, generator=generator, dtype=torch.float64)
            expected = sum(orthogonalize([g_a, g_b], eps=0.0))
            assert torch.allclose(combine(g_a, g_b), expected, atol=1e-10)


test_q2_matches_goal_orthogonalize(combine)


# %%
# HIDDEN
def test_q2_update_never_conflicts_and_aligned_pairs_add(combine):
    import torch

    generator = torch.Generator().manual_seed(5)
    g_a = torch.randn(300, 12, generator=generator, dtype=torch.float64)
    g_b = torch.randn(300, 12, generator=generator, dtype=torch.float64)
    update = combine(g_a, g_b)
    assert ((update * g_a).sum(-1) >= -1e-10).all() and ((update * g_b).sum(-1) >= -1e-10).all()
    aligned = (g_a * g_b).sum(-1) >= 0
    assert torch.allclose(update[aligned], (g_a + g_b)[aligned])


test_q2_update_never_conflicts_and_aligned_pairs_add(combine)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [raw]
# # BEGIN QUESTION
# name: q3_how_much_is_left
# points: 2

# %% [markdown]
# ## Question 3. How much of the gradient survives?
#
# $g$ and $r$ have the same length. Set `kept_at_120` to the fraction of $g$'s length left after
# `project(g, r)` when the angle between them is 120°, and `kept_at_60` to that fraction at 60°.
# Work it out on paper (draw the triangle), then check it with your `project` on two example
# vectors.

# %% [raw]
# # BEGIN SOLUTION

# %%
kept_at_120 = math.sin(math.radians(120))  # SOLUTION
kept_at_60 = 1.0  # SOLUTION

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_q3_fractions(kept_at_120, kept_at_60):
    assert 0 <= float(kept_at_120) <= 1 and 0 <= float(kept_at_60) <= 1, "a fraction of a length is between 0 and 1"


test_q3_fractions(kept_at_120, kept_at_60)


# %%
# HIDDEN
def test_q3_values(kept_at_120, kept_at_60):
    import math

    assert abs(float(kept_at_120) - math.sqrt(3) / 2) < 1e-3, "at 120 degrees the kept length is |g| sin(120 deg)"
    assert abs(float(kept_at_60) - 1.0) < 1e-6, "at 60 degrees there is no conflict"


test_q3_values(kept_at_120, kept_at_60)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## Explore (not graded): how strongly do random gradients conflict?
#
# Draw pairs of random gradients in $D$ dimensions. Half of them conflict, but how much of $g$ does
# the projection remove? Run the cell and explain the trend with the angle between random vectors in
# high dimension. Gradients met in training are not random: the chapters on BalGrad and GOAL
# measure real conflicts.

# %%
for dim in [2, 16, 256]:
    g, ref = torch.randn(NUM_DRAWS, dim), torch.randn(NUM_DRAWS, dim)
    conflicting = (g * ref).sum(-1) < 0
    kept = project(g, ref).norm(dim=-1) / g.norm(dim=-1)
    print(f"D={dim:4d}: {conflicting.float().mean():.0%} conflict; "
          f"mean kept length when conflicting {kept[conflicting].mean():.3f}")
