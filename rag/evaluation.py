"""`rag eval`: run the hand-written questions through the real pipeline and score what comes back.

The runner takes any object shaped like `rag.pipeline.Pipeline` (`.ask`, `.settings`, `.embedder.id`,
`.generator.path`, `.answerer.mode`), so every metric, the report and the gates can be tested with a fake
and no model. Only the standard library is imported at module level: the CLI imports this module to build
its parser, and `rag --help` must stay instant.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

DEFAULT_QUESTIONS = Path("eval") / "questions.jsonl"
RUNS_DIR = Path("eval") / "runs"
EXIT_GATE = 1  # a --min/--max threshold was not met (usage errors exit 2 through rag.cli)
Z95 = 1.959963984540054

REASONS = (
    "retrieval_miss",
    "wrong_answer",
    "no_citation",
    "invalid_citation",
    "unsupported_citation",
    "false_refusal",
    "missed_refusal",
    "forbidden_value",
)

# name -> (label, higher is better, measured over)
METRICS: dict[str, tuple[str, bool, str]] = {
    "accuracy": ("answer accuracy", True, "answerable"),
    "f1": ("token F1", True, "answerable"),
    "hit@1": ("retrieval hit@1", True, "answerable"),
    "hit@k": ("retrieval hit@k", True, "answerable"),
    "mrr": ("retrieval MRR", True, "answerable"),
    "citation_validity": ("citation validity", True, "answered"),
    "citation_hit": ("citation hit", True, "answered answerable"),
    "refusal_recall": ("refusal recall", True, "unanswerable"),
    "refusal_precision": ("refusal precision", True, "refused"),
    "false_refusal_rate": ("false-refusal rate", False, "answerable"),
    "truthfulness": ("truthfulness (CRAG)", True, "all"),
    "forbidden_rate": ("forbidden-value rate", False, "with forbidden values"),
    "median_seconds": ("median s/question", False, "all"),
    "p95_seconds": ("p95 s/question", False, "all"),
}
CHART_METRICS = ("accuracy", "hit@k", "citation_hit", "refusal_recall", "truthfulness")

_MARKER = re.compile(r"\[(\d+)\]")
_PUNCT = re.compile(r"[^\w\s]|_")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


# --- text matching ---------------------------------------------------------------------------------------
def normalize(text: str) -> str:
    """SQuAD-style: lower-case, punctuation and articles to spaces, whitespace collapsed.

    Punctuation becomes a space rather than vanishing so "OpenAI's" still holds the word "openai".
    """
    text = _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).lower())
    return " ".join(_ARTICLES.sub(" ", text).split())


def strip_markers(text: str) -> str:
    """The answer as a reader sees it, without "[1]" markers (whose digits could match a numeric alias)."""
    return _MARKER.sub(" ", text)


def contains_phrase(text: str, phrase: str) -> bool:
    """Whole-word containment after normalization, so the alias "10" does not match inside "2010"."""
    needle = normalize(phrase)
    return bool(needle) and f" {needle} " in f" {normalize(text)} "


def missing_parts(answer_text: str, parts: list[list[str]]) -> list[list[str]]:
    """The answer parts none of whose aliases appear in the answer (empty: the answer is correct)."""
    text = strip_markers(answer_text)
    return [part for part in parts if not any(contains_phrase(text, alias) for alias in part)]


def is_correct(answer_text: str, parts: list[list[str]]) -> bool:
    return bool(parts) and not missing_parts(answer_text, parts)


def token_f1(prediction: str, truth: str) -> float:
    """SQuAD token F1: harmonic mean of token precision and recall over the normalized bags of words."""
    pred, gold = normalize(prediction).split(), normalize(truth).split()
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def answer_f1(answer_text: str, parts: list[list[str]]) -> float:
    """Best alias per part, averaged over parts: a two-part answer that names one part scores about half."""
    if not parts:
        return 0.0
    text = strip_markers(answer_text)
    return statistics.fmean(max(token_f1(text, alias) for alias in part) for part in parts)


def forbidden_found(answer: dict, forbidden: list[str]) -> list[str]:
    """Forbidden strings stated by a non-refused answer (a refusal states nothing)."""
    if answer["refused"]:
        return []
    text = strip_markers(answer["answer"])
    return [f for f in forbidden if contains_phrase(text, f)]


# --- citations ---------------------------------------------------------------------------------------------
def SourceReader(seeds_dir: Path, index_dir: Path | None = None):  # noqa: N802 - kept name, now a factory
    """Reads (and caches) the text each citation's offsets index: the original file by the one decoding
    rule, or the extracted text the index stored for PDF/HTML/DOCX (rag/sources.py)."""
    from rag.sources import SourceTexts

    return SourceTexts(seeds_dir, index_dir)


def has_citation(answer: dict) -> bool:
    return bool(answer["citations"] or _MARKER.search(answer["answer"]))


def citation_problems(answer: dict, read_source: Callable[[str], str | None]) -> list[str]:
    """Why a reader could not check this answer's citations (empty list: every citation checks out).

    Every [n] marker must resolve to a citation, a cited answer must carry a marker, and each citation's
    source[start:end] must be exactly its quote.
    """
    problems = []
    by_n = {c["n"]: c for c in answer["citations"]}
    markers = sorted({int(n) for n in _MARKER.findall(answer["answer"])})
    problems += [f"marker [{n}] has no citation" for n in markers if n not in by_n]
    if by_n and not markers:
        problems.append("citations are listed but the answer has no [n] marker")
    for c in answer["citations"]:
        source = read_source(c["source"])
        if source is None:
            problems.append(f"[{c['n']}] source {c['source']!r} cannot be read")
            continue
        actual = source[c["start"] : c["end"]]
        if not c["quote"] or actual != c["quote"]:
            problems.append(f"[{c['n']}] {c['source']}[{c['start']}:{c['end']}] is {actual!r}, quote is {c['quote']!r}")
    return problems


def enclosing_sentences(text: str, start: int, end: int) -> str:
    """The sentence(s) of a passage that the span [start, end) sits in, so a short quote gets its context."""
    from rag.chunking import split_sentences

    touching = [(s, e) for s, e in split_sentences(text) if s < end and e > start]
    if not touching:
        return text[max(start, 0) : end]
    return text[touching[0][0] : touching[-1][1]]


def cites_evidence(answer: dict, evidence: list[str]) -> bool:
    """Some cited span, or the sentence it sits in, contains or overlaps an evidence string."""
    from rag.evalset import covers

    for c in answer["citations"]:
        offset = c["passage_start"]
        sentence = enclosing_sentences(c["text"], c["start"] - offset, c["end"] - offset)
        if any(covers(c["quote"], e) or covers(sentence, e) for e in evidence):
            return True
    return False


# --- one question ----------------------------------------------------------------------------------------------
def crag_score(answerable: bool, refused: bool, correct: bool) -> int:
    """CRAG truthfulness: +1 right, 0 an honest refusal, -1 wrong or hallucinated.

    For a question the documents cannot answer, refusing is the right answer (+1) and any answer is -1.
    """
    if not answerable:
        return 1 if refused else -1
    if refused:
        return 0
    return 1 if correct else -1


def judge(question, answer: dict, passages: list, seconds: float, read_source) -> dict:
    """Score one answer against its question and list every reason it fails (a question can fail several ways)."""
    from rag.evalset import evidence_rank

    refused = bool(answer["refused"])
    failures: list[dict] = []

    def fail(reason: str, detail: str) -> None:
        failures.append({"reason": reason, "detail": detail})

    rank = correct = f1 = hit = None
    if question.answerable:
        rank = evidence_rank(passages, question.evidence)
        if rank is None:
            fail("retrieval_miss", f"no retrieved passage ({len(passages)}) holds the evidence {question.evidence[0]!r}")
        missing = missing_parts(answer["answer"], question.answers)
        correct = not refused and not missing
        f1 = 0.0 if refused else answer_f1(answer["answer"], question.answers)
        if refused:
            fail("false_refusal", f"refused: {answer.get('reason') or 'no reason given'}")
        elif missing:
            fail("wrong_answer", f"{answer['answer']!r} lacks " + "; ".join(" / ".join(p) for p in missing))
    elif not refused:
        fail("missed_refusal", f"answered {answer['answer']!r}")

    valid = None
    if not refused:
        problems = citation_problems(answer, read_source)
        valid = has_citation(answer) and not problems
        if not has_citation(answer):
            fail("no_citation", f"{answer['answer']!r} cites nothing")
        elif problems:
            fail("invalid_citation", "; ".join(problems))
        if question.answerable and answer["citations"]:
            hit = cites_evidence(answer, question.evidence)
            if not hit:
                quotes = ", ".join(repr(c["quote"]) for c in answer["citations"])
                fail("unsupported_citation", f"cited {quotes}; evidence is {question.evidence[0]!r}")

    forbidden = forbidden_found(answer, question.forbidden)
    if forbidden:
        fail("forbidden_value", f"answer states {', '.join(map(repr, forbidden))}")
    return {
        "answerable": question.answerable,
        "refused": refused,
        "correct": correct,
        "f1": f1,
        "rank": rank,
        "citation_valid": valid,
        "citation_hit": hit,
        "has_forbidden": bool(question.forbidden),
        "forbidden_found": forbidden,
        "truthfulness": crag_score(question.answerable, refused, bool(correct) and not forbidden),
        "seconds": round(seconds, 3),
        "failures": failures,
    }


# --- aggregate metrics ------------------------------------------------------------------------------------------
def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval: honest bounds for a proportion on a few dozen questions (never outside [0, 1])."""
    if n == 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion(successes: int, n: int) -> dict:
    ci = wilson(successes, n)
    return {"value": successes / n if n else None, "n": n, "ci": list(ci) if ci else None}


