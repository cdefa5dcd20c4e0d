"""The labs' panels: moving a control and pressing Run re-runs the lab with the new values and redraws."""

import matplotlib.pyplot as plt
import pytest

from modbal_lib.whatif import method_panel, seesaw_panel, taylor_panel


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
    assert "predicted ΔL" in capsys.readouterr().out


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
    assert set(knobs) >= {"method", "dataset", "gamma", "rho", "temperature", "orthogonalize", "epochs", "seed"}
    knobs["orthogonalize"].value, knobs["temperature"].value, knobs["epochs"].value = False, 0.5, 2
    panel.manual_button.click()
    assert panel.result["options"] == {"T": 0.5, "adaptive_leveraging": True, "orthogonalize": False}
    assert panel.result["epochs"] == 2 and panel.result["dataset"] == "seesaw"
    knobs["method"].value, knobs["cggm_variant"].value = "cggm", "official"
    panel.manual_button.click()
    assert panel.result["method"] == "cggm" and panel.result["options"]["variant"] == "official"
