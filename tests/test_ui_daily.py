"""The chat's daily-use pieces without a browser: stored conversations, the plain text a copy gives, and
source cards that keep internal scores under "details"."""

from __future__ import annotations

import html

from ui import conversations, render

from .test_ui import final_answer


def test_conversations_are_stored_listed_reopened_and_deleted():
    saved = conversations.store(
        None, "a", [{"role": "user", "content": "q1"}], [{"question": "When did it happen?"}], now=1
    )
    saved = conversations.store(saved, "b", [], [{"question": "Who translated it?"}], now=2)
    assert [cid for _, cid in conversations.choices(saved)] == ["b", "a"]
    assert conversations.choices(saved)[0][0].startswith("Who translated it? · ")
    cid, chat, history = conversations.opened(saved, "a")
    assert (
        cid == "a" and chat == [{"role": "user", "content": "q1"}] and history[0]["question"] == "When did it happen?"
    )
    assert conversations.opened(saved, None)[0] == "b"  # the current one
    saved = conversations.delete(saved, "b")
    assert [cid for _, cid in conversations.choices(saved)] == ["a"] and saved["current"] is None


def test_conversations_are_capped_and_junk_is_ignored():
    saved = None
    for i in range(conversations.MAX_CONVERSATIONS + 5):
        saved = conversations.store(saved, f"c{i}", [], [{"question": f"q{i}"}], now=i)
    ids = [cid for _, cid in conversations.choices(saved)]
    assert (
        len(ids) == conversations.MAX_CONVERSATIONS
        and "c0" not in ids
        and ids[0] == f"c{conversations.MAX_CONVERSATIONS + 4}"
    )
    assert conversations.choices("test") == [] and conversations.opened({"conversations": {"x": 1}}, "x")[1] == []
    assert conversations.title_of([{"question": "x" * 100}]).endswith("…")


def test_copy_text_is_the_answer_then_numbered_sources_with_file_page_and_quote():
    answer = final_answer()
    answer["citations"][0]["page"] = 3
    assert render.plain_text(answer) == (
        "Wednesday, December 6, 2023 [1]\n\nSources:\n[1] 000_d74c9cd70636ffa8.txt, page 3: “Wednesday, December 6, 2023”"
    )
    out = render.answer_html(answer, turn=5)
    copy = html.unescape(out.split('title="', 1)[1].split('"', 1)[0])
    assert copy == render.plain_text(answer) and "\n" not in out.split("</span>", 1)[0]  # no raw newline in Markdown
    assert "rag-turn-5" in out
    refused = final_answer(refuse=True)
    assert render.plain_text(refused).startswith(refused["answer"]) and "Why: " in render.plain_text(refused)


def test_source_cards_show_file_and_page_and_keep_the_score_under_details():
    answer = final_answer()
    answer["citations"][0]["page"] = 2
    panel = render.sources_html("q", answer, [], turn=1)
    head, details = panel.split('<details class="rag-details">', 1)
    assert "score" not in head and "page 2" in head and 'data-n="1"' in head and 'data-turn="1"' in head
    assert "retrieval score" in details.split("</details>")[0]