def mean(values: list[float]) -> dict:
    return {"value": statistics.fmean(values) if values else None, "n": len(values), "ci": None}


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); with one value it is that value."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def compute_metrics(judgements: list[dict], k: int) -> dict:
    """Every metric over the right questions: answer and retrieval metrics over answerable ones, refusal recall
    over unanswerable ones, refusal precision over refusals, citation metrics over the answers given."""
    from rag.evalset import retrieval_metrics

    answerable = [j for j in judgements if j["answerable"]]
    unanswerable = [j for j in judgements if not j["answerable"]]
    refused = [j for j in judgements if j["refused"]]
    answered = [j for j in judgements if not j["refused"]]
    cited = [j for j in answered if j["citation_hit"] is not None]
    guarded = [j for j in judgements if j["has_forbidden"]]
    seconds = [j["seconds"] for j in judgements]
    n = len(answerable)
    ret = retrieval_metrics([j["rank"] for j in answerable], k)

    def share(items: list[dict], test: Callable[[dict], bool]) -> dict:
        return proportion(sum(1 for j in items if test(j)), len(items))

    return {
        "accuracy": share(answerable, lambda j: j["correct"]),
        "f1": mean([j["f1"] for j in answerable]),
        "hit@1": proportion(round(ret["hit@1"] * n), n),
        "hit@k": proportion(round(ret[f"hit@{k}"] * n), n),
        "mrr": {"value": ret["mrr"] if n else None, "n": n, "ci": None},
        "citation_validity": share(answered, lambda j: j["citation_valid"]),
        "citation_hit": share(cited, lambda j: j["citation_hit"]),
        "refusal_recall": share(unanswerable, lambda j: j["refused"]),
        "refusal_precision": share(refused, lambda j: not j["answerable"]),
        "false_refusal_rate": share(answerable, lambda j: j["refused"]),
        "truthfulness": mean([j["truthfulness"] for j in judgements]),
        "forbidden_rate": share(guarded, lambda j: bool(j["forbidden_found"])),
        "median_seconds": {"value": statistics.median(seconds) if seconds else None, "n": len(seconds), "ci": None},
        "p95_seconds": {"value": percentile(seconds, 95), "n": len(seconds), "ci": None},
    }


