"""The lenient pair parser never lets "the last sentence win" over an earlier, different verdict (issue 16, defect
13): an output that states two different verdicts is unparsed, with that reason."""

import pytest

from unireward.tasks import get_task

FMT = get_task("image-gen/pair").answer


@pytest.mark.parametrize("text", [
    "Image 1 is better in terms of alignment. Image 2 is better in terms of composition.",
    "Image 2 is more faithful to the caption.\nImage 1 is better.",
    "I prefer Image 1 for its colours. Image 2 is superior in composition.",
    "Final Judgment: Image 1 is better. Image 2 is better.",
])
def test_two_different_verdicts_are_unparsed(text):
    from unireward.tasks.parsing import parse_pair

    v = parse_pair(text, FMT)
    assert v.winner is None and "contradicting verdicts" in v.reason, v


@pytest.mark.parametrize("text, winner", [
    ("Image 1 is better in alignment. Overall, Image 1 is better than Image 2.", 1),
    ("Alignment: Image 1 is better.\nCoherence: Image 2 is better.\nFinal Judgment: Image 2 is better.", 2),
    ("Image 2 shows a red circle. Image 2 is better.", 2),
    ("Image 1 is better in colour, but overall Image 2 is better.", 2),  # sums up over one aspect
    ("Image 1 is better in colour, but Image 2 follows the caption. Image 2 is better.", 2),
    ("At first I thought Image 1 was better, but no.\nFinal Judgment: Image 2 is better than Image 1.", 2),
])
def test_agreeing_or_final_verdicts_still_parse(text, winner):
    from unireward.tasks.parsing import parse_pair

    assert parse_pair(text, FMT).winner == winner
