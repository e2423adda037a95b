"""rag_eval.squad: loading, document spans, official scoring, sampling, metrics, runner and report on a tiny
hand-built SQuAD file and hand-written answers (no models); one check of the real shared file."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from rag.errors import EvalSetError, QueryError
from rag_eval import squad as sq

from .support.fakes import FakePipeline

REAL_FILE = Path("/work/shared/benchmarks/squad2/squad2-dev-10-articles.json.gz")

CATS_P0 = "The cat sat on the mat in 2010. It was black."
CATS_P1 = "Dogs bark loudly. The dog was born in 2012, in Paris."
CAPITALS_P0 = "Paris is the capital of France. Rome is the capital of Italy."


def qa(qid: str, question: str, context: str, *answers: str, plausible: tuple[str, ...] = ()) -> dict:
    spans = [{"text": a, "answer_start": context.index(a)} for a in answers]
    out = {"id": qid, "question": question, "answers": spans, "is_impossible": not answers}
    if plausible:
        out["plausible_answers"] = [{"text": a, "answer_start": context.index(a)} for a in plausible]
    return out


def tiny_squad() -> dict:
    return {
        "version": "v2.0",
        "data": [
            {
                "title": "Cats",
                "paragraphs": [
                    {
                        "context": CATS_P0,
                        "qas": [
                            qa("c1", "Where did the cat sit?", CATS_P0, "on the mat", "the mat"),
                            qa("c2", "Where did the dog sit?", CATS_P0, plausible=("on the mat",)),
                        ],
                    },
                    {
                        "context": CATS_P1,
                        "qas": [
                            qa("c3", "When was the dog born?", CATS_P1, "2012"),
                            qa("c4", "When did the dog die?", CATS_P1, plausible=("2012",)),
                        ],
                    },
                ],
            },
            {
                "title": "Capitals / Europe",
                "paragraphs": [
                    {
                        "context": CAPITALS_P0,
                        "qas": [
                            qa("e1", "What is the capital of France?", CAPITALS_P0, "Paris"),
                            qa("e2", "What is the capital of Italy?", CAPITALS_P0, "Rome"),
                            qa("e3", "What is the capital of Spain?", CAPITALS_P0, plausible=("Rome",)),
                        ],
                    }
                ],
            },
        ],
    }


@pytest.fixture
def squad_file(tmp_path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_squad()), "utf-8")
    return path


@pytest.fixture
def loaded(squad_file, tmp_path):
    articles = sq.load_squad(squad_file)
    docs = sq.write_documents(articles, tmp_path / "docs")
    return articles, docs, {q.id: q for q in sq.questions(articles, docs)}


# --- loading -----------------------------------------------------------------------------------------------
def test_load_json_and_gz(squad_file, tmp_path):
    gz = tmp_path / "tiny.json.gz"
    gz.write_bytes(gzip.compress(squad_file.read_bytes()))
    for path in (squad_file, gz):
        articles = sq.load_squad(path)
        assert [a.title for a in articles] == ["Cats", "Capitals / Europe"]
        assert [a.n_questions for a in articles] == [4, 3]
        assert articles[0].paragraphs[0].qas[1].is_impossible


def test_load_selected_articles_in_the_order_named(squad_file):
    assert [a.title for a in sq.load_squad(squad_file, ["Capitals / Europe", "Cats"])] == ["Capitals / Europe", "Cats"]


def test_unknown_article_lists_known_ones(squad_file):
    with pytest.raises(EvalSetError) as err:
        sq.load_squad(squad_file, ["Cats", "Dogs"])
    assert str(squad_file) in str(err.value) and "Dogs" in str(err.value)
    assert "known: Cats, Capitals / Europe" in str(err.value)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (json.dumps({"version": "v2.0"}).encode(), "data should be a list"),
        (json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "abc", "qas": [
            {"id": "x", "question": "q?", "answers": [{"text": "zz", "answer_start": 0}], "is_impossible": False}
        ]}]}]}).encode(), "'zz' is not at offset 0"),
        (json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "abc", "qas": [
            {"id": "x", "question": "q?", "answers": [], "is_impossible": False}
        ]}]}]}).encode(), "answerable but has no answers"),
    ],
)  # fmt: skip
def test_invalid_files_name_the_file(tmp_path, content, expected):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(EvalSetError) as err:
        sq.load_squad(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_missing_and_broken_gz(tmp_path):
    with pytest.raises(EvalSetError, match="no such file"):
        sq.load_squad(tmp_path / "nope.json")
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(EvalSetError, match="broken.json.gz: cannot read"):
        sq.load_squad(broken)


# --- documents and questions ----------------------------------------------------------------------------------
def test_documents_hold_paragraphs_and_answer_spans(loaded, tmp_path):
    articles, docs, qs = loaded
    cats, capitals = docs["Cats"], docs["Capitals / Europe"]
    assert capitals.doc_id == "Capitals_Europe.txt"
    assert (tmp_path / "docs" / "Cats.txt").read_bytes().decode("utf-8") == CATS_P0 + "\n\n" + CATS_P1
    assert cats.text[slice(*cats.paragraphs[1])] == CATS_P1
    for q in qs.values():
        text = docs[q.article].text
        assert q.doc_id == docs[q.article].doc_id
        assert [text[s:e] for s, e in q.spans] == q.answers
        assert text[slice(*q.paragraph)] in (CATS_P0, CATS_P1, CAPITALS_P0)
    assert qs["c3"].answers == ["2012"] and cats.text[slice(*qs["c3"].spans[0])] == "2012"
    assert qs["c3"].paragraph == cats.paragraphs[1]
    assert not qs["c4"].answerable and qs["c4"].spans == [] and qs["c4"].plausible == ["2012"]


def test_file_names_are_unique():
    a = sq.Article("A/B", ())
    b = sq.Article("A B", ())
    assert [d.doc_id for d in sq.layout([a, b]).values()] == ["A_B.txt", "A_B-2.txt"]


def _items(n_answerable: int, n_unanswerable: int) -> list[sq.SquadQuestion]:
    kinds = [True] * n_answerable + [False] * n_unanswerable
    random.Random(1).shuffle(kinds)
    return [sq.SquadQuestion(f"q{i}", "A", "A.txt", "?", [], [], k, (0, 1)) for i, k in enumerate(kinds)]


def test_stratified_sample_keeps_ratio_and_is_seeded():
    items = _items(12, 8)
    first = sq.stratified_sample(items, 5, random.Random("0:A"))
    assert first == sq.stratified_sample(items, 5, random.Random("0:A"))
    assert sum(q.answerable for q in first) == 3 and len(first) == 5
    assert [q.id for q in first] == sorted((q.id for q in first), key=lambda i: int(i[1:]))  # file order
    samples = {tuple(q.id for q in sq.stratified_sample(items, 5, random.Random(f"{s}:A"))) for s in range(5)}
    assert len(samples) > 1
    assert sum(q.answerable for q in sq.stratified_sample(_items(19, 1), 2, random.Random(0))) == 1
    assert sq.stratified_sample(items, 50, random.Random(0)) == items


def test_questions_limit_per_article(loaded):
    articles, docs, _ = loaded
    picked = sq.questions(articles, docs, limit_per_article=2, seed=3)
    assert picked == sq.questions(articles, docs, limit_per_article=2, seed=3)
    for title in ("Cats", "Capitals / Europe"):
        mine = [q for q in picked if q.article == title]
        assert len(mine) == 2 and {q.answerable for q in mine} == {True, False}
    with pytest.raises(ValueError):
        sq.questions(articles, docs, limit_per_article=0)


# --- official scoring ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [("The  Cat!", "cat"), ("a An THE", ""), ("Hello, World.", "hello world"), ("the U.S.-led  war", "usled war"),
     ("theatre", "theatre"), ("  Ünïcode—dash ", "ünïcode—dash")],
)  # fmt: skip
def test_normalize_answer_matches_official(text, expected):
    assert sq.normalize_answer(text) == expected


def test_exact_and_f1():
    assert sq.exact("The Cat.", ["cat"]) == 1
    assert sq.exact("the cat sat", ["cat"]) == 0
    assert sq.f1("the cat sat", ["cat sat on mat"]) == pytest.approx(2 / 3)  # p = 1, r = 1/2
    assert sq.f1("black cat", ["dog", "a black cat"]) == 1.0  # max over golds
    assert sq.f1("cat cat dog", ["cat"]) == pytest.approx(0.5)  # p = 1/3, r = 1
    assert sq.f1("dog", ["cat"]) == 0.0
    # unanswerable: the gold is "", a refusal predicts ""
    assert sq.exact("", []) == 1 and sq.f1("", []) == 1.0
    assert sq.exact("Paris", []) == 0 and sq.f1("Paris", []) == 0.0
    assert sq.f1("", ["Paris"]) == 0.0
    assert sq.exact("", ["the"]) == 1  # as the official script: golds normalising to nothing mean no answer


def test_contains_on_token_boundaries():
    assert not sq.contains("It happened in 2010.", ["10"])
    assert sq.contains("It happened in 2010.", ["2010"])
    assert sq.contains("The mat, on the floor!", ["on the floor", "rug"])
    assert not sq.contains("the doormat", ["mat"])
    assert not sq.contains("", ["mat"])


# --- score and metrics ------------------------------------------------------------------------------------------
def passage(doc: str, start: int, end: int) -> dict:
    return {"doc": doc, "chunk_id": f"{doc}#{start}", "start": start, "end": end, "text": "", "score": 0.1}


def cite(doc: str, start: int, end: int, n: int = 1) -> dict:
    return {
        "n": n,
        "source": doc,
        "chunk_id": f"{doc}#0",
        "start": start,
        "end": end,
        "text": "",
        "score": 0.1,
        "quote": "",
        "passage_start": 0,
        "passage_end": 0,
    }


def reply(text: str, citations=(), passages=(), refused: bool = False, ms: float = 1000.0) -> dict:
    return {
        "question": "q",
        "answer": text,
        "refused": refused,
        "citations": list(citations),
        "evidence": [],
        "model": "fake",
        "mode": "extractive",
        "timings": {"total_ms": ms},
        "reason": "low" if refused else None,
        "passages": list(passages),
    }


def test_score_answered_answerable(loaded):
    _, docs, qs = loaded
    q = qs["c3"]  # "2012" in the second Cats paragraph
    s, e = q.spans[0]
    first, second = docs["Cats"].paragraphs
    passages = [passage("Cats.txt", *first), passage("Other.txt", *second), passage("Cats.txt", *second)]
    r = sq.score(q, reply("born in [1] 2012 [2]", [cite("Cats.txt", s - 3, s + 1)], passages))
    assert r["prediction"] == "born in 2012"  # markers removed, their digits do not count
    assert (r["em"], r["contains"], r["cited_overlap"], r["rank"], r["refused"]) == (0, True, True, 3, False)
    assert r["f1"] == pytest.approx(0.5)
    assert r["seconds"] == 1.0  # from timings when not measured


def test_score_citation_must_overlap_a_gold_span_of_the_right_document(loaded):
    _, _, qs = loaded
    q = qs["c1"]
    s, e = q.spans[0]
    touching = sq.score(q, reply("on the mat", [cite("Cats.txt", e, e + 5)]))  # [start, end) only touches
    assert touching["em"] == 1 and touching["cited_overlap"] is False and touching["rank"] is None
    other_doc = sq.score(q, reply("on the mat", [cite("Other.txt", s, e)]))
    assert other_doc["cited_overlap"] is False
    # a passage holding only part of the gold span is not a retrieval hit
    assert sq.score(q, reply("x", passages=[passage("Cats.txt", 0, s + 2)]))["rank"] is None


def test_score_refusals(loaded):
    _, docs, qs = loaded
    refused_un = sq.score(qs["c4"], reply("The documents don't say.", refused=True))
    assert (refused_un["prediction"], refused_un["em"], refused_un["f1"]) == ("", 1, 1.0)
    assert refused_un["contains"] is None and refused_un["cited_overlap"] is None and refused_un["rank"] is None
    answered_un = sq.score(qs["c4"], reply("2012 [1]"))
    assert (answered_un["em"], answered_un["f1"], answered_un["refused"]) == (0, 0.0, False)
    refused_ans = sq.score(
        qs["c3"],
        reply("The documents don't say.", refused=True, passages=[passage("Cats.txt", *docs["Cats"].paragraphs[1])]),
    )
    assert (refused_ans["em"], refused_ans["f1"], refused_ans["contains"]) == (0, 0.0, False)
    assert refused_ans["cited_overlap"] is None and refused_ans["rank"] == 1


def hand_records(qs: dict) -> list[dict]:
    """c1 exact with an overlapping citation (rank 1); c3 contained but not exact, cited elsewhere (rank 4);
    e1 falsely refused (rank 2); e2 wrong (not retrieved); c2 and e3 refused; c4 answered (wrongly)."""

    def span_passage(q):
        return passage(q.doc_id, q.spans[0][0], q.spans[0][1])

    c1, c3, e1 = qs["c1"], qs["c3"], qs["e1"]
    other = passage("Other.txt", 0, 5)
    return [
        sq.score(c1, reply("on the mat [1]", [cite(c1.doc_id, *c1.spans[0])], [span_passage(c1)]), 1.0),
        sq.score(qs["c2"], reply("no", refused=True), 2.0),
        sq.score(c3, reply("in 2012 [1]", [cite(c3.doc_id, 0, 3)], [other, other, other, span_passage(c3)]), 3.0),
        sq.score(qs["c4"], reply("2012 [1]"), 4.0),
        sq.score(e1, reply("no", refused=True, passages=[other, span_passage(e1)]), 5.0),
        sq.score(qs["e2"], reply("Madrid [1]", [cite(qs["e2"].doc_id, 0, 5)]), 6.0),
        sq.score(qs["e3"], reply("no", refused=True), 7.0),
    ]


def test_metrics_overall_per_article_and_baseline(loaded):
    _, _, qs = loaded
    m = sq.metrics(hand_records(qs))
    o = m["overall"]
    assert (o["questions"], o["answerable"], o["unanswerable"], o["errors"], o["refused"]) == (7, 4, 3, 0, 3)
    assert o["answerable_em"] == pytest.approx(1 / 4)  # c1
    assert o["answerable_f1"] == pytest.approx((1 + 2 / 3) / 4)  # c1 1, c3 "in 2012" vs "2012": 2/3
    assert o["em"] == pytest.approx(3 / 7)  # c1, c2, e3
    assert o["f1"] == pytest.approx((1 + 1 + 2 / 3 + 1) / 7)
    assert o["containment"] == pytest.approx(2 / 4)  # c1, c3
    assert o["refusal_recall"] == pytest.approx(2 / 3)  # c2, e3 of c2, c4, e3
    assert o["false_refusal_rate"] == pytest.approx(1 / 4)  # e1
    assert o["cited_overlap"] == pytest.approx(1 / 3)  # c1 of the answered answerable c1, c3, e2
    assert (o["hit@1"], o["hit@3"], o["hit@5"]) == (pytest.approx(1 / 4), pytest.approx(2 / 4), pytest.approx(3 / 4))
    assert o["median_seconds"] == 4.0 and o["p95_seconds"] == pytest.approx(6.7)
    assert list(m["per_article"]) == ["Cats", "Capitals / Europe"]
    cats = m["per_article"]["Cats"]
    assert (cats["questions"], cats["answerable_em"], cats["refusal_recall"], cats["hit@1"]) == (4, 0.5, 0.5, 0.5)
    base = m["baseline"]["overall"]
    assert base["em"] == base["f1"] == pytest.approx(3 / 7)  # the unanswerable share
    assert base["answerable_f1"] == 0.0 and base["containment"] == 0.0
    assert base["refusal_recall"] == 1.0 and base["false_refusal_rate"] == 1.0
    assert base["cited_overlap"] is None and base["hit@1"] is None and base["median_seconds"] is None
    assert m["baseline"]["per_article"]["Capitals / Europe"]["em"] == pytest.approx(1 / 3)


def test_metrics_of_nothing_are_none():
    o = sq.metrics([])["overall"]
    assert o["questions"] == 0 and o["em"] is None and o["hit@1"] is None and o["median_seconds"] is None


# --- runner, report, chart ---------------------------------------------------------------------------------------
def table_pipeline(answers: dict[str, dict], reject: str | None = None) -> FakePipeline:
    """Answers from a table by question (a refusal for the rest); raises QueryError for `reject`; records k."""

    def answer(question: str):
        if question == reject:
            raise QueryError("question too long")
        return Dumps(answers.get(question, reply("The documents don't say.", refused=True)))

    return FakePipeline(answer=answer)


class Dumps:
    """An answer as the pipeline returns it: an object whose model_dump() is the contract's dict."""

    def __init__(self, data: dict):
        self.data = data

    def model_dump(self) -> dict:
        return self.data