def metrics_by_category(records: list[dict], k: int) -> dict:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[r["category"]].append(r["judgement"])
    return {category: compute_metrics(js, k) for category, js in groups.items()}


# --- running -------------------------------------------------------------------------------------------------------
def ask_all(pipeline, questions, k: int, progress: Callable[[Iterable], Iterable] = iter) -> list[dict]:
    """Ask every question through the one loaded pipeline and judge each answer as it comes."""
    read_source = SourceReader(pipeline.settings.seeds_dir, pipeline.settings.index_dir)
    records = []
    for q in progress(questions):
        t0 = time.perf_counter()
        answer = pipeline.ask(q.question, k)
        seconds = time.perf_counter() - t0
        raw = answer.to_dict()
        records.append(
            {
                "id": q.id,
                "category": q.category,
                "question": q.question,
                "answerable": q.answerable,
                "expected": q.answers,
                "evidence": q.evidence,
                "forbidden": q.forbidden,
                "retrieved": [p.chunk_id for p in answer.passages],
                "answer": raw,
                "judgement": judge(q, raw, answer.passages, seconds, read_source),
            }
        )
    return records


def run_config(pipeline, k: int, questions_path: Path, n_questions: int) -> dict:
    """What a result depends on, so two runs can be told apart (model bytes, embedder, chunking, k, mode)."""
    from rag.generation import file_sha256

    s = pipeline.settings
    model_path = Path(pipeline.generator.path)
    return {
        "model": model_path.name,
        "model_path": str(model_path),
        "model_sha256": file_sha256(model_path),
        "embedder": pipeline.embedder.id,
        "chunk_size": s.chunk_size,
        "chunk_overlap": s.chunk_overlap,
        "k": k,
        "mode": pipeline.answerer.mode,
        "temperature": s.temperature,
        "seed": s.seed,
        "max_answer_tokens": s.max_answer_tokens,
        "min_support": s.min_support,
        "min_relevance": s.min_relevance,
        "seeds_dir": str(s.seeds_dir),
        "index_dir": str(s.index_dir),
        "questions": str(questions_path),
        "questions_sha256": file_sha256(questions_path),
        "n_questions": n_questions,
    }


