# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 8. What holds up
#
# Each of the three papers rests on claims: a proposition, a figure that motivates the method, an
# ablation, a table of results, a cost. Chapters 3–7 tested many of them one at a time. This chapter
# collects every testable claim of BalGrad [Kim et al., 2025], CGGM [Guo et al., 2024] and GOAL
# [Anonymous, 2025] in one **claims ledger**, runs the test of each on data you can run, and gives each
# claim a verdict by the kit's one rule. No other resource answers the question a researcher asks
# before building on these papers: which of their claims survive on someone else's data?
#
# **You will learn:** how a claim in a paper becomes a test with a number, an interval and a verdict;
# which claims of the three papers hold on the kit's embedded data, which do not, and which cannot be
# tested here (and why); how to read the pattern honestly, including where the kit's setting (frozen
# encoders, small datasets, short training) differs from the papers'; and how to add a claim of your own.
#
# **Paper sections:** all three papers — the claims are listed with their section, equation, table or
# figure in the ledger below. BalGrad Section 3.1 (Propositions 1–2), Section 4 and Tables 1–3, Figs. 4,
# 6–9; CGGM Section 3 (its gradient analysis), Section 4 and Figs. 2–5, Tables 2–8; GOAL Section 4,
# Tables 1–3 and Appendix A.3–A.16.

# %%
from pathlib import Path

from IPython.display import Markdown, display

import modbal_lib
from modbal_lib import book, claims, plots, stats
from modbal_lib.whatif import LedgerPanel

# %% tags=["parameters"]
FAST = modbal_lib.fast_mode()
LEDGER_FILE = None  # a claims.json written by `python -m modbal_lib claims`; default: results/claims.json in full mode
RUN_LEDGER = False  # True: run every claim's check now at full size (long); fast mode runs them at reduced size

# %% [markdown]
# The defaults that depend on `FAST` are filled in here, after papermill may have changed `FAST`.
# In full mode the chapter shows the **published ledger**, `results/claims.json`, which `make report`
# regenerates (5 seeds and the benchmark report's epochs; it takes a while, see the README). In fast
# mode it runs every check at reduced size, so the rule will mostly answer "too few seeds": the point of
# fast mode is that every check runs, not its verdicts.

# %%
LEDGER_FILE = Path(LEDGER_FILE) if LEDGER_FILE else book.LEDGER
published = not FAST and not RUN_LEDGER and LEDGER_FILE.is_file()
if published:
    rows, sizes = claims.read(LEDGER_FILE)
    source = f"read from `{LEDGER_FILE.name}` (written by `python -m modbal_lib claims`)"
else:
    # full size only when asked (RUN_LEDGER=True): it trains every claim's runs, longer than a chapter should take
    ledger = claims.Ledger(fast=not RUN_LEDGER)
    rows = claims.run_ledger(ledger)
    sizes = {"seeds": list(ledger.seeds), "epochs": ledger.epochs, "fast": ledger.fast}
    source = f"run now at {'reduced' if ledger.fast else 'full'} size"
    if not FAST and not RUN_LEDGER:
        source += f" (there is no published ledger `results/{LEDGER_FILE.name}` yet: `make report` writes it)"
display(Markdown(f"**The ledger below was {source}:** {len(rows)} claims; seeds {sizes['seeds']} "
                 f"(n = {len(sizes['seeds'])}); epochs {sizes['epochs']}."))

# %% [markdown]
# ## 1. From a claim to a verdict
#
# A row of the ledger holds: the paper and **where** it makes the claim; the claim in one line (our
# words, not the paper's); what the paper reports, quoted with its place; **how** the kit tests it;
# what the kit **measured**, with its interval; and the **verdict**. Most claims compare two training
# set-ups ("BalGrad narrows ΔGap compared with joint training"), so the kit trains both on the same
# seeds and takes the paired difference seed by seed, as everywhere in the book (chapter 0). The ledger
# then turns the kit's three answers into four words:

# %%
display(Markdown("\n".join([
    f"- **{claims.HOLDS}**: the paired difference's interval excludes 0 on the side the paper claims "
    f"(the kit's rule says \"{stats.DIFFERS}\", in the claimed direction);",
    f"- **{claims.DOES_NOT_HOLD}**: the interval contains 0 (\"{stats.WITHIN_NOISE}\": no effect this run "
    "can tell from seed noise) or lies on the other side;",
    f"- **{claims.PARTLY}**: a claim made of parts (several ratios, fusions, baselines) where some parts "
    "hold and others do not; the row says which;",
    f"- **{claims.NOT_TESTABLE}**: the kit lacks what the test needs — the paper's dataset, its encoders, a "
    f"GPU — or, in fast mode, the seeds (\"{stats.TOO_FEW}\": fewer than {stats.MIN_SEEDS}); the row says why.",
    "", f"_{stats.DIFFERENCE_NOTE}._"])))

