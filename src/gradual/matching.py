"""The answer matcher: the single definition of "the model answered correctly"."""

import re
import unicodedata
from collections.abc import Iterable

from gradual.config import DEFAULTS

MATCH_MODES = ("substring", "exact", "tokens")
_WHITESPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
# An answer is one line: both backends stop generating at its end, a training target ends with it, the
# prompt format puts one after every exemplar's answer, and `answer_line` cuts there.
ANSWER_END = "\n"


def normalize(text: str) -> str:
    """NFKC, case-folded, accents removed, whitespace collapsed: 'Zürich ' and 'zurich' compare equal."""
    text = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def answer_line(generated: str) -> str:
    """The answer is the first line of the continuation; anything after it is the model rambling on."""
    return generated.split(ANSWER_END, 1)[0].strip()


def is_correct(generated: str, golds: Iterable[str], mode: str = DEFAULTS["matching"]["mode"]) -> bool:
    """True when any gold answer matches the answer line of `generated` under `mode`.

    substring: the normalised gold answer occurs inside the normalised answer line (the paper's rule).
    exact: the two are equal after normalisation.
    tokens: every word of the gold answer occurs among the words of the answer line.
    """
    answer = normalize(answer_line(generated))
    for gold in golds:
        target = normalize(gold)
        if not target:
            continue
        if mode == "substring":
            hit = target in answer
        elif mode == "exact":
            hit = target == answer
        elif mode == "tokens":
            hit = set(_WORD.findall(target)) <= set(_WORD.findall(answer))
        else:
            raise ValueError(f"unknown matching mode {mode!r}; expected one of {MATCH_MODES}")
        if hit:
            return True
    return False