def test_run_scores_each_and_records_rag_errors(loaded):
    _, _, qs = loaded
    pipe = table_pipeline(
        {"Where did the cat sit?": reply("on the mat [1]"), "What is the capital of France?": reply("Paris")},
        reject="When was the dog born?",
    )
    records = sq.run(pipe, list(qs.values()), k=4)
    assert [r["id"] for r in records] == list(qs) and {k for _, k in pipe.calls} == {4}
    by_id = {r["id"]: r for r in records}
    assert by_id["c1"]["em"] == 1 and by_id["e1"]["em"] == 1 and by_id["c2"]["refused"]
    assert by_id["c3"]["error"] == "QueryError: question too long" and by_id["c3"]["em"] is None
    assert all(r["seconds"] is not None and r["seconds"] < 1 for r in records)  # measured, not from timings
    m = sq.metrics(records)
    o, base = m["overall"], m["baseline"]["overall"]
    assert (o["questions"], o["errors"], o["answerable"]) == (7, 1, 3)
    assert (base["errors"], base["answerable"], base["unanswerable"]) == (1, 3, 3)  # the same questions scored
    assert o["answerable_em"] == pytest.approx(2 / 3) and o["refusal_recall"] == 1.0
    json.dumps(records)  # results.json must hold them


def test_retrieval_rank_read_from_the_answers_passages_or_left_unscored(loaded):
    _, docs, qs = loaded
    q = qs["c3"]
    listed = reply("2012", passages=[passage("Other.txt", 0, 5), passage(q.doc_id, *docs["Cats"].paragraphs[1])])
    records = sq.run(table_pipeline({q.question: listed}), [q], k=3)
    assert records[0]["rank"] == 2 and records[0]["retrieved"] == 2
    bare = {k: v for k, v in reply("2012").items() if k != "passages"}
    unknown = sq.score(q, bare)
    assert unknown["rank"] is None and unknown["retrieved"] is None
    assert sq.metrics([unknown])["overall"]["hit@5"] is None  # not 0: retrieval was not reported


