"""Questions that ask what the documents say about something, answered with the sentences that say it.

"What does the article say about Nvidia?", "What is the connection between OpenAI and ChatGPT?", "Tell me
about the travel policy": the answer is a description, not a span. The reader was trained on SQuAD, whose
answers are spans, and predicted "no answer" for all three questions of this kind in eval/questions.jsonl
(kw03, kw04 refused; the documents say it in one sentence each). The 20 shared SQuAD articles ask none of
them (0 of 8,679 questions match `lexicon.DESCRIBE_QUESTION`), so there is no data to fit a confidence on.

The answer is up to `MAX_SENTENCES` sentences of the shown passages, in retrieval order, that mention every
name the question gives (the names check's rule: the sentence, or its document's name and heading), or with no
names, at least half of its content words; each is cited whole (no separate evidence: the sentence is the
answer). Its confidence is None: not measured, and shown as such, never a made-up number. When no sentence
mentions the names, the decider refuses in the names rule's words ("The passages do not mention …"). Only in
extractive mode: a generative model writes its own description from the passages.
"""

from __future__ import annotations

import re

from rag.citations import Numbered, span_citation
from rag.decider import Decider
from rag.evidence import is_instruction
from rag.lexicon import DESCRIBE_QUESTION, DESCRIBE_WORDS
from rag.question import Question
from rag.refusal import Signals, subject_of
from rag.strategies import Outcome
from rag.text import context_terms, norm

MAX_SENTENCES = 2
MIN_TERMS = 0.5  # without names: the share of the question's content words a sentence must hold


def asks_description(question: Question) -> bool:
    return bool(DESCRIBE_QUESTION.search(question.text))


def describe(question: Question, numbered: list[Numbered], decider: Decider) -> Outcome:
    """The sentences that say what the question asks about, cited; or the decider's refusal."""
    names = list(question.names)
    skip = {norm(w) for w in DESCRIBE_WORDS}
    terms = [t for t in question.terms if t not in skip]
    picked: list[tuple[Numbered, int, int]] = []
    least_missing: list[str] | None = None
    for item in numbered:
        about = context_terms(subject_of(item.passage.chunk))
        for s, e in item.sentences() or [(0, len(item.text))]:
            sentence = item.text[s:e]
            if not re.search(r"\w", sentence) or is_instruction(sentence):
                continue
            found = context_terms(sentence)
            missing = [n for n in names if norm(n) not in found and norm(n) not in about]
            if least_missing is None or len(missing) < len(least_missing):
                least_missing = missing
            if names:
                holds = not missing
            else:
                holds = bool(terms) and sum(t in found for t in terms) >= MIN_TERMS * len(terms)
            if holds and len(picked) < MAX_SENTENCES:
                picked.append((item, s, e))
    signals = Signals(None, True, names, least_missing or [], terms=terms)
    if not picked:
        cause = "not_mentioned" if names and least_missing else "no_candidate"
        return Outcome.decided(decider.refuse(cause, signals), signals)
    citations = [span_citation(item, s, e) for item, s, e in picked]
    signals.missing_anchors = []
    signals.extra = {"described": True, "sentences": len(picked)}
    answer = " ".join(f"{c.quote.strip()} [{c.n}]" for c in citations)
    return Outcome(answer, citations, [], signals, p_answer=None)  # no evidence: the answer is the whole sentence
