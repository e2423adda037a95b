"""Whether a candidate answer is really supported, or the documents don't say.

Small models rarely choose to refuse, and unanswerable on-topic questions retrieve passages as
similar as answerable ones, so refusal is decided from checks a reader could repeat:
- answer type: a "when" question needs a date in the answer, "how long" a duration, and so on;
- names: names in the question must appear in the cited sentence (or the name or heading of its document),
  and so must its numbers of two or more digits (years, dates, amounts: `rag.text.numbers_in`). SQuAD 2.0's
  adversarial questions often change a year ("Who passed the Scotland Act of 1988?" of an article on the
  1998 act); on the three calibration articles the numbers check refused 24 unanswerable questions that had
  been answered and 1 answerable one (answered wrongly before): refusal recall 39.1 -> 43.3 at 7.9% false
  refusals, answerable F1 71.4 -> 72.1 (the ranker puts a span whose sentence lacks the number last);
- opposites: a question word the cited sentence lacks while it says the opposite (`lexicon.OPPOSITES`: "the
  lowest form" asked of a sentence saying "the highest") refuses, in those words ('The passages say "highest",
  not "lowest"'), and ranks like a missing name; so do ranks (`lexicon.RANKS`: "fourth" for "fifth"), a
  negating prefix ("unestablished" of "established", "non-eligible" of "eligible") and WordNet's antonyms
  (prompts/opposites.tsv, 3,244 pairs without converses, written by rag_eval/make_opposites.py: "closed" of
  "open", "foot" of "head"), which are compared as written with their inflections, as the stemmer makes one
  word of "nationality" and "national";
- negation: a question asking what is not so ("Who does not have the ability to alter income tax?", SQuAD 2.0's
  other favourite trick) needs a cited sentence that negates something (`lexicon.NEGATION`: "not", "never",
  "except", "without"…), checked and ranked like a name;
- support: most of the question's content words (or close synonyms) must appear near the answer;
- echo: an answer made only of the question's own words says nothing;
- relevance: the best passage must be at least loosely about the question.
`assess` measures the signals; `RefusalPolicy` holds the thresholds the deciders share (rag/decider.py
gives the verdicts and words every reason). It also holds the
confidence floor: an answer the decider gives but is not sure enough of is withheld ("The documents don't
say for sure") and shown only as a best guess, for users who would rather have fewer, surer answers.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from rag.answer_types import find_typed, has_type
from rag.lexicon import INSTRUCTION, NEGATING_PREFIX, NEGATION, OPPOSITES, RANKS, STOPWORDS
from rag.prompts import PACKAGE
from rag.question import Question
from rag.text import collapse_initialisms, context_terms, norm, numbers_in, words

if TYPE_CHECKING:
    from rag.settings import AnsweringSettings


@dataclass
class Signals:
    question_type: str | None
    typed: bool  # the answer holds the expected type (True when no type is expected)
    anchors: list[str] = field(default_factory=list)
    missing_anchors: list[str] = field(default_factory=list)
    support: float = 1.0  # share of content terms found near the answer
    terms: list[str] = field(default_factory=list)
    missing_terms: list[str] = field(default_factory=list)
    relevance: float = 0.0  # best dense cosine among retrieved passages
    echo: bool = False  # the answer only repeats words of the question
    missing_words: list[str] = field(default_factory=list)  # the question's own words behind missing_terms
    negation_missing: bool = False  # the question asks what is not so; the cited sentence negates nothing
    opposites: list[str] = field(default_factory=list)  # "highest" said where the question says "lowest"
    extra: dict = field(default_factory=dict)  # the fitted model's features, when one decided

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def fails_names(self) -> bool:
        """Does the names rule refuse: a name or number of the question missing from the cited sentence, a negation
        it asks about not there, or the opposite of one of its words said instead?"""
        return bool(self.missing_anchors or self.negation_missing or self.opposites)


def assess(question: Question, answer: str, context: str, relevance: float, about: str = "") -> Signals:
    """The signals for `answer` (the cited span) inside `context` (the cited sentence); `about` is what the
    passage is about without saying so (`subject_of`: its document's name and heading), where a name of the
    question also counts as mentioned."""
    kind = question.kind
    typed = kind is None or (has_type(answer, kind, question) and find_typed(answer, kind, question) is not None)
    ctx = context_terms(context)
    names = list(question.names)
    subject = context_terms(about) if about else set()
    missing_anchors = [a for a in names if norm(a) not in ctx and norm(a) not in subject]
    if question.numbers:  # a year, date or amount of the question is checked like a name
        stated = set(numbers_in(context)) | set(numbers_in(about))
        names += question.numbers
        missing_anchors += [n for n in question.numbers if n not in stated]
    terms = list(question.terms)
    missing = [t for t in terms if t not in ctx]
    support = 1.0 if not terms else (len(terms) - len(missing)) / len(terms)
    answer_terms = {norm(w) for w in words(collapse_initialisms(answer)) if w not in STOPWORDS}
    echo = bool(answer_terms) and answer_terms <= question.asked
    gone = set(missing)
    missing_words = list(dict.fromkeys(w for w in words(question.text) if norm(w) in gone))
    negation_missing = question.negated and not NEGATION.search(context)
    return Signals(
        kind, typed, names, missing_anchors, support, terms, missing, relevance, echo, missing_words,
        negation_missing=negation_missing, opposites=opposites_said(question.text, context),
    )  # fmt: skip


OPPOSITES_FILE = "opposites.tsv"  # WordNet's antonyms, written by rag_eval/make_opposites.py
SUFFIXES = ("s", "es", "ed", "d", "ing", "er", "est", "r", "st", "ly")

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _opposites() -> dict[str, frozenset[str]]:
    """The hand list's opposites and the ranks, compared as `norm` words (stemmed)."""
    pairs: dict[str, set[str]] = {}
    ranks = [(a, b) for a in RANKS for b in RANKS if a != b]
    for a, b in (*OPPOSITES, *ranks):
        pairs.setdefault(norm(a), set()).add(norm(b))
        pairs.setdefault(norm(b), set()).add(norm(a))
    return {k: frozenset(v) for k, v in pairs.items()}


def _inflections(lemma: str) -> set[str]:
    """The regular forms of a WordNet lemma ("close": closes, closed, closing, closer…); over-generating is
    harmless, as a form that is not a word never occurs. Compared as written, not stemmed: the stemmer makes
    "nationality" and "national" one word, and "insane" and "insanity"."""
    out = {lemma} | {lemma + s for s in SUFFIXES}
    if lemma.endswith("e"):
        out |= {lemma[:-1] + s for s in ("ing", "ion")}
    if lemma.endswith("y"):
        out |= {lemma[:-1] + s for s in ("ies", "ied", "ier", "iest", "ily")}
    if len(lemma) <= 6 and re.search(r"[^aeiou][aeiou][bdfglmnprt]$", lemma):  # stop -> stopped, big -> bigger
        out |= {lemma + lemma[-1] + s for s in ("ed", "ing", "er", "est")}
    return out


@lru_cache(maxsize=1)
def _wordnet() -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """WordNet's opposites (prompts/opposites.tsv, converses already left out by rag_eval/make_opposites.py): lemma
    -> its opposites, and written form -> its lemmas."""
    opposite: dict[str, set[str]] = {}
    irregular: list[tuple[str, str]] = []
    path = resources.files(PACKAGE).joinpath(OPPOSITES_FILE)
    for line in path.read_text("utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        kind, _, a, b = line.split("\t")
        if kind == "form":
            irregular.append((a, b))
        else:
            opposite.setdefault(a, set()).add(b)
            opposite.setdefault(b, set()).add(a)
    lemmas: dict[str, set[str]] = {}
    for lemma in opposite:
        for form in _inflections(lemma):
            lemmas.setdefault(form, set()).add(lemma)
    for form, lemma in irregular:
        if lemma in opposite:
            lemmas.setdefault(form, set()).add(lemma)
    log.info("opposites: %d WordNet lemmas with an opposite, from %s", len(opposite), path)
    return {k: frozenset(v) for k, v in opposite.items()}, {k: frozenset(v) for k, v in lemmas.items()}


def opposites_said(question: str, context: str) -> list[str]:
    """The context's words that say the opposite of a question word the context lacks, as '"highest", not "lowest"';
    none for a word whose opposite the question itself names too. Opposites come from the hand list
    (`lexicon.OPPOSITES`, stemmed), the ranks, negating prefixes ("unestablished", "non-eligible") and WordNet
    (`_wordnet`, as written)."""
    opposite = _opposites()
    wn_opposite, wn_lemmas = _wordnet()
    tokens = words(question)
    asked = {norm(w): w for w in tokens}
    asked_lemmas = {lemma for w in tokens for lemma in wn_lemmas.get(w, ())}
    # each word of the question that has an opposite, with the words that would contradict it
    against: dict[str, frozenset[str]] = {}
    wn_against: dict[str, tuple[str, frozenset[str], frozenset[str]]] = {}  # norm -> (word, its lemmas, opposites)
    for i, word in enumerate(tokens):
        n = norm(word)
        if n in opposite and not opposite[n] & asked.keys():
            against[n] = opposite[n]
        elif (m := NEGATING_PREFIX.match(word)) and (base := norm(m.group(1))) not in asked:
            against[n] = frozenset({base})
        elif word == "non" and i + 1 < len(tokens) and len(tokens[i + 1]) >= 4:  # "non-eligible": two words
            against[norm("non" + tokens[i + 1])] = frozenset({norm(tokens[i + 1])})
            asked.setdefault(norm("non" + tokens[i + 1]), "non-" + tokens[i + 1])
        elif (own := wn_lemmas.get(word)) and (others := frozenset().union(*(wn_opposite[x] for x in own))):
            if not others & asked_lemmas:
                wn_against[n] = (word, own, others)
    if not against and not wn_against:  # most questions: the context need not be read
        return []
    said_tokens = words(context)
    said = {norm(w): w for w in said_tokens}
    for a, b in zip(said_tokens, said_tokens[1:]):  # "non-eligible" said as such
        if a == "non":
            said[norm("non" + b)] = "non-" + b
    found = [
        f'"{said[o]}", not "{asked[n]}"'
        for n, others in against.items()
        if n not in said
        for o in sorted(others & said.keys())[:1]
    ]
    said_lemmas: dict[str, str] = {}
    for w in said_tokens:
        for lemma in wn_lemmas.get(w, ()):
            said_lemmas.setdefault(lemma, w)
    for n, (word, own, others) in wn_against.items():
        if n in said or n in against or own & said_lemmas.keys():
            continue
        hit = sorted(others & said_lemmas.keys())
        if hit:
            found.append(f'"{said_lemmas[hit[0]]}", not "{word}"')
    return found


def subject_of(chunk) -> str:
    """What a passage is about without naming it: its document's name (file name, `_`/`-` as spaces) and its
    heading path. The names check counts a name found there as mentioned: a Wikipedia article on Warsaw says
    "the city" in most sentences, and a handbook section under "Travel policy" rarely repeats it.

    Found on the held-out Warsaw article (12 answerable questions were refused as "The passages do not
    mention Warsaw"); on the three calibration articles it clears one names refusal of an answerable question
    (Scottish_Parliament) and none of an unanswerable one."""
    stem = Path(chunk.doc_id).stem if chunk.doc_id else ""
    name = re.sub(r"[_\-.]+", " ", stem)
    return " ".join(x for x in (name, chunk.heading or "") if x.strip())


@dataclass(frozen=True)
class RefusalPolicy:
    """The thresholds every decider shares (rag/decider.py), from the answering settings (`RefusalPolicy.of`);
    `RefusalPolicy.of(AnsweringSettings())` is the production policy."""

    min_support: float
    min_relevance: float
    refusal_text: str
    confidence_floor: float  # withhold answers whose P(right answer) is below this; 0: never

    def below_floor(self, confidence: float | None) -> bool:
        """Is an answer of this confidence withheld as a best guess? Never without a confidence."""
        return confidence is not None and confidence < self.confidence_floor

    @classmethod
    def of(cls, answering: AnsweringSettings) -> RefusalPolicy:
        return cls(**{f.name: getattr(answering, f.name) for f in fields(cls)})

    def before_generation(self, relevance: float | None, question: Question | None = None) -> str | None:
        """The cause of a refusal without asking the model (rag/decider.py words it), or None."""
        if question is not None and INSTRUCTION.search(question.text):
            return "instruction"
        if relevance is None:
            return "no_passage"
        if relevance < self.min_relevance:
            return "off_topic"
        return None


OFF_TOPIC = "The passages are about other things"
NOT_SURE = "The documents don't say for sure"  # the confidence floor withheld the answer
NO_CLEAR_ANSWER = "No sentence in the passages clearly answers this question"
NOT_NEGATED = "No sentence in the passages says what the question asks is not so"

KIND_WORDS = {
    "date": "a date", "time": "a time", "duration": "a length of time", "age": "an age", "number": "a number",
    "numeral": "an exact number", "location": "a place", "name": "a name", "reason": "a reason",
}  # fmt: skip


def plain_reason(feature: str, signals: Signals) -> str:
    """A refusal reason in plain words for the signal that weighed most against the answer."""
    if feature in ("typed", "typed_answer") and signals.question_type:
        return f"None of the passages gives {KIND_WORDS.get(signals.question_type, signals.question_type)} for this"
    if feature in ("anchors", "missing_names", "has_names") and signals.missing_anchors:
        return f"The passages do not mention {', '.join(signals.missing_anchors)}"
    if feature in ("anchors", "missing_names", "has_names", "negation_missing") and signals.negation_missing:
        return NOT_NEGATED
    if feature in ("anchors", "missing_names", "has_names", "opposites") and signals.opposites:
        return f"The passages say {'; '.join(signals.opposites)}"
    if feature in ("echo", "answer_in_question"):
        return "The only candidate answer repeats the question's own words"
    if feature in ("cosine", "passage_cosine", "relevance", "passage_bm25"):
        return OFF_TOPIC
    return NO_CLEAR_ANSWER
