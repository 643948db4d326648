"""Every claim states the paper's scale, and a claim about a regime the run's grid does not
reach reads "not reached at this scale" (issue 15, item 3)."""

import pytest

from randadv.experiments.registry import EXPERIMENTS
from randadv.framework import Claim


def test_a_claim_without_a_scale_is_refused():
    with pytest.raises(ValueError, match="scale"):
        Claim("a statement", "measured", True)


def test_verdict_below_the_papers_scale():
    c = Claim("s", "m", False, scale="d up to 1e4", reached=False)
    assert c.verdict == "not reached at this scale"
    assert Claim("s", "m", False, scale="d up to 1e4").verdict == "does not hold"


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_paper_profile_reaches_itself_and_smoke_does_not(name):
    exp = EXPERIMENTS[name]
    paper = exp.params("paper")
    assert exp.reaches_paper(paper, *paper)
    smoke = exp.params("smoke")
    numeric = [k for k, v in paper.items() if isinstance(v, (int, float, list))
               and not isinstance(v, bool)]
    # the smoke profile is smaller than the paper's on at least one numeric axis
    assert not all(exp.reaches_paper(smoke, k) for k in numeric), name


def test_two_layer_quick_grid_is_below_the_papers():
    exp = EXPERIMENTS["two-layer-single-step"]
    quick = exp.params("quick")
    assert not exp.reaches_paper(quick, "d", "k")
    assert exp.reaches_paper(exp.params("paper"), "d", "k")
