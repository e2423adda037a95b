"""Small behaving fakes for the generator interface."""

from __future__ import annotations

import re


class ScriptedGenerator:
    """Replies by calling `reply(question_text, shown_text, messages)`; records every call."""

    model_name = "scripted-fake.gguf"
    is_small = True

    def __init__(self, reply):
        self.reply = reply
        self.calls: list[dict] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, messages, grammar, max_tokens):
        user = messages[-1]["content"]
        question = re.search(r"Question: (.*)", user).group(1)
        shown = re.findall(r"^\[(\d+)\] (.*)$", user, re.M)
        self.calls.append({"messages": messages, "grammar": grammar, "question": question, "shown": shown})
        out = self.reply(question, shown, messages)
        for i in range(0, len(out), 4):  # stream in pieces, like llama.cpp
            yield out[i : i + 4]


def copy_phrase(phrase: str):
    """A generator that copies `phrase` from the shown passage if present, else its first three words."""

    def reply(question, shown, messages):
        n, text = shown[0]
        if phrase in text:
            return f"[{n}] {phrase}"
        return f"[{n}] " + " ".join(text.split()[:3])

    return reply