# %% [markdown]
# "Does not hold" is a statement about this kit's setting, not a refutation of the paper: it says the
# effect the paper reports did not appear here, with this many seeds. Section 4 discusses what the
# setting changes.
#
# ## 2. The ledger
#
# Grouped by paper. The last column links to the chapter that explains and shows the test.

# %%
display(Markdown(claims.ledger_markdown(rows)))

# %% [markdown]
# ## 3. Filter it
#
# Pick a paper and a verdict. In JupyterLab the table below follows the two menus. The menus need a
# running kernel, so the website shows a note in their place; section 2 above has the whole ledger.

# %%
panel = LedgerPanel(rows)
panel

# %% [markdown]
# ## 4. The pattern, and what it means
#
# Count the verdicts per paper first.

# %%
by_paper = {paper: claims.verdict_counts([r for r in rows if r.claim.paper == paper]) for paper in claims.PAPERS}
display(plots.verdict_figure(by_paper))

# %% [markdown]
# **Figure 8.1.** How many claims of each paper hold, do not hold, hold in part, or cannot be tested
# here. Look at the share of each paper's bar that is testable at all before comparing the papers:
# a paper whose claims are mostly about its own datasets leaves little for the kit to test.

# %%
def claim_list(verdict: str) -> str:
    chosen = [row for row in rows if row.finding.verdict == verdict]
    return "; ".join(f"`{row.claim.key}`" for row in chosen) or "none"


counts = claims.verdict_counts(rows)
display(Markdown("\n".join([
    f"In this ledger, **{counts[claims.HOLDS]}** of {len(rows)} claims hold, "
    f"**{counts[claims.DOES_NOT_HOLD]}** do not, **{counts[claims.PARTLY]}** hold in part and "
    f"**{counts[claims.NOT_TESTABLE]}** cannot be tested here.", "",
    f"- Holding: {claim_list(claims.HOLDS)}.",
    f"- Not holding: {claim_list(claims.DOES_NOT_HOLD)}.",
    f"- In part: {claim_list(claims.PARTLY)}."])))

# %% [markdown]
# How to read this honestly:
#
# - **Our setting is not the papers'.** The papers train (or fine-tune) large encoders on tens of
#   thousands of examples for tens of epochs; the kit trains small heads on **frozen** features of a
#   few thousand examples. Methods that act on the encoders' gradients (CGGM Section 3.3.1 scales the
#   gradient of the encoder $\phi_i$; GOAL's Eq. 5 is a gradient with respect to $\theta^{(m)}$) act here
#   on the embedding layer $h_m$ only. An effect that needs the encoder to change cannot appear.
# - **The imbalance may be milder here.** A method that slows the dominant modality has less to correct
#   when both modalities are learned quickly. Compare the missing-modality rows of chapter 1 (emoji) with
#   BalGrad's Table 1 row for Food-101, where the image-missing score lies far below the text-missing one,
#   before reading a "does not hold" as a verdict on the method.
# - **Seeds decide what "holds" means.** A difference the paper reports from one run may be inside our
#   seed noise; a claim that "does not hold" with five seeds may hold with twenty. Exercise 2 shows how
#   a verdict moves with n.
# - **Accuracy and balance are different claims.** A method can narrow ΔGap (balance) while losing Full
#   accuracy, or the reverse; the ledger keeps them as separate rows.
# - **The motivating claims and the method claims are different kinds.** A proposition is checked on
#   a batch (does the first-order formula predict the loss change?); a table claim needs training runs.
#   A proposition can hold while the method built on it does not help here, and the other way round.

# %% [markdown]
# ## Summary

