"""Signals that decide whether a candidate answer is really supported, or the documents don't say.

Small models rarely choose to refuse and unanswerable on-topic questions retrieve passages as
similar as answerable ones, so refusal is decided here from checks a reader could repeat:
- answer type: a "when" question needs a date in the answer, "how long" a duration, and so on;
- anchors: names in the question must appear in the cited sentence;
- support: most of the question's content words (or close synonyms) must appear near the answer;
- relevance: the best passage must be at least loosely about the question.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from rag.text import QUESTION_WORDS, STOPWORDS, stem, words

_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_NUMBER_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|"
    r"million|billion|trillion|dozen|several|few"
)
_UNITS = r"seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?"

ANSWER_TYPES: dict[str, re.Pattern] = {
    "date": re.compile(
        rf"\b(?:{_MONTHS})\b|\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b|\b(?:1[6-9]|20)\d\d\b|"
        r"\b(?:yesterday|today|tomorrow|spring|summer|autumn|fall|winter)\b|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b",
        re.I,
    ),
    "time": re.compile(r"\b\d{1,2}(?::\d\d)?\s*(?:a\.?m\.?|p\.?m\.?)|\b(?:noon|midnight|o'clock|morning|afternoon|evening)\b", re.I),
    "duration": re.compile(rf"\b(?:\d+(?:\.\d+)?|a|an|{_NUMBER_WORDS})[\s-]+(?:{_UNITS})\b", re.I),
    "age": re.compile(r"\b\d{1,3}[\s-]+years?[\s-]+old\b|\baged?\s+\d{1,3}\b|\b\d{1,3}-year-old\b", re.I),
    "number": re.compile(rf"\d|\b(?:{_NUMBER_WORDS})\b", re.I),
    "numeral": re.compile(r"\d"),
    "location": re.compile(r"\b(?:in|at|near|from|to|inside|outside)\s+(?:the\s+)?[A-Z][\w.'-]*"),
    # a capitalised word that is not a month or weekday, optionally joined to the next ones ("Tim Cook")
    "name": re.compile(
        rf"(?<![\w.'-])(?!(?i:{_MONTHS}|(?:mon|tues|wednes|thurs|fri|satur|sun)day)\b)[A-Z][\w.'-]*"
        r"(?:\s+(?:of\s+|and\s+)?[A-Z][\w.'-]*)*"
    ),
    "reason": re.compile(r"\b(?:because|due to|since|as a result of|owing to|amid|in order to|so that|to)\b.*", re.I),
}

# (pattern over the lower-cased question, expected answer type); first match wins.
QUESTION_TYPES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"\bhow long\b|\bfor how many (?:" + _UNITS + r")\b"), "duration"),
    (re.compile(r"\bhow old\b|\bwhat age\b"), "age"),
    (re.compile(r"\bwhat time\b|\bat what hour\b"), "time"),
    (re.compile(r"\b(?:exact(?:ly)?|precise(?:ly)?)\b.*\bhow (?:many|much)\b|\bhow (?:many|much)\b.*\bexact"), "numeral"),
    (re.compile(r"\bhow (?:many|much)\b|\bwhat (?:number|amount|percentage|sum)\b"), "number"),
    (re.compile(r"\bwhen\b|\b(?:what|which) (?:date|day|year|month)\b"), "date"),
    (re.compile(r"\bwhere\b|\b(?:what|which) (?:city|country|place|venue|location)\b"), "location"),
    (re.compile(r"\bwho(?:m|se)?\b"), "name"),
    # "which carmaker…", "what company…", "the name of…" ask for a named thing; "which sector" does not
    (re.compile(r"\bwhich (?!(?:sectors?|parts?|kinds?|types?|areas?|fields?|topics?|aspects?|roles?|ways?|issues?)\b)[a-z]"), "name"),
    (re.compile(r"\bwhat (?:company|firm|organi[sz]ation|agency|body|person|brand|product|service)\b|\bthe name of\b"), "name"),
    (re.compile(r"^\s*why\b|\bfor what reason\b"), "reason"),
]

# Content words that say what kind of answer is wanted rather than what it is about.
_GENERIC = frozenset(
    "happen take place held hold name kind type sort thing day date time year month exact exactly precise "
    "ignore instruction rule previous above".split()
)


def question_type(question: str) -> str | None:
    q = question.lower()
    for pattern, kind in QUESTION_TYPES:
        if pattern.search(q):
            return kind
    return None


def has_type(text: str, kind: str, question: str = "") -> bool:
    """Does text hold an answer of this kind? "how many <things>" needs a number of those things."""
    if not ANSWER_TYPES[kind].search(text):
        return False
    counted = re.search(r"\bhow many (\w+)", question.lower())
    if kind in ("number", "numeral") and counted:
        thing = norm(counted.group(1))
        number = r"\d[\d,.]*" if kind == "numeral" else rf"(?:\d[\d,.]*|{_NUMBER_WORDS})"
        for m in re.finditer(rf"(?:\$\s*)?\b{number}\b((?:[\s-]+[\w-]+){{0,3}})", text, re.I):
            if m.group().lstrip().startswith("$") and thing.startswith("dollar"):
                return True
            if thing in {norm(w) for w in re.split(r"[\s-]+", m.group(1)) if w}:
                return True
        return False
    return True


def find_typed(text: str, kind: str, question: str = "") -> re.Match | None:
    """The typed phrase in text that adds something to the question, nearest the words matching it."""
    asked = {norm(w) for w in words(collapse_initialisms(question))}
    matches = [
        m
        for m in ANSWER_TYPES[kind].finditer(text)
        if {norm(w) for w in words(collapse_initialisms(m.group()))} - asked
    ]
    if not matches or not question:
        return matches[0] if matches else None
    hits = [m.start() for m in re.finditer(r"\S+", text) if norm(m.group().strip(".,;:")) in asked - STOPWORDS]
    if not hits:
        return matches[0]
    return min(matches, key=lambda m: min(abs(m.start() - h) for h in hits))


# Nationality words name a country loosely ("American" for "U.S."), so they are not anchors.
_DEMONYMS = frozenset(
    """american british chinese japanese korean indian russian french german italian spanish european african
    asian canadian mexican brazilian australian israeli iranian iraqi saudi turkish ukrainian taiwanese
    vietnamese thai dutch swiss swedish polish western eastern english""".split()
)


def collapse_initialisms(text: str) -> str:
    """'U.S.' -> 'US', so initialisms match however they are written."""
    return re.sub(r"\b(?:[A-Za-z]\.){2,}", lambda m: m.group().replace(".", ""), text)


def norm(token: str) -> str:
    return stem(token.replace(".", "").lower())


def context_terms(text: str) -> set[str]:
    """Normalised words of a context, plus the acronyms its capitalised or lower-case phrases spell."""
    tokens = words(collapse_initialisms(text))
    found = {norm(w) for w in tokens}
    content = [w for w in tokens if w not in STOPWORDS]
    for size in (2, 3, 4):  # "artificial intelligence" also counts as "AI"
        for i in range(len(content) - size + 1):
            found.add("".join(w[0] for w in content[i : i + size]))
    return found


def anchors(question: str) -> list[str]:
    """Proper names in the question: capitalised words that do not start a sentence, and acronyms."""
    question = collapse_initialisms(question)
    found = []
    for m in re.finditer(r"[A-Za-z][\w'\u2019]*", question):
        token = m.group()
        before = question[: m.start()].rstrip()
        starts_sentence = not before or before[-1] in ".?!:\"'"
        if token[0].isupper() and not starts_sentence and token.lower() not in QUESTION_WORDS | {"i"}:
            name = re.sub(r"['\u2019]s$", "", token)
            if name.lower() not in STOPWORDS and name.lower() not in _DEMONYMS:
                found.append(name)
    return found


def content_terms(question: str) -> list[str]:
    terms = []
    for w in words(collapse_initialisms(question)):
        if w in STOPWORDS or w in QUESTION_WORDS:
            continue
        s = norm(w)
        if w not in _GENERIC and s not in _GENERIC and s not in terms:
            terms.append(s)
    return terms


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

    def to_dict(self) -> dict:
        return asdict(self)


def assess(question: str, answer: str, context: str, relevance: float) -> Signals:
    """Compute the signals for `answer` (the cited span) inside `context` (the cited sentence)."""
    kind = question_type(question)
    typed = kind is None or (has_type(answer, kind, question) and find_typed(answer, kind, question) is not None)
    ctx = context_terms(context)
    names = anchors(question)
    missing_anchors = [a for a in names if norm(a) not in ctx]
    terms = content_terms(question)
    missing = [t for t in terms if t not in ctx]
    support = 1.0 if not terms else (len(terms) - len(missing)) / len(terms)
    answer_terms = {norm(w) for w in words(collapse_initialisms(answer)) if w not in STOPWORDS}
    question_terms = {norm(w) for w in words(collapse_initialisms(question))}
    echo = bool(answer_terms) and answer_terms <= question_terms
    return Signals(kind, typed, names, missing_anchors, support, terms, missing, relevance, echo)
