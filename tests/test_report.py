import pytest

from modbal_lib.report import format_mean_std, mean_std, paper_vs_measured


def test_mean_std_and_format():
    assert mean_std([1.0, 3.0]) == (2.0, 1.0)
    assert format_mean_std([60.0, 62.0, 64.0]) == "62.0 ± 1.6 (3 seeds)"
    assert format_mean_std([5.0], digits=2) == "5.00 ± 0.00 (1 seed)"
    with pytest.raises(ValueError, match="no values"):
        mean_std([])


def test_box_has_claim_paper_and_measurement():
    box = paper_vs_measured("Projection lowers conflicts.", "0.66 -> 0.36", "0.50 -> 0.20", "agrees")
    assert box.splitlines()[0] == "> **Claim.** Projection lowers conflicts."
    assert "**The paper reports:** 0.66 -> 0.36" in box and "**We measured:** 0.50 -> 0.20" in box
    assert box.endswith("> **Reading:** agrees")
