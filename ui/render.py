"""HTML for the chat UI: answers with [n] badges, the sources panel with the exact cited span marked.

Pure string functions (no Gradio), so they are unit-tested directly. Every piece of document or
model text goes through `text_html` before it reaches the page: it is HTML-escaped, and characters
that Markdown, LaTeX or the HTML component's `${…}` template would interpret are written as
character references, so a passage always shows exactly as it is in the file.

An answer carries its confidence as a word ("sure", "likely", "unsure": rag.contract.confidence_words, the
same words the CLI prints) with the number in its tooltip; an answer the confidence floor withheld is a
refusal note, "The documents don't say for sure; closest: …", with the guess's evidence and sources, so
the reader sees what the system would have said and can judge it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rag.contract import MARKER, confidence_words

LOADING_MESSAGE = "Model is loading… this takes a minute after the server starts. Ask again in a moment."
NO_SOURCES = "Sources of the latest answer appear here, with the exact cited words highlighted."

# HTML's own specials, plus what Markdown (the chat renders Markdown), KaTeX ($…$) or the HTML
# component's JS template (${…}) would act on.
_SPECIAL = {c: f"&#{ord(c)};" for c in "\\`*_{}[]()#+-!|~$<>&\"'"}


def text_html(text: str) -> str:
    """`text` as inert HTML: shown exactly as written, never interpreted as markup."""
    return "".join(_SPECIAL.get(ch, ch) for ch in text)


def badge(n: int | str, title: str | None = None) -> str:
    tip = f' title="{text_html(title)}"' if title else ""
    return f'<span class="rag-badge"{tip}>{text_html(str(n))}</span>'


def with_badges(text: str, titles: Mapping[int, str] | None = None) -> str:
    """Escape `text` and turn each "[n]" marker into a badge (its tooltip: the cited words)."""
    out, pos = [], 0
    for m in MARKER.finditer(text):
        out.append(text_html(text[pos : m.start()]))
        n = int(m.group(1))
        out.append(badge(n, (titles or {}).get(n)))
        pos = m.end()
    out.append(text_html(text[pos:]))
    return "".join(out)


def _note(kind: str, body: str) -> str:
    return f'<div class="rag-{kind}">{body}</div>'


# --- chat messages -----------------------------------------------------------------------------------


def answer_html(answer: Mapping[str, Any], searched: str | None = None, turn: int | None = None) -> str:
    """The final chat message for `Answer.model_dump()`: the answer with badges, or a refusal note.

    It carries its plain-text form (`plain_text`) in a hidden element's `title`, which the page's copy button
    copies instead of this HTML; `turn` (the message's index, as a class: the chat's sanitizer drops data-*
    attributes) ties its badges to the sources panel. Newlines are character references: a raw one would
    end the HTML inside the chat's Markdown.
    """
    copy = text_html(plain_text(answer)).replace("\n", "&#10;")
    parts = [f'<span class="rag-copy" hidden title="{copy}"></span>']
    if turn is not None:
        parts.append(f'<span class="rag-turn rag-turn-{int(turn)}" hidden></span>')
    guess = answer.get("best_guess")
    if answer.get("refused") and guess:
        closest = f"{with_badges(guess.get('answer', ''), _titles(guess))}{confidence_html(guess.get('confidence'))}"
        head = f"<strong>{text_html(answer.get('reason') or 'The documents do not say for sure')}</strong>"
        parts.append(_note("refusal", f'{head}; closest: <span class="rag-guess">{closest}</span>'))
        parts.append(evidence_html(guess))
    elif answer.get("refused"):
        reason = answer.get("reason")
        why = f'<div class="rag-reason">Why: {text_html(reason)}</div>' if reason else ""
        head = text_html(answer.get("answer") or "The documents do not say.")
        parts.append(_note("refusal", f"<strong>{head}</strong>{confidence_html(answer.get('confidence'))}{why}"))
    else:
        body = with_badges(answer.get("answer", ""), _titles(answer)) + confidence_html(answer.get("confidence"))
        parts.append(f'<div class="rag-answer">{body}</div>')
        parts.append(evidence_html(answer))
    if searched:
        parts.append(followup_note(searched))
    meta = meta_line(answer)
    if meta:
        parts.append(meta)
    return "".join(parts)


def plain_text(answer: Mapping[str, Any]) -> str:
    """What "copy" puts on the clipboard: the answer, then its numbered sources with file, page and quote.

    December 6, 2023 [1]

    Sources:
    [1] 000_d74c9cd70636ffa8.txt, characters 224–240: “December 6, 2023”
    """
    guess = answer.get("best_guess")
    if answer.get("refused") and not guess:
        lines = [_worded(answer.get("answer") or "The documents don't say.", answer.get("confidence"))]
        if answer.get("reason"):
            lines.append(f"Why: {answer['reason']}")
        return "\n".join(lines)
    if guess:
        closest = f"{answer.get('reason') or 'The documents do not say for sure'}; closest: {guess.get('answer', '')}"
        lines, citations = [_worded(closest, guess.get("confidence"))], list(guess.get("citations") or [])
    else:
        lines = [_worded(answer.get("answer", ""), answer.get("confidence"))]
        citations = list(answer.get("citations") or [])
    if citations:
        lines += ["", "Sources:"]
        for c in citations:
            where = (
                f"page {c['page']}"
                if c.get("page") not in (None, "")
                else f"characters {c.get('start')}–{c.get('end')}"
            )
            lines.append(f"[{c.get('n')}] {c.get('source', '?')}, {where}: “{c.get('quote', '')}”")
    return "\n".join(lines)


def _titles(answer: Mapping[str, Any]) -> dict:
    """Each cited number's tooltip: its file and the cited words."""
    return {c["n"]: f"{c.get('source', '')}: “{c.get('quote', '')}”" for c in answer.get("citations") or []}