def run_eval(pipeline, questions, k: int, questions_path: Path, progress=iter) -> dict:
    """The whole evaluation as one JSON-ready object: config, metrics overall and per category, each question."""
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    records = ask_all(pipeline, questions, k, progress)
    config = run_config(pipeline, k, questions_path, len(questions))
    config["started"] = started.isoformat(timespec="seconds")
    config["duration_seconds"] = round(time.perf_counter() - t0, 1)
    return {
        "config": config,
        "metrics": {
            "overall": compute_metrics([r["judgement"] for r in records], k),
            "by_category": metrics_by_category(records, k),
        },
        "questions": records,
    }


# --- outputs ---------------------------------------------------------------------------------------------------------
def metric_label(name: str, k: int | None) -> str:
    label = METRICS[name][0]
    return label.replace("hit@k", f"hit@{k}") if k else label


def fmt(value: float | None, name: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if name.endswith("seconds") else f"{value:.3f}"


def fmt_ci(metric: dict) -> str:
    return f"[{metric['ci'][0]:.2f}, {metric['ci'][1]:.2f}]" if metric.get("ci") else ""


def md_cell(text: object, limit: int = 160) -> str:
    """Make any text safe inside a markdown table cell."""
    s = " ".join(str(text).split()).replace("|", "\\|")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def overall_table(results: dict) -> str:
    k = results["config"]["k"]
    rows = ["| metric | value | 95% CI | n | over |", "| --- | ---: | --- | ---: | --- |"]
    for name, metric in results["metrics"]["overall"].items():
        better = "↑" if METRICS[name][1] else "↓"
        rows.append(
            f"| {metric_label(name, k)} {better} | {fmt(metric['value'], name)} | {fmt_ci(metric)} "
            f"| {metric['n']} | {METRICS[name][2]} |"
        )
    return "\n".join(rows)


CATEGORY_COLUMNS = (
    "accuracy", "f1", "hit@1", "hit@k", "mrr", "citation_validity", "citation_hit",
    "refusal_recall", "false_refusal_rate", "truthfulness", "forbidden_rate", "median_seconds",
)  # fmt: skip


def category_table(results: dict) -> str:
    k = results["config"]["k"]
    counts = Counter(r["category"] for r in results["questions"])
    head = "| category | n | " + " | ".join(metric_label(c, k) for c in CATEGORY_COLUMNS) + " |"
    rows = [head, "| --- | ---: |" + " ---: |" * len(CATEGORY_COLUMNS)]
    for category, metrics in sorted(results["metrics"]["by_category"].items()):
        cells = " | ".join(fmt(metrics[c]["value"], c) for c in CATEGORY_COLUMNS)
        rows.append(f"| {md_cell(category)} | {counts[category]} | {cells} |")
    return "\n".join(rows)


def failure_rows(results: dict) -> list[dict]:
    return [
        {"id": r["id"], "category": r["category"], **failure}
        for r in results["questions"]
        for failure in r["judgement"]["failures"]
    ]


def failures_section(results: dict) -> str:
    failures = failure_rows(results)
    if not failures:
        return "No failures."
    counts = Counter(f["reason"] for f in failures)
    summary = ", ".join(f"{reason} {counts[reason]}" for reason in REASONS if counts[reason])
    rows = ["| id | category | reason | answer | detail |", "| --- | --- | --- | --- | --- |"]
    answers = {r["id"]: r["answer"]["answer"] for r in results["questions"]}
    for f in failures:
        rows.append(
            f"| {f['id']} | {md_cell(f['category'])} | {f['reason']} | {md_cell(answers[f['id']], 80)} "
            f"| {md_cell(f['detail'])} |"
        )
    return f"{len(failures)} failures ({summary}).\n\n" + "\n".join(rows)


def render_report(results: dict) -> str:
    c = results["config"]
    return "\n\n".join(
        [
            "# rag eval report",
            f"- model: `{c['model']}` (sha256 `{c['model_sha256'][:16]}…`), mode {c['mode']}\n"
            f"- embedder: `{c['embedder']}`; chunks {c['chunk_size']} chars, overlap {c['chunk_overlap']}; k = {c['k']}\n"
            f"- questions: `{c['questions']}` ({c['n_questions']}); started {c['started']}, "
            f"took {c['duration_seconds']} s",
            "## Overall\n\n"
            "Intervals are Wilson 95% intervals; ↑ higher is better, ↓ lower is better; "
            "`over` says which questions a metric counts.\n\n" + overall_table(results),
            "## Per category\n\n" + category_table(results),
            "## Failures\n\n" + failures_section(results),
        ]
    ) + "\n"


def write_chart(results: dict, path: Path) -> None:
    """Grouped bars of the main metrics per category (Wilson intervals as error bars), overall first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = results["config"]["k"]
    groups = {"overall": results["metrics"]["overall"], **dict(sorted(results["metrics"]["by_category"].items()))}
    width = 0.8 / len(CHART_METRICS)
    fig, ax = plt.subplots(figsize=(max(8, 1.4 * len(groups)), 4.5))
    for i, name in enumerate(CHART_METRICS):
        offset = (i - (len(CHART_METRICS) - 1) / 2) * width
        bars = [(x + offset, m[name]) for x, m in enumerate(groups.values()) if m[name]["value"] is not None]
        ax.bar([x for x, _ in bars], [m["value"] for _, m in bars], width, label=metric_label(name, k))
        ranged = [(x, m) for x, m in bars if m["ci"]]  # means (truthfulness) have no interval
        if ranged:
            ax.errorbar(
                [x for x, _ in ranged], [m["value"] for _, m in ranged], fmt="none", ecolor="black", capsize=2,
                yerr=[[m["value"] - m["ci"][0] for _, m in ranged], [m["ci"][1] - m["value"] for _, m in ranged]],
            )  # fmt: skip
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(groups)), list(groups), rotation=20, ha="right")
    ax.set_ylim(-1.05, 1.1)
    ax.set_ylabel("score (truthfulness: -1..1)")
    ax.set_title(f"rag eval: {results['config']['model']}, k = {k}")
    ax.legend(fontsize=8, ncol=len(CHART_METRICS), loc="lower center", bbox_to_anchor=(0.5, 1.08))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(results: dict, out_dir: Path, chart: bool = True) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "results.json", out_dir / "report.md", out_dir / "failures.jsonl"]
    paths[0].write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", "utf-8")
    paths[1].write_text(render_report(results), "utf-8")
    paths[2].write_text("".join(json.dumps(f, ensure_ascii=False) + "\n" for f in failure_rows(results)), "utf-8")
    if chart:
        paths.append(out_dir / "metrics_by_category.png")
        write_chart(results, paths[-1])
    return paths


# --- gates and comparison ----------------------------------------------------------------------------------------------
def threshold_type(higher_is_better: bool) -> Callable[[str], tuple[str, float]]:
    """An argparse type for METRIC=VALUE; a bad name or value is a usage error (exit 2) naming the valid metrics."""
    flag = "--min" if higher_is_better else "--max"
    other = "--max" if higher_is_better else "--min"

    def parse(text: str) -> tuple[str, float]:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep:
            raise argparse.ArgumentTypeError(f"expected METRIC=VALUE, got {text!r}")
        if name not in METRICS:
            raise argparse.ArgumentTypeError(f"unknown metric {name!r}; valid metrics: {', '.join(METRICS)}")
        if METRICS[name][1] != higher_is_better:
            raise argparse.ArgumentTypeError(f"{name} is {'lower' if higher_is_better else 'higher'}-is-better; use {other}")
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} {name}: {value!r} is not a number") from None
        if math.isnan(number):
            raise argparse.ArgumentTypeError(f"{flag} {name}: threshold must be a number")
        return name, number

    return parse


def check_thresholds(overall: dict, minimums: list, maximums: list) -> list[str]:
    """One message per unmet threshold; a metric that could not be measured (no questions for it) fails too."""
    problems = []
    for limits, flag, short in ((minimums, "--min", lambda v, t: v < t), (maximums, "--max", lambda v, t: v > t)):
        for name, threshold in limits:
            value = overall[name]["value"]
            if value is None:
                problems.append(f"{name} was not measured (no questions for it); {flag} {name}={threshold:g} not met")
            elif short(value, threshold):
                word = "below" if flag == "--min" else "above"
                problems.append(f"{name} = {value:.3f} is {word} the threshold {threshold:g} ({flag})")
    return problems


def load_run(path: Path) -> dict:
    """A previous run's results.json (or its folder); a bad file is a user error naming the file."""
    from rag.errors import RagError as UserError

    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        data = json.loads(path.read_text("utf-8"))
        overall = data["metrics"]["overall"]
        if not isinstance(overall, dict):
            raise TypeError("metrics.overall is not an object")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    except (KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a rag eval results.json (no metrics.overall)") from exc
    data.setdefault("config", {})
    return data


def render_comparison(a: dict, b: dict, a_name: str, b_name: str) -> str:
    """Overall metrics of two runs side by side with B - A; ↑/↓ marks which direction is better."""
    ka, kb = a["config"].get("k"), b["config"].get("k")
    rows = [
        f"A: {a_name} ({a['config'].get('model', '?')}, k={ka}, {a['config'].get('n_questions', '?')} questions)",
        f"B: {b_name} ({b['config'].get('model', '?')}, k={kb}, {b['config'].get('n_questions', '?')} questions)",
        "",
        "| metric | A | B | B - A |",
        "| --- | ---: | ---: | ---: |",
    ]
    names = [n for n in METRICS if n in a["metrics"]["overall"] or n in b["metrics"]["overall"]]
    for name in names:
        va = a["metrics"]["overall"].get(name, {}).get("value")
        vb = b["metrics"]["overall"].get(name, {}).get("value")
        diff = "–" if va is None or vb is None else f"{vb - va:+.3f}"
        label = metric_label(name, ka if ka == kb else None)
        rows.append(f"| {label} {'↑' if METRICS[name][1] else '↓'} | {fmt(va, name)} | {fmt(vb, name)} | {diff} |")
    return "\n".join(rows)


def compare_command(paths: list[Path]) -> int:
    a, b = (load_run(p) for p in paths)
    print(render_comparison(a, b, str(paths[0]), str(paths[1])))
    return 0


# --- command line ------------------------------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    parser.add_argument("--questions", type=Path, help=f"questions JSONL (default {DEFAULT_QUESTIONS})")
    parser.add_argument("--out", type=Path, help=f"output folder (default {RUNS_DIR}/<time>-<model>)")
    parser.add_argument("--k", type=int, help="passages retrieved and shown to the model")
    parser.add_argument(
        "--min", dest="minimums", action="append", default=[], type=threshold_type(True), metavar="METRIC=VALUE",
        help="exit 1 if this overall metric is below VALUE (repeatable); metrics: " + ", ".join(METRICS),
    )  # fmt: skip
    parser.add_argument(
        "--max", dest="maximums", action="append", default=[], type=threshold_type(False), metavar="METRIC=VALUE",
        help="exit 1 if this lower-is-better metric (rates, seconds) is above VALUE (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--compare", nargs=2, type=Path, metavar=("A.json", "B.json"),
        help="print two runs' overall metrics side by side and exit (no model is loaded)",
    )  # fmt: skip
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def load_question_file(path: Path) -> list:
    from rag.errors import RagError as UserError
    from rag.evalset import EvalSetError, load_questions

    try:
        return load_questions(path)
    except EvalSetError as exc:  # rag.cli.main does not catch EvalSetError; UserError prints one line
        raise UserError(str(exc)) from exc


def default_out_dir(settings) -> Path:
    model = Path(settings.model_path).stem if settings.model_path else settings.model
    return RUNS_DIR / f"{datetime.now():%Y%m%d-%H%M%S}-{model}"


def run_command(args) -> int:
    if args.compare:
        return compare_command(args.compare)
    from tqdm import tqdm

    from rag.cli import _settings
    from rag.errors import RagError as UserError
    from rag.pipeline import Pipeline

    questions_path = args.questions or DEFAULT_QUESTIONS
    questions = load_question_file(questions_path)  # before the model load: a typo should fail in a second
    settings = _settings(args)
    out_dir = args.out or default_out_dir(settings)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
    pipeline = Pipeline.load(settings, with_generator=True)

    def progress(items):
        return tqdm(items, desc="eval", unit="q", file=sys.stderr, disable=args.quiet)

    results = run_eval(pipeline, questions, settings.k, questions_path, progress)
    paths = write_outputs(results, out_dir)
    print(overall_table(results))
    print("\nwrote " + ", ".join(str(p) for p in paths))
    problems = check_thresholds(results["metrics"]["overall"], args.minimums, args.maximums)
    for problem in problems:
        print(f"rag eval: {problem}", file=sys.stderr)
    return EXIT_GATE if problems else 0
