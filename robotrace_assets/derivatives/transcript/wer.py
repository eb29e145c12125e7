"""Word error rate: how far a transcript is from what was said (tests and the benchmark)."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["normalize_words", "word_error_rate"]

# Letters, digits and in-word apostrophes make words; everything else separates them.
_NOT_WORD = re.compile(r"[^a-z0-9']+")


def normalize_words(text: str) -> list[str]:
    """Lower-cased words without punctuation: "Grasp the cup." -> ["grasp", "the", "cup"]."""
    return [w.strip("'") for w in _NOT_WORD.split(text.lower()) if w.strip("'")]


def _edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Fewest substitutions, deletions and insertions turning one word list into the other."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, 1):
            current.append(
                min(
                    previous[j] + 1,  # reference word deleted
                    current[j - 1] + 1,  # hypothesis word inserted
                    previous[j - 1] + (ref_word != hyp_word),  # substituted or matched
                )
            )
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Edit distance over normalized words divided by the reference's word count.

    0.0 is a perfect transcript; it can exceed 1.0 when the hypothesis adds words.
    """
    ref = normalize_words(reference)
    if not ref:
        raise ValueError("the reference has no words: word error rate is undefined")
    return _edit_distance(ref, normalize_words(hypothesis)) / len(ref)