def _worded(text: str, confidence: float | None) -> str:
    word = confidence_words(confidence)
    return f"{text} ({word})" if word else text


def confidence_html(confidence: float | None) -> str:
    """The confidence as a word beside the answer (its number in the tooltip); nothing when there is none."""
    word = confidence_words(confidence)
    if word is None:
        return ""
    tip = f"confidence {confidence:.2f}: the fitted decider's probability that this is right"
    return f' <span class="rag-confidence rag-confidence-{word}" title="{text_html(tip)}">{text_html(word)}</span>'


def evidence_html(answer: Mapping[str, Any]) -> str:
    """The whole sentence(s) the short answer was taken from, under it, with the answer's words marked."""
    quotes = [c.get("quote", "") for c in answer.get("citations") or []]
    rows = []
    for e in answer.get("evidence") or []:
        text = e.get("text", "")
        quote = next((q for q in quotes if q and q in text), "")
        if quote:
            i = text.index(quote)
            body = f"{text_html(text[:i])}<mark>{text_html(quote)}</mark>{text_html(text[i + len(quote) :])}"
        else:
            body = text_html(text)
        rows.append(f'<div class="rag-evidence">{badge(e.get("n", ""))} “{body}”</div>')
    return "".join(rows)


def streaming_html(raw: str, searched: str | None = None) -> str:
    """The chat message while tokens arrive: the raw reply so far, with a cursor."""
    body = with_badges(raw) if raw.strip() else '<span class="rag-muted">Reading the passages…</span>'
    note = followup_note(searched) if searched else ""
    return f'<div class="rag-answer rag-streaming">{body}<span class="rag-cursor">▍</span></div>{note}'


def followup_note(searched: str) -> str:
    return _note("note", f"Follow-up question: searched for “{text_html(searched)}”")


def meta_line(answer: Mapping[str, Any]) -> str:
    bits = []
    if answer.get("model"):
        bits.append(text_html(str(answer["model"])))
    if answer.get("mode"):
        bits.append(text_html(str(answer["mode"])))
    total = (answer.get("timings") or {}).get("total_ms")
    if isinstance(total, (int, float)):
        bits.append(f"{total / 1000:.1f} s")
    return _note("meta", " · ".join(bits)) if bits else ""


def loading_html() -> str:
    return _note("loading", text_html(LOADING_MESSAGE))


def error_html(message: str) -> str:
    return _note("error", text_html(message))


# --- sources panel -----------------------------------------------------------------------------------


