"""Everything English the pipeline knows, as data: word lists, patterns, question and answer types.

One module, so a word list exists once and every heuristic reads the same tables (they were spread
over eight modules, with two different "generic word" sets). Tables are table-tested in
tests/test_lexicon.py. Words are Unicode letters and digits everywhere (`WORD`): an ASCII-only
tokeniser refused "Who is the mayor of Zürich?" because the passage side split "Zürich" in two.
"""

from __future__ import annotations

import re

# --- words ------------------------------------------------------------------------------------------------
# Letters and digits of any script, with an English possessive/contraction tail ("OpenAI's", "don't").
WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W\d_]+)?")

STOPWORDS = frozenset(
    """a an the and or but if then else of to in on at by for with from about as into onto over under between
    among through during before after above below up down out off than so such too very can could should would
    will shall may might must do does did done doing have has had having be is am are was were been being it its
    this that these those there here what which who whom whose when where why how i me my we our you your he him
    his she her they them their not no nor only own same s t just also any all both each few more most other some
    again further once per via according said says say tell told let please ever yet still""".split()
)  # fmt: skip

QUESTION_WORDS = frozenset("what which who whom whose when where why how".split())

# Content words of a question that say what kind of answer is wanted rather than what it is about
# ("what year…", "which day…"), after stemming or before.
ANSWER_KIND_WORDS = frozenset(
    "happen take place held hold name kind type sort thing day date time year month exact exactly precise "
    "ignore instruction rule previous above".split()
)

# The follow-up rewriter's variant: also drops words that only point back ("else", "other").
FOLLOWUP_GENERIC_WORDS = frozenset(
    "happen happened take took place name kind type sort thing things day date time year month one ones "
    "exactly precisely else other others".split()
)

# Words that point back at something named earlier ("who translated it?").
REFERENCE_WORDS = frozenset(
    "it its it's they them their theirs that this those these he him his she her hers there then else "
    "former latter same".split()
)

# A question starting like this continues the previous one.
FOLLOWUP_CONNECTOR = re.compile(r"^\s*(?:and|but|also|so|then|plus|what about|how about|same for)\b[\s,]*", re.I)

# Nationality words name a country loosely ("American" for "U.S."), so they are not names to require.
DEMONYMS = frozenset(
    """american british chinese japanese korean indian russian french german italian spanish european african
    asian canadian mexican brazilian australian israeli iranian iraqi saudi turkish ukrainian taiwanese
    vietnamese thai dutch swiss swedish polish western eastern english""".split()
)

# --- building blocks of answer patterns --------------------------------------------------------------------
MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
WEEKDAYS = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
NUMBER_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|"
    r"million|billion|trillion|dozen|several|few"
)
TIME_UNITS = r"seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?"

# --- answer types: what a phrase of each kind looks like in a sentence ----------------------------------------
ANSWER_TYPES: dict[str, re.Pattern] = {
    "date": re.compile(
        rf"\b(?:{MONTHS})\b|\b{WEEKDAYS}\b|\b(?:1[6-9]|20)\d\d\b|"
        r"\b(?:yesterday|today|tomorrow|spring|summer|autumn|fall|winter)\b|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b",
        re.I,
    ),
    "time": re.compile(
        r"\b\d{1,2}(?::\d\d)?\s*(?:a\.?m\.?|p\.?m\.?)|\b(?:noon|midnight|o'clock|morning|afternoon|evening)\b", re.I
    ),
    "duration": re.compile(rf"\b(?:\d+(?:\.\d+)?|a|an|{NUMBER_WORDS})[\s-]+(?:{TIME_UNITS})\b", re.I),
    "age": re.compile(r"\b\d{1,3}[\s-]+years?[\s-]+old\b|\baged?\s+\d{1,3}\b|\b\d{1,3}-year-old\b", re.I),
    "number": re.compile(rf"\d|\b(?:{NUMBER_WORDS})\b", re.I),
    "numeral": re.compile(r"\d"),
    "location": re.compile(r"\b(?:in|at|near|from|to|inside|outside)\s+(?:the\s+)?[A-Z][\w.'-]*"),
    # a capitalised word that is not a month or weekday, optionally joined to the next ones ("Tim Cook")
    "name": re.compile(
        rf"(?<![\w.'-])(?!(?i:{MONTHS}|{WEEKDAYS})\b)[A-Z][\w.'-]*"
        r"(?:\s+(?:of\s+|and\s+)?[A-Z][\w.'-]*)*"
    ),
    "reason": re.compile(r"\b(?:because|due to|since|as a result of|owing to|amid|in order to|so that|to)\b.*", re.I),
}

