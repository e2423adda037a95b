"""The `[n]` citation marker, in one place (standard library only: eval's command modules import it)."""

from __future__ import annotations

import re

MARKER = re.compile(r"\[(\d+)\]")


def marker(n: int) -> str:
    return f"[{n}]"


def find_markers(text: str) -> list[int]:
    """Passage numbers cited in text, in order of appearance."""
    return [int(x) for x in MARKER.findall(text)]


def strip_markers(text: str) -> str:
    """Text as a reader sees it, without "[n]" markers (their digits must not match a numeric answer)."""
    return MARKER.sub(" ", text)