def test_report_and_chart(loaded, tmp_path):
    _, _, qs = loaded
    records = hand_records(qs) + [sq.error_record(qs["e1"], QueryError("too long"), 0.1)]
    results = sq.results(records, {"file": "tiny.json", "k": 3, "limit": None, "seed": 0, "settings": {"mode": "auto"}})
    report = sq.render_report(results)
    assert "| metric | pipeline | refuse everything |" in report
    assert "## Per article" in report and "| Capitals / Europe |" in report and "*refuse everything*" in report
    assert "| answerable F1 | 41.7 | 0.0 |" in report
    assert "When did the dog die?" in report  # an unanswerable question answered
    assert "What is the capital of Italy?" in report and "Rome" in report and "Madrid" in report  # wrong answer
    assert "QueryError: too long" in report
    chart = tmp_path / "chart.png"
    sq.write_chart(results, chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- index and command line ----------------------------------------------------------------------------------------
def test_build_index_with_the_real_ingest(loaded, tmp_path, keyword_embedder):
    articles, _, _ = loaded
    work = tmp_path / "work"
    (work / "docs").mkdir(parents=True)
    (work / "docs" / "leftover.txt").write_text("from an earlier run", "utf-8")
    settings = sq.build_index(articles, work, {"k": 2, "chunk_size": 60}, embedder=keyword_embedder)
    assert settings.seeds_dir == work / "docs" and settings.index_dir == work / "index" and settings.k == 2
    assert sorted(p.name for p in (work / "docs").iterdir()) == ["Capitals_Europe.txt", "Cats.txt"]
    from rag.pipeline import load_index

    index = load_index(settings, keyword_embedder)
    assert sorted(index.documents) == ["Capitals_Europe.txt", "Cats.txt"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{missing}", "--out", "{out}"], "no such file"),
        (["{file}", "--articles", "Dogs", "--out", "{out}"], "unknown article(s) Dogs; known: Cats"),
        (["{file}", "--limit", "0", "--out", "{out}"], "--limit must be at least 1"),
        (["{file}", "--k", "0", "--out", "{out}"], "--k must be at least 1"),
        (["{file}", "--limit", "x", "--out", "{out}"], "argument --limit: invalid int value"),
        (["{file}"], "the following arguments are required: --out"),
    ],
)
def test_main_bad_arguments_exit_2_with_one_line(squad_file, tmp_path, capsys, argv, message):
    values = {"file": squad_file, "missing": tmp_path / "missing.json", "out": tmp_path / "out"}
    code = call_main([a.format(**values) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def call_main(argv: list[str]) -> int:
    try:
        return sq.main(argv)
    except SystemExit as exit_:  # argparse's own errors
        return exit_.code


# --- the real shared file -------------------------------------------------------------------------------------------
@pytest.mark.skipif(not REAL_FILE.exists(), reason="shared SQuAD file not present")
def test_real_file_every_span_checks_out(tmp_path):
    articles = sq.load_squad(REAL_FILE)
    assert len(articles) == 10 and "Warsaw" in [a.title for a in articles]
    docs = sq.write_documents(articles, tmp_path)
    qs = sq.questions(articles, docs)
    assert len(qs) == 3960 and sum(not q.answerable for q in qs) == 2039
    written = {d.doc_id: (tmp_path / d.doc_id).read_bytes().decode("utf-8") for d in docs.values()}
    assert written == {d.doc_id: d.text for d in docs.values()}
    for q in qs:
        text = written[q.doc_id]
        assert q.answerable == bool(q.spans)
        assert all(text[s:e] in q.answers for s, e in q.spans)
        assert q.paragraph[0] <= min((s for s, _ in q.spans), default=q.paragraph[0])
    sample = sq.questions(articles, docs, limit_per_article=20, seed=7)
    assert len(sample) == 200 and sample == sq.questions(articles, docs, limit_per_article=20, seed=7)


def test_rag_eval_squad_reports_a_bad_file_in_one_line(tmp_path, capsys):
    from rag.cli import main as rag_main

    assert rag_main(["eval", "--squad", str(tmp_path / "missing.json"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.json" in err[0]


def test_the_results_name_the_reader_that_answered():
    """fit_decider refuses calibration answers from a reader trained on the same article: the config says which."""
    from types import SimpleNamespace

    from rag_eval.squad.running import _reader_config

    meta = {"created": "2026-12-07", "commit": "abc", "train_articles": ["Warsaw"], "lr": 1e-4}
    assert _reader_config(SimpleNamespace(meta=meta)) == {
        "created": "2026-12-07",
        "commit": "abc",
        "train_articles": ["Warsaw"],
    }
    assert _reader_config(None) is None