def cited_span(citation: Mapping[str, Any]) -> tuple[int, int] | None:
    """Offsets of the cited words inside the citation's passage text, or None if they do not fit."""
    text = citation.get("text") or ""
    try:
        start = int(citation["start"]) - int(citation["passage_start"])
        end = int(citation["end"]) - int(citation["passage_start"])
    except (KeyError, TypeError, ValueError):
        start = end = -1
    quote = citation.get("quote")
    if 0 <= start <= end <= len(text) and (quote is None or text[start:end] == quote):
        return start, end
    if quote:  # offsets disagree with the text: fall back to the quote itself, if it occurs once
        at = text.find(quote)
        if at >= 0 and text.find(quote, at + 1) < 0:
            return at, at + len(quote)
    return None


def highlighted(text: str, span: tuple[int, int] | None) -> str:
    if span is None:
        return text_html(text)
    s, e = span
    return f"{text_html(text[:s])}<mark>{text_html(text[s:e])}</mark>{text_html(text[e:])}"


def _card(
    n: int | None, source: str, start: int, end: int, body: str, score: float | None, cls: str, page: Any = None
) -> str:
    """One passage: its number, file and page in the head; the retrieval score (an internal ranking number
    that means nothing to a reader) and the character offsets only under "details"."""
    head = badge(n) if n is not None else ""
    where = f"page {text_html(str(page))}" if page not in (None, "") else ""
    details = []
    if start is not None and end is not None:
        details.append(f"characters {start}–{end}")
    if isinstance(score, (int, float)):
        details.append(f"retrieval score {score:.4f}")
    more = f'<details class="rag-details"><summary>details</summary>{" · ".join(details)}</details>' if details else ""
    anchor = f' data-n="{text_html(str(n))}"' if n is not None else ""
    return (
        f'<div class="rag-source {cls}"{anchor}>'
        f'<div class="rag-source-head">{head}<span class="rag-doc">{text_html(source)}</span>'
        f'<span class="rag-where">{where}</span></div>'
        f'<div class="rag-passage">{body}</div>{more}</div>'
    )


def citation_card(citation: Mapping[str, Any]) -> str:
    text = citation.get("text") or ""
    span = cited_span(citation)
    body = highlighted(text, span)
    if span is None:
        body += '<div class="rag-warning">The cited words could not be located in this passage.</div>'
    start = citation.get("start") if span is not None else citation.get("passage_start")
    end = citation.get("end") if span is not None else citation.get("passage_end")
    return _card(
        citation.get("n"),
        citation.get("source", "?"),
        start,
        end,
        body,
        citation.get("score"),
        "rag-cited",
        citation.get("page"),
    )


def passage_card(passage: Mapping[str, Any], n: int | None = None) -> str:
    """A retrieved passage (the contract's `PassageOut` as a dict), nothing marked."""
    return _card(
        n,
        passage.get("doc", "?"),
        passage.get("start"),
        passage.get("end"),
        text_html(passage.get("text") or ""),
        passage.get("score"),
        "rag-retrieved",
        passage.get("page"),
    )


def _title(heading: str, question: str | None) -> str:
    q = f' <span class="rag-question">“{text_html(question)}”</span>' if question else ""
    return f'<div class="rag-sources-title">{text_html(heading)}{q}</div>'


def sources_html(
    question: str | None = None,
    answer: Mapping[str, Any] | None = None,
    passages: Iterable[Mapping[str, Any]] = (),
    turn: int | None = None,
) -> str:
    """The sources panel: cited passages with the cited span in <mark>, then the other retrieved ones.

    Before the answer is final (answer None) it lists the retrieved passages; for a refusal it says
    nothing was cited and lists what was retrieved, so the reader can check the refusal too.
    """
    passages = list(passages)
    parts = [f'<div class="rag-sources" data-turn="{turn}">' if turn is not None else '<div class="rag-sources">']
    if answer is None and not passages:
        parts.append(f'<div class="rag-muted">{text_html(NO_SOURCES)}</div>')
    elif answer is None:
        parts.append(_title("Retrieved for", question))
        parts.extend(passage_card(p, i) for i, p in enumerate(passages, 1))
    else:
        citations = list(answer.get("citations") or [])
        guessed = list((answer.get("best_guess") or {}).get("citations") or [])
        if not citations and guessed:  # withheld by the confidence floor: the closest guess's sources
            citations = guessed
            parts.append(_title("Closest guess for", question))
            parts.extend(citation_card(c) for c in citations)
        elif citations:
            parts.append(_title("Cited for", question))
            parts.extend(citation_card(c) for c in citations)
        else:
            parts.append(_title("Nothing cited for", question))
            parts.append(
                '<div class="rag-muted">The answer was refused, so no passage is cited. '
                "These are the passages that were searched.</div>"
            )
        cited = {(c.get("source"), c.get("passage_start")) for c in citations}
        others = [(i, p) for i, p in enumerate(passages, 1) if (p.get("doc"), p.get("start")) not in cited]
        if others:
            cards = "".join(passage_card(p, i) for i, p in others)
            if citations:
                parts.append(
                    f'<details class="rag-others"><summary>Other retrieved passages ({len(others)})</summary>{cards}</details>'
                )
            else:
                parts.append(cards)
    parts.append("</div>")
    return "".join(parts)