# Types whose phrase is unmistakable in a sentence, so a wrong copy can be repaired by taking the
# typed phrase of the chosen sentence; names are not (every sentence has some).
REPAIRABLE_TYPES = frozenset({"date", "time", "duration", "age", "number", "numeral", "location", "reason"})

# Types whose pattern is reliable enough that an answer without one is wrong ("how many" answered
# without a number); location, name and reason patterns miss bare forms ("Pickawillany").
STRICT_TYPES = frozenset({"date", "time", "duration", "age", "number", "numeral"})

# What may follow a typed phrase and still belong to it: "December 6" + ", 2023".
TYPE_TAILS: dict[str, re.Pattern] = {
    "date": re.compile(r"[ ,]*\d{1,4}(?:,\s*\d{4})?"),
}

# "How many <thing>" answered by a symbol instead of the word: "$5 billion" counts dollars.
COUNTED_BY_SYMBOL: dict[str, str] = {
    "dollar": "$",
}

# --- question types: (pattern over the lower-cased question, expected answer type); first match wins ----------
QUESTION_TYPES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"\bhow long\b|\bfor how many (?:" + TIME_UNITS + r")\b"), "duration"),
    (re.compile(r"\bhow old\b|\bwhat age\b"), "age"),
    (re.compile(r"\bwhat time\b|\bat what hour\b"), "time"),
    (
        re.compile(r"\b(?:exact(?:ly)?|precise(?:ly)?)\b.*\bhow (?:many|much)\b|\bhow (?:many|much)\b.*\bexact"),
        "numeral",
    ),
    (re.compile(r"\bhow (?:many|much)\b|\bwhat (?:number|amount|percentage|sum)\b"), "number"),
    (re.compile(r"\bwhen\b|\b(?:what|which) (?:date|day|year|month)\b"), "date"),
    (re.compile(r"\bwhere\b|\b(?:what|which) (?:city|country|place|venue|location)\b"), "location"),
    (re.compile(r"\bwho(?:m|se)?\b"), "name"),
    # "which carmaker…", "what company…", "the name of…" ask for a named thing; "which sector" does not
    (
        re.compile(
            r"\bwhich (?!(?:sectors?|parts?|kinds?|types?|areas?|fields?|topics?|aspects?|roles?|ways?|issues?)\b)[a-z]"
        ),
        "name",
    ),
    (
        re.compile(
            r"\bwhat (?:company|firm|organi[sz]ation|agency|body|person|brand|product|service)\b|\bthe name of\b"
        ),
        "name",
    ),
    (re.compile(r"^\s*why\b|\bfor what reason\b"), "reason"),
]

# "how many <thing>": the counted thing, which a number answer must be a number of.
COUNTED_THING = re.compile(r"\bhow many (\w+)")

# --- injected instructions -------------------------------------------------------------------------------------
# Sentences that address the assistant ("ignore previous instructions…") are injected instructions,
# not statements about the world, so they are never offered as evidence.
INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|rules?|prompts?|guidelines)\b|"
    r"\byou are (?:now|no longer)\b|\bsystem prompt\b|\bnew instructions?\b|"
    r"^\s*(?:system|assistant|user)\s*(?:override)?\s*:|\bnote to (?:the )?(?:ai|assistant|model|llm)\b|"
    r"\b(?:ai|language) model(?:s)?,? (?:must|should|will) (?:answer|say|reply|respond)\b|"
    r"\bthe answer to (?:every|any|all) questions?\b",
    re.I,
)

