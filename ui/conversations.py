"""Conversations kept in the reader's browser (Gradio's `BrowserState`, i.e. localStorage), so a reload or
a closed tab does not lose them, and earlier ones can be reopened or deleted. No Gradio here (tested directly).

Why the browser and not the server: the server has no accounts and may be restarted; a reader's questions
are theirs. The stored value is one JSON object:

    {"current": "<id>", "conversations": {"<id>": {"title", "updated", "chat", "history"}}}

`chat` is the Chatbot's messages, `history` the turns (rag/followup.py rewrites and each turn's sources
panel), so reopening a conversation shows it as it was, sources included. At most `MAX_CONVERSATIONS` are
kept (the least recently used are dropped), so localStorage (~5 MB per site) is not filled.
"""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

MAX_CONVERSATIONS = 30
TITLE_CHARS = 60
UNTITLED = "New conversation"


def empty() -> dict:
    return {"current": None, "conversations": {}}


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def _valid(saved: Any) -> dict:
    """The stored value, or an empty one if it is missing or not what this page wrote (an older page)."""
    if not isinstance(saved, dict) or not isinstance(saved.get("conversations"), dict):
        return empty()
    good = {
        k: v
        for k, v in saved["conversations"].items()
        if isinstance(v, dict) and isinstance(v.get("chat"), list) and isinstance(v.get("history"), list)
    }
    return {"current": saved.get("current") if saved.get("current") in good else None, "conversations": good}


def title_of(history: list) -> str:
    first = next((t.get("question") for t in history if t.get("question")), None)
    if not first:
        return UNTITLED
    first = " ".join(first.split())
    return first if len(first) <= TITLE_CHARS else first[: TITLE_CHARS - 1].rstrip() + "…"


def store(saved: Any, conversation: str, chat: list, history: list, now: float | None = None) -> dict:
    """`saved` with `conversation` set to (chat, history) and made current; the oldest dropped past the limit."""
    out = copy.deepcopy(_valid(saved))
    convs = out["conversations"]
    convs[conversation] = {
        "title": title_of(history),
        "updated": time.time() if now is None else now,
        "chat": list(chat),
        "history": list(history),
    }
    out["current"] = conversation
    if len(convs) > MAX_CONVERSATIONS:
        for old in sorted(convs, key=lambda k: convs[k].get("updated", 0))[: len(convs) - MAX_CONVERSATIONS]:
            del convs[old]
    return out


def delete(saved: Any, conversation: str | None) -> dict:
    out = copy.deepcopy(_valid(saved))
    out["conversations"].pop(conversation, None)
    if out["current"] == conversation:
        out["current"] = None
    return out


def opened(saved: Any, conversation: str | None) -> tuple[str, list, list]:
    """(id, chat, history) of `conversation` (default: the current one); a new empty one if there is none."""
    valid = _valid(saved)
    conversation = conversation or valid["current"]
    entry = valid["conversations"].get(conversation) if conversation else None
    if entry is None:
        return new_id(), [], []
    return conversation, entry["chat"], entry["history"]


def choices(saved: Any) -> list[tuple[str, str]]:
    """(label, id) pairs for the list of conversations, the most recently used first."""
    convs = _valid(saved)["conversations"]
    ordered = sorted(convs.items(), key=lambda kv: kv[1].get("updated", 0), reverse=True)
    out = []
    for cid, entry in ordered:
        when = time.strftime("%d %b %H:%M", time.localtime(entry.get("updated", 0)))
        out.append((f"{entry.get('title') or UNTITLED} · {when}", cid))
    return out