# %%
testable = [row for row in rows if row.finding.verdict != claims.NOT_TESTABLE]
display(Markdown("\n".join([
    f"- The ledger holds {len(rows)} claims of the three papers; each has a place in its paper, a test, a "
    "number with its interval and one of four verdicts, all generated by `modbal_lib.claims`.",
    f"- {len(testable)} of them were testable in this run; of those, {counts[claims.HOLDS]} hold, "
    f"{counts[claims.DOES_NOT_HOLD]} do not and {counts[claims.PARTLY]} hold in part.",
    "- A verdict is the kit's one rule (the paired difference seed by seed and its 95 % interval) read in "
    "the direction the paper claims.",
    "- \"Does not hold\" describes this kit's setting — frozen encoders, small data, this many seeds — not "
    "the papers' own experiments.",
    "- `make report` regenerates the published ledger, `results/CLAIMS.md`; chapter 8 reads it in full mode."])))

# %% [markdown]
# ## Exercises
#
# 1. **A claim of your own.** OGM-GE's paper [Peng et al., 2022] says that slowing the dominant
#    modality's branch helps the other one. Write it as a `claims.Claim` whose check is
#    `claims.compared("emoji", claims.MISSING_GAP, -1, ..., ("ogm_ge", {}), ("joint", {}))` and run it.
#    <details><summary>Hint</summary>
#
#    A `Claim` needs a key, the paper (use `"BalGrad"`, which compares against OGM-GE in its Table 1),
#    where, the claim, the paper's number (or `""`), how, the chapter and the check;
#    `claim.run(claims.Ledger(fast=FAST))` gives its `Finding`.
#
#    </details>
# 2. **A verdict moves with n.** Run the claim `balgrad-table1-missing` with seeds 0–2 and then 0–4
#    (`claims.Ledger(fast=True, seeds=...)`, one epoch each). How do the interval and the verdict change?
#    <details><summary>Hint</summary>
#
#    The interval's half-width is $t_{n-1}\, s/\sqrt{n}$, with $t_{n-1}$ the t quantile of the 95 % interval:
#    both it and $1/\sqrt{n}$ fall as n grows, so a real effect of fixed size crosses from "within seed noise"
#    to "differs" once n is large enough.
#
#    </details>
# 3. **What would make a claim testable?** List the claims that are not testable here and, for each,
#    what the kit would need (a dataset, encoders, a GPU, more seeds).
#    <details><summary>Hint</summary>
#
#    Every not-testable row carries its reason in `row.finding.detail`.
#
#    </details>

# %% [markdown]
# ## Solutions

# %% [markdown]
# ### Solution to exercise 1
#
# The claim is a record and a check; the check trains OGM-GE and joint training on the same seeds
# and reads the paired difference of missing ΔGap. Compare the verdict with BalGrad's Table 1 row for
# OGM-GE, quoted in chapter 7.

# %% tags=["solution", "hide-input"]
ogm_claim = claims.Claim(
    "ogm-ge-missing", "BalGrad", "Table 1, Missing ΔGap (OGM-GE column)",
    "OGM-GE narrows missing ΔGap compared with joint training.", "Food-101 missing ΔGap: baseline 50.53, "
    "OGM-GE 47.59 (Table 1)", "paired difference of missing ΔGap, OGM-GE − joint, emoji", "07_head_to_head.ipynb",
    claims.compared("emoji", claims.MISSING_GAP, -1, "missing ΔGap, OGM-GE − joint", ("ogm_ge", {}), ("joint", {})))
finding = ogm_claim.run(claims.Ledger(fast=True, seeds=(0, 1, 2)))
display(Markdown(f"{finding.measured} → **{finding.verdict}** {finding.detail}"))

# %% [markdown]
# ### Solution to exercise 2
#
# The same claim with more seeds: watch the interval narrow. Whether the verdict changes depends on
# whether the effect is larger than what the interval can resolve at each n.

# %% tags=["solution", "hide-input"]
claim = next(c for c in claims.CLAIMS if c.key == "balgrad-table1-missing")
for seeds in ((0, 1, 2), (0, 1, 2, 3, 4)):
    finding = claim.run(claims.Ledger(fast=True, seeds=seeds))
    print(f"n = {len(seeds)}: {finding.measured} -> {finding.verdict} {finding.detail}")

# %% [markdown]
# ### Solution to exercise 3
#
# The reasons are part of the ledger; grouping them shows what would unlock the most claims.

# %% tags=["solution", "hide-input"]
reasons = {}
for row in rows:
    if row.finding.verdict == claims.NOT_TESTABLE:
        reasons.setdefault(row.finding.detail, []).append(f"`{row.claim.key}`")
display(Markdown("\n".join(f"- **{reason}**: {'; '.join(found)}" for reason, found in reasons.items())
                 or "Every claim was testable in this run."))
