"""The labs' panels: moving a control and pressing Run re-runs the lab with the new values and redraws."""

import sys

import matplotlib.pyplot as plt
import pytest
from ipywidgets import IntSlider

from modbal_lib import claims
from modbal_lib.whatif import LedgerPanel, Panel, method_panel, seesaw_panel, taylor_panel


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_taylor_panel_redraws_on_every_change(capsys):
    panel = taylor_panel()  # draws once with the defaults
    assert panel.result["step_size"] == pytest.approx(0.01) and panel.result["fusion"] == "concat"
    assert not hasattr(panel, "manual_button") or panel.manual_button is None
    panel.controls["fusion"].value = "sum"
    assert panel.result["fusion"] == "sum" and panel.result["cross_relative"] > 1e-3  # sum fusion has a cross term
    panel.controls["step_size"].value = 1.0
    assert panel.result["step_size"] == pytest.approx(1.0) and panel.result["fusion"] == "sum"
    figure, text = panel.out.outputs  # replaced on each run, not appended to
    assert figure["output_type"] == "display_data" and "Figure" in figure["data"]["text/plain"]
    assert text["output_type"] == "stream" and text["text"].startswith("λ = 1, sum: predicted ΔL")
    assert capsys.readouterr().out == ""  # nothing printed where an Output widget would capture it


def test_panel_sets_its_output_and_keeps_what_the_lab_printed(capsys):
    """The panel's output area is set as widget state (no captured print or display, which a headless
    client answers on the shell channel: the papermill hang); what the lab prints (stdout or stderr) is kept there."""
    def lab(k):
        print(f"training with k={k}")
        print("a lab warning", file=sys.stderr)  # what warnings.warn writes in a kernel
        figure = plt.figure()
        return figure, {"k": k, "square": k * k}

    panel = Panel(lab, lambda n: f"k = {n['k']}: square {n['square']}", {"k": IntSlider(value=3)}, run_button=False)
    figure, text = panel.out.outputs
    assert figure["output_type"] == "display_data" and text["name"] == "stdout"
    assert text["text"].startswith("training with k=3\n") and "a lab warning\n" in text["text"]
    assert text["text"].endswith("k = 3: square 9\n") and panel.result == {"k": 3, "square": 9}
    panel.controls["k"].value = 4
    assert len(panel.out.outputs) == 2 and panel.out.outputs[1]["text"].endswith("k = 4: square 16\n")
    assert capsys.readouterr() == ("", "") and plt.get_fignums() == []  # the figures are closed


def test_seesaw_panel_runs_on_run_only():
    panel = seesaw_panel()
    assert panel.result is None and panel.manual_button.description == "Run"
    knobs = panel.controls
    knobs["easy_coarse"].value, knobs["epochs"].value = 0.0, 1
    assert panel.result is None  # moving a slider alone trains nothing
    panel.manual_button.click()
    assert panel.result["knobs"]["easy"]["coarse"] == 0.0 and len(panel.result["curves"]["loss_uni_easy"]) > 0


def test_method_panel_passes_the_chosen_methods_knobs():
    panel = method_panel("goal", "seesaw")
    knobs = panel.controls
    assert set(knobs) >= {"method", "dataset", "balgrad_gamma", "cggm_rho", "goal_T", "goal_orthogonalization", "epochs",
                          "seed"}
    assert knobs["cggm_rho"].value == 1.3 and knobs["goal_T"].value == 1.0  # the methods' own defaults
    assert knobs["method"].options == ("joint_unimodal_heads", "ogm_ge", "mslr", "pcgrad", "balgrad", "cggm", "goal")
    knobs["goal_orthogonalization"].value, knobs["goal_T"].value, knobs["epochs"].value = False, 0.5, 2
    panel.manual_button.click()
    assert panel.result["options"] == {"T": 0.5, "adaptive_leveraging": True, "orthogonalization": False}
    assert panel.result["epochs"] == 2 and panel.result["dataset"] == "seesaw"
    knobs["method"].value, knobs["cggm_variant"].value = "cggm", "official"  # cggm_<option>
    panel.manual_button.click()
    assert panel.result["method"] == "cggm" and panel.result["options"]["variant"] == "official"


def test_ledger_panel_filters_by_paper_and_verdict():
    def row(key, paper, verdict):
        return claims.Row(claims.Claim(key, paper, "Table 1", f"claim {key}", "", "how", "04_balgrad.ipynb",
                                       not_testable="x"), claims.Finding(f"measured {key}", verdict))

    rows = [row("a", "BalGrad", claims.HOLDS), row("b", "GOAL", claims.HOLDS), row("c", "GOAL", claims.PARTLY)]
    panel = LedgerPanel(rows)
    assert [c.options for c in panel.children[:2]] == [
        ("all", "BalGrad", "GOAL"), ("all", claims.HOLDS, claims.PARTLY)]
    assert [r.claim.key for r in panel.result] == ["a", "b", "c"]
    panel.children[0].value = "GOAL"
    assert [r.claim.key for r in panel.result] == ["b", "c"]
    panel.children[1].value = claims.PARTLY
    assert [r.claim.key for r in panel.result] == ["c"]
    shown = panel.out.outputs[0]["data"]["text/markdown"]
    assert "claim c" in shown and "claim b" not in shown and shown.startswith("1 claims: 0 holds")
    panel.children[0].value = "BalGrad"
    assert panel.result == [] and panel.out.outputs[0]["data"]["text/markdown"].startswith("No claim")
