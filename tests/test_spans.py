"""rag/spans.py: table of copied spans and what a tidy answer keeps."""

from __future__ import annotations

import pytest

from rag.question import analyse
from rag.spans import tidy

CASES = [
    # (question, copied span, tidy answer)
    ("When did most colonies gain independence?", "1960, but France retained great influence", "1960"),
    ("Where was Parliament temporarily relocated to?",
     "the Parliament was temporarily relocated to the former debating chamber in Glasgow",
     "the former debating chamber in Glasgow"),
    ("How long might a speaker address the members?", "up to four minutes, sharing a perspective", "up to four minutes"),
    ("How many general questions are available to opposition leaders?",  # trailing question words stay
     "four general questions available to opposition leaders", "four general questions available to opposition leaders"),
    ("What can commensal flora change?", "conditions in their environment, such as pH or available iron",
     "conditions in their environment, such as pH or available iron"),  # "such as" lists the answer
    ("Which molecules do they have?", "receptors (e.g., immunoglobulins and T cell receptors)",
     "receptors (e.g., immunoglobulins and T cell receptors)"),
    ("When did Brad Smith meet Wang Wentao?", "Wednesday, December 6, 2023", "Wednesday, December 6, 2023"),
    ("Which act sets out the functions?", "Scotland Act 1998 (as amended)", "Scotland Act 1998"),
    ("Who met the minister?", "Brad Smith", "Brad Smith"),
    ("What did he say?", "the minister", "the minister"),  # nothing new, nothing dropped: the refusal checks decide
    ("Where is it?", "in the U.S.", "in the U.S."),
]  # fmt: skip


@pytest.mark.parametrize("question, span, expected", CASES)
def test_tidy_keeps_what_the_question_lacks(question, span, expected):
    text = "Before. " + span + " After."
    start = text.index(span)
    s, e = tidy(text, start, start + len(span), analyse(question))
    assert text[s:e] == expected