# --- answer spans ------------------------------------------------------------------------------------------
# Where a copied span stops being the answer and starts a new clause: ", which…", ", but…", "; …", " (…".
# A 135M model copies on to the sentence end; SQuAD answers are a few words.
CLAUSE_BREAK = re.compile(
    r",\s+(?:which|who|whom|whose|where|when|while|but|although|though|with|as|after|before|since|because|"
    r"so|and|the|a|an|it|its|their|this|that|these|those|he|she|they|in|on|at|for|from|to|by|during)\b|"
    r",\s+(?!including\b)[a-z]+ing\b|;|:|\s\((?!e\.g\.|i\.e\.)|\s[\u2014\u2013]\s|\.?\[",
    re.I,
)

# A question joined to a second one ("When was the meeting, and who translated it?"): each part is asked on its
# own (rag/question.py `sub_questions`). The second part may be only its question word ("…, and with whom?").
JOINED_QUESTIONS = re.compile(
    r"^(?P<first>.+?)\s*(?P<comma>,?)\s+and\s+(?P<second>(?:(?:with|to|for|from|by|in|on|at)\s+)?"
    r"(?:who|whom|whose|what|which|when|where|why|how)\b.*)$",
    re.I | re.S,
)
# Words that open a question's body after its question word ("When [did Smith hold the talks]"): an elliptical
# second part borrows that body ("with whom" -> "With whom did Smith hold the talks?").
AUXILIARIES = frozenset(
    "do does did is are was were has have had will would can could should shall may might must".split()
)

# Questions that ask what the documents say about something: the answer is a description, not a span
# (rag/describe.py). "What did X do?" is not one of them: SQuAD asks it with span answers, and the reader reads it.
DESCRIBE_QUESTION = re.compile(
    r"^\s*(?:what\s+(?:does|do|did)\s+(?:the|this|that|your|my|our)?\s*(?:article|document|text|passage|report|"
    r"page|story|file|documents|sources?|news)\s+(?:say|tell|state|mention|report)s?\s+(?:us\s+)?about\b|"
    r"(?:please\s+)?tell\s+me\s+(?:more\s+)?about\b|what\s+(?:is|was|are|were)\s+(?:known|said|written)\s+about\b|"
    r"(?:please\s+)?(?:describe|summari[sz]e)\b|"
    r"what\s+(?:is|was|are|were)\s+the\s+(?:connection|relationship|relation|link|tie)s?\s+(?:between|of)\b|"
    r"how\s+(?:is|are|was|were)\s+.+?\s+(?:related|connected|linked)\b)",
    re.I,
)
# Words of such a question that say it wants a description, not what it is about.
DESCRIBE_WORDS = frozenset(
    "article document documents text passage report page story file source sources news say says tell state "
    "mention known written connection connections relationship relationships relation relations link links tie "
    "ties related connected linked describe summarize summarise".split()
)

# Questions that ask for two things get two spans, each cited ("what two…", "what were the two…", "who were two…").
TWO_PART_QUESTION = re.compile(
    r"\b(?:which|what|who|name)\s+(?:(?:are|were|is|was)\s+)?(?:the\s+)?(?:two|both)\b|\bwho\s+(?:met|called|visited|beat|defeated)\s+whom\b|"
    r"\b(?:who|what|which|when|where)\b[^?]*?,?\s+and\s+(?:who|what|which|when|where|how)\b",
    re.I,
)


# --- negation: a question asking what is *not* so needs a cited sentence that says something is not so ---------
# SQuAD 2.0's adversaries insert a "not" into an answerable question ("Who does not have the ability to alter
# income tax in Scotland?"); on the three calibration articles, of the answered questions with a negation, the
# cited sentence had none for 22 unanswerable questions and 1 answerable one (rag/refusal.py).
NEGATED_QUESTION = re.compile(r"\b(?:not|never|no longer)\b|n['\u2019]t\b", re.I)
NEGATION = re.compile(
    r"\b(?:not|no|never|none|nor|neither|nothing|nobody|without|cannot|unable|lack\w*|fail\w*|refus\w*|"
    r"den(?:y|ies|ied)|except\w*|exclud\w*|instead|other than|ineligible)\b|n['\u2019]t\b",
    re.I,
)

