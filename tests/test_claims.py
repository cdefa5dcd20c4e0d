from modbal_lib.claims import paper_vs_measured


def test_box_has_claim_paper_and_measurement():
    box = paper_vs_measured("Projection lowers conflicts.", "0.66 -> 0.36", "0.50 -> 0.20", "agrees")
    assert box.splitlines()[0] == "> **Claim.** Projection lowers conflicts."
    assert "**The paper reports:** 0.66 -> 0.36" in box and "**We measured:** 0.50 -> 0.20" in box
    assert box.endswith("> **Reading:** agrees")
