"""One way to compare an answer with a gold answer, for both harnesses: the official SQuAD v2 normaliser.

`rag eval` (hand-written questions) and `rag eval --squad` used to normalise differently (one turned
punctuation into spaces, the other deletes it as evaluate-v2.0.py does), so a "token F1" meant two things
and the SQuAD figures could not be told from the project's own. Both now go through the official
script's `normalize_answer` (lower case, punctuation deleted, articles dropped, whitespace collapsed),
so the SQuAD numbers stay comparable with published ones and the hand-written set is scored the same way.
The price of the official rule: punctuation joins what it separated, so "OpenAI's" holds no word
"openai" and "U.S.-China" no word "china"; write such aliases as the documents spell them.

Containment (a gold answer stated anywhere in a longer answer, as whole tokens so "10" is not in "2010")
is not part of the official script; it is defined here on the same tokens.

Standard library only: the CLI imports the eval command, which imports this, to build its parser.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (evaluate-v2.0.py, verbatim)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def get_tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def token_f1(prediction: str, truth: str) -> float:
    """Token F1 of one prediction against one gold (evaluate-v2.0.py's compute_f1): nothing against nothing is 1."""
    gold_toks, pred_toks = get_tokens(truth), get_tokens(prediction)
    if not gold_toks or not pred_toks:
        return float(gold_toks == pred_toks)
    same = sum((collections.Counter(gold_toks) & collections.Counter(pred_toks)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_toks), same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def _golds(golds: Sequence[str]) -> list[str]:
    """As the official script: golds that normalise to nothing are dropped; none left means "no answer"."""
    return [g for g in golds if normalize_answer(g)] or [""]


def exact(pred: str, golds: Sequence[str]) -> int:
    """1 when the normalised prediction equals some normalised gold; golds [] (unanswerable) means ""."""
    return max(int(normalize_answer(pred) == normalize_answer(g)) for g in _golds(golds))


def f1(pred: str, golds: Sequence[str]) -> float:
    """Token F1 against the best gold (official SQuAD v2); golds [] (unanswerable) means ""."""
    return max(token_f1(pred, g) for g in _golds(golds))


def _holds(tokens: list[str], phrase: list[str]) -> bool:
    return any(tokens[i : i + len(phrase)] == phrase for i in range(len(tokens) - len(phrase) + 1))


def contains_phrase(text: str, phrase: str) -> bool:
    """The phrase's tokens appear in the text's as a run (whole tokens: "10" is not in "2010"); an empty
    phrase is in nothing."""
    needle = get_tokens(phrase)
    return bool(needle) and _holds(get_tokens(text), needle)


def contains(pred: str, golds: Sequence[str]) -> bool:
    """Some gold is contained in the prediction (`contains_phrase`); golds [] (unanswerable) mean "", which
    only an empty prediction contains."""
    pred_toks = get_tokens(pred)
    for gold in _golds(golds):
        needle = get_tokens(gold)
        if (not needle and not pred_toks) or (needle and _holds(pred_toks, needle)):
            return True
    return False