# --- opposites: a question word whose opposite the cited sentence says instead ("the lowest form" of a sentence
# saying "the highest") -- SQuAD 2.0's antonym swap. Written before measuring: on the three calibration articles,
# of the answered questions, the cited sentence lacked the question's word and held its opposite for 25
# unanswerable questions and 4 answerable ones (2 answered wrongly; rag/refusal.py). Not converses, where the
# other word states the same fact from the other side ("Who bought the factory?" of "…sold it to AvtoZAZ": a
# held-out answer the first list refused): buy/sell, import/export, win/lose, before/after are left out.
OPPOSITES: tuple[tuple[str, str], ...] = (
    ("lowest", "highest"), ("smallest", "largest"), ("smallest", "biggest"), ("latest", "earliest"),
    ("last", "first"), ("least", "most"), ("weak", "strong"), ("weak", "powerful"), ("weakest", "strongest"),
    ("decline", "increase"), ("decline", "grow"), ("declined", "increased"), ("declined", "grew"), ("fall", "rise"),
    ("fell", "rose"), ("decrease", "increase"), ("decreased", "increased"), ("minor", "major"),
    ("private", "public"), ("north", "south"), ("east", "west"), ("northern", "southern"), ("eastern", "western"),
    ("small", "large"), ("low", "high"), ("lower", "higher"), ("old", "new"), ("older", "newer"), ("short", "long"),
    ("shorter", "longer"), ("early", "late"), ("earlier", "later"), ("minimum", "maximum"), ("outside", "inside"),
    ("reject", "accept"), ("rejected", "accepted"), ("oppose", "support"), ("opposed", "supported"),
    ("end", "begin"), ("ended", "began"), ("negative", "positive"), ("cheap", "expensive"), ("less", "more"),
    ("fewer", "more"), ("worst", "best"), ("worse", "better"), ("bad", "good"), ("unpopular", "popular"),
    ("illegal", "legal"), ("failure", "success"), ("failed", "succeeded"), ("inferior", "superior"),
    ("disagree", "agree"), ("slow", "fast"), ("slower", "faster"), ("cold", "hot"), ("female", "male"),
    ("women", "men"), ("absent", "present"), ("indirect", "direct"), ("informal", "formal"),
    ("internal", "external"), ("domestic", "foreign"),
)  # fmt: skip
# Converses: two words that state one fact from either side ("Who bought the factory?" of "…sold it to AvtoZAZ"),
# which WordNet lists as antonyms; never opposites here (rag_eval/make_opposites.py leaves them out). Written from
# the meaning of the words, not from any article's questions.
CONVERSES: tuple[tuple[str, str], ...] = (
    ("buy", "sell"), ("buyer", "seller"), ("import", "export"), ("importer", "exporter"), ("win", "lose"),
    ("winner", "loser"), ("before", "after"), ("borrow", "lend"), ("borrower", "lender"), ("give", "take"),
    ("come", "go"), ("arrive", "leave"), ("arrive", "depart"), ("arrival", "departure"), ("emigrate", "immigrate"),
    ("emigration", "immigration"), ("emigrant", "immigrant"), ("precede", "follow"), ("precede", "succeed"),
    ("predecessor", "successor"), ("attack", "defend"), ("offense", "defense"), ("offence", "defence"),
    ("defend", "prosecute"), ("defense", "prosecution"), ("push", "pull"), ("download", "upload"),
    ("hire", "fire"), ("employer", "employee"), ("parent", "child"), ("teach", "learn"), ("teacher", "student"),
    ("question", "answer"), ("ask", "answer"), ("send", "receive"), ("sender", "receiver"), ("host", "guest"),
    ("above", "below"), ("over", "under"), ("front", "back"), ("front", "rear"), ("ahead", "behind"),
    ("input", "output"), ("deposit", "withdraw"), ("retail", "wholesale"), ("debit", "credit"),
)  # fmt: skip
# Ranks exclude each other as opposites do: "the fifth session" asked of a sentence on "the fourth" (on the
# calibration articles' runs that fitted the decider, 7 unanswerable questions and 1 answerable one, half right).
RANKS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
# A negating prefix makes an opposite too: "unestablished" asked of a sentence saying "established" (on the
# calibration articles, 3 unanswerable questions and no answerable one).
NEGATING_PREFIX = re.compile(r"^(?:un|in|im|ir|il|dis|non)-?(\w{5,})$", re.I)