CSS = """
.rag-badge { display: inline-block; min-width: 1.35em; padding: 0 .4em; margin: 0 .15em; border-radius: .7em;
  background: #2563eb; color: #fff !important; font-size: .75em; font-weight: 600; line-height: 1.5em;
  text-align: center; vertical-align: .15em; cursor: pointer; }
.rag-copy, .rag-turn { display: none !important; }
.rag-details { font-size: .75em; opacity: .7; margin-top: .3em; }
.rag-details summary { cursor: pointer; }
.rag-source.rag-flash { box-shadow: 0 0 0 3px #f59e0b; transition: box-shadow .3s; }
@media (max-width: 640px) {
  #rag-sources { scroll-margin-top: 8px; }
  .rag-badge { min-width: 1.8em; line-height: 1.8em; font-size: .85em; }  /* a finger-sized target */
}
.rag-refusal { border-left: 4px solid #d97706; background: rgba(217, 119, 6, .10); padding: .45em .7em; border-radius: 4px; }
.rag-reason { font-size: .85em; opacity: .85; margin-top: .2em; }
.rag-confidence { display: inline-block; margin-left: .4em; padding: 0 .45em; border-radius: .6em; font-size: .75em;
  line-height: 1.5em; vertical-align: .1em; border: 1px solid currentColor; opacity: .8; }
.rag-confidence-sure { color: #15803d; }
.rag-confidence-likely { color: #a16207; }
.rag-confidence-unsure { color: #b91c1c; }
.rag-error { border-left: 4px solid #dc2626; background: rgba(220, 38, 38, .10); padding: .45em .7em; border-radius: 4px; }
.rag-loading { border-left: 4px solid #6b7280; background: rgba(107, 114, 128, .12); padding: .45em .7em; border-radius: 4px; }
.rag-note, .rag-meta { font-size: .78em; opacity: .7; margin-top: .35em; }
.rag-evidence { font-size: .85em; opacity: .85; margin-top: .35em; border-left: 3px solid #cbd5e1; padding-left: .5em; }
.rag-muted { opacity: .7; font-style: italic; }
.rag-cursor { animation: rag-blink 1s steps(1) infinite; margin-left: .1em; }
@keyframes rag-blink { 50% { opacity: 0; } }
.rag-sources { display: flex; flex-direction: column; gap: .6em; }
.rag-sources-title { font-weight: 600; }
.rag-question { font-weight: 400; font-style: italic; }
.rag-source { border: 1px solid rgba(127, 127, 127, .35); border-radius: 6px; padding: .5em .7em; }
.rag-source.rag-cited { border-color: #2563eb; }
.rag-source-head { display: flex; align-items: baseline; gap: .4em; flex-wrap: wrap; margin-bottom: .3em; }
.rag-doc { font-family: ui-monospace, monospace; font-size: .85em; font-weight: 600; word-break: break-all; }
.rag-where { font-size: .75em; opacity: .65; margin-left: auto; }
.rag-passage { line-height: 1.5; white-space: pre-wrap; }
.rag-passage mark { background: #fde047; color: #000; padding: 0 .1em; border-radius: 2px; }
.rag-warning { color: #b45309; font-size: .8em; margin-top: .3em; }
.rag-others summary { cursor: pointer; opacity: .8; }
.rag-others .rag-source { margin-top: .5em; }
"""
