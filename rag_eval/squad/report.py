"""The SQuAD run as report.md, chart.png and reliability.png, from the pieces `rag eval`'s report uses.

Its tables differ from `rag eval`'s because its metrics do (EM/F1 in %, beside the refuse-everything
baseline, per article instead of per category), but the cells, the reliability table and both charts are
rag_eval.report's, so a fix or a new look there reaches both harnesses. Error rows (rag_eval.asking) are
counted in every table and listed among the failures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rag_eval.report import RELIABILITY_CHART, md_cell, reliability_table, write_bar_chart
from rag_eval.report import write_reliability_chart as draw_reliability
from rag_eval.squad.metrics import RIGHT_F1
from rag_eval.stats import calibration

WORST = 5  # failures of each kind shown in the report


OVERALL_ROWS = (
    ("answerable_em", "answerable EM"),
    ("answerable_f1", "answerable F1"),
    ("em", "EM (all, SQuAD v2)"),
    ("f1", "F1 (all, SQuAD v2)"),
    ("containment", "gold contained in answer (answerable)"),
    ("refusal_recall", "refusal recall (unanswerable refused)"),
    ("false_refusal_rate", "false refusals (answerable refused)"),
    ("cited_overlap", "cited span overlaps gold (answered answerable)"),
    ("hit@1", "retrieval hit@1 (answerable)"),
    ("hit@3", "retrieval hit@3 (answerable)"),
    ("hit@5", "retrieval hit@5 (answerable)"),
    ("median_seconds", "median seconds"),
    ("p95_seconds", "p95 seconds"),
    ("ece", "expected calibration error (questions with a confidence)"),
)
ARTICLE_COLUMNS = (
    ("answerable_em", "ans EM"),
    ("answerable_f1", "ans F1"),
    ("f1", "F1"),
    ("containment", "contained"),
    ("refusal_recall", "refusal recall"),
    ("false_refusal_rate", "false refusals"),
    ("cited_overlap", "cited overlap"),
    ("hit@1", "hit@1"),
    ("hit@5", "hit@5"),
    ("median_seconds", "median s"),
)


def fmt(value: float | None, name: str) -> str:
    if value is None:
        return "–"
    if name == "ece":
        return f"{value:.3f}"
    return f"{value:.2f}" if name.endswith("seconds") else f"{100 * value:.1f}"


def overall_table(m: dict) -> str:
    ours, base = m["overall"], m["baseline"]["overall"]
    rows = ["| metric | pipeline | refuse everything |", "| --- | ---: | ---: |"]
    rows += [f"| {label} | {fmt(ours[key], key)} | {fmt(base[key], key)} |" for key, label in OVERALL_ROWS]
    return "\n".join(rows)


def _article_table(m: dict) -> str:
    head = "| article | n | ans / unans | errors | " + " | ".join(label for _, label in ARTICLE_COLUMNS) + " |"
    rows = [head, "| --- | ---: | ---: | ---: |" + " ---: |" * len(ARTICLE_COLUMNS)]
    groups = {**m["per_article"], "**all**": m["overall"]}
    for name, s in groups.items():
        cells = " | ".join(fmt(s[key], key) for key, _ in ARTICLE_COLUMNS)
        counts = f"{s['questions']} | {s['answerable']} / {s['unanswerable']} | {s['errors']}"
        rows.append(f"| {md_cell(name, 120)} | {counts} | {cells} |")
    base = m["baseline"]["overall"]
    cells = " | ".join(fmt(base[key], key) for key, _ in ARTICLE_COLUMNS)
    counts = f"{base['questions']} | {base['answerable']} / {base['unanswerable']} | {base['errors']}"
    rows.append(f"| *refuse everything* | {counts} | {cells} |")
    return "\n".join(rows)


def worst_failures(records: Sequence[dict], n: int = WORST) -> dict[str, list[dict]]:
    """A few of each kind of failure, worst first (deterministic: by F1, then id)."""
    scored = [r for r in records if r.get("error") is None]
    wrong = sorted(
        (r for r in scored if r["answerable"] and not r["refused"] and not r["em"]),
        key=lambda r: (r["f1"], bool(r["contains"]), r["id"]),
    )
    return {
        "wrong answers (answerable, answered, not exact)": wrong[:n],
        "answered an unanswerable question": sorted(
            (r for r in scored if not r["answerable"] and not r["refused"]), key=lambda r: r["id"]
        )[:n],
        "false refusals (answerable, refused; retrieved first)": sorted(
            (r for r in scored if r["answerable"] and r["refused"]),
            key=lambda r: (r["rank"] is None, r["rank"] or 0, r["id"]),
        )[:n],
        "errors": [r for r in records if r.get("error") is not None][:n],
    }


def _failures_section(records: Sequence[dict]) -> str:
    parts = []
    for kind, rows in worst_failures(records).items():
        if not rows:
            continue
        table = ["| id | article | question | gold | prediction | F1 | rank |", "|" + " --- |" * 5 + " ---: | ---: |"]
        for r in rows:
            gold = " / ".join(r["golds"]) if r["golds"] else "(unanswerable)"
            refusal = f"(refused: {r.get('reason') or 'no reason given'})"
            pred = r["error"] or (refusal if r["refused"] else r["prediction"])
            f1_cell = "–" if r["f1"] is None else f"{100 * r['f1']:.0f}"
            table.append(
                f"| {r['id']} | {md_cell(r['article'], 30)} | {md_cell(r['question'], 120)} | {md_cell(gold, 80)} "
                f"| {md_cell(pred, 100)} | {f1_cell} | {r['rank'] if r['rank'] is not None else '–'} |"
            )
        parts.append(f"### {kind[0].upper()}{kind[1:]}\n\n" + "\n".join(table))
    return "\n\n".join(parts) if parts else "No failures."


def render_report(results: dict) -> str:
    """Markdown: the run's settings, the overall table beside the refuse-everything baseline, per article, failures."""
    c, m = results.get("config", {}), results["metrics"]
    settings = ", ".join(f"{key} {value}" for key, value in (c.get("settings") or {}).items())
    lines = [
        "# SQuAD 2.0 evaluation",
        f"- file: `{c.get('file', '?')}`; articles: {', '.join(m['per_article']) or 'none'}\n"
        f"- questions: {m['overall']['questions']} ({m['overall']['answerable']} answerable, "
        f"{m['overall']['unanswerable']} unanswerable, {m['overall']['errors']} errors); "
        f"limit per article {c.get('limit') or 'none'}, seed {c.get('seed', '?')}; k = {c.get('k', '?')}"
        + (f"\n- settings: {settings}" if settings else "")
        + (f"\n- started {c['started']}, took {c['duration_seconds']} s" if "started" in c else ""),
        '## Overall\n\nScores in %, official SQuAD v2 normalisation; a refusal is the prediction "". '
        "EM/F1 over all questions reward refusing unanswerable ones, so compare them with the "
        "refuse-everything column. Error rows (questions the pipeline rejected) are not scored.\n\n" + overall_table(m),
        "## Per article\n\n" + _article_table(m),
        "## Calibration\n\n" + _calibration_section(m),
        "## Worst failures\n\n" + _failures_section(results["records"]),
    ]
    return "\n\n".join(lines) + "\n"


def _calibration_section(m: dict) -> str:
    """ECE and the reliability table of the whole run (held-out articles), and how many questions it counts."""
    c = m.get("calibration") or calibration([])
    scored = m["overall"]["questions"] - m["overall"]["errors"]
    if not c["n"]:
        return f"No answer stated a confidence ({scored} scored questions): nothing to calibrate."
    lead = (
        f"Expected calibration error **{c['ece']:.3f}** over {c['n']} of {scored} scored questions (the others "
        f"stated no confidence and are left out); 10 equal-width bins, weighted by their answers. An answer is "
        f"right at F1 >= {RIGHT_F1}, a refusal when the question is unanswerable. Chart: `{RELIABILITY_CHART}`."
    )
    return lead + "\n\n" + reliability_table(c["bins"])


CHART_METRICS = (
    ("answerable_f1", "answerable F1"),
    ("containment", "contained"),
    ("refusal_recall", "refusal recall"),
    ("false_refusal_rate", "false refusals"),
)


def write_chart(results: dict, path: Path | str) -> None:
    """Per-article grouped bars of answerable F1, containment, refusal recall and false refusals."""
    m = results["metrics"]
    groups = {"all": m["overall"], **m["per_article"]}
    write_bar_chart(
        {g: {key: s[key] for key, _ in CHART_METRICS} for g, s in groups.items()},
        list(CHART_METRICS),
        path,
        f"SQuAD 2.0: {m['overall']['questions']} questions, k = {results.get('config', {}).get('k', '?')}",
    )


def write_reliability_chart(results: dict, path: Path | str) -> bool:
    """The reliability chart of the run (rag_eval.report draws it); False, and nothing written, when no answer
    stated a confidence."""
    c = results["metrics"].get("calibration")
    if not c or not c["n"]:
        return False
    draw_reliability(c, path, f"SQuAD 2.0 (held out): {results['metrics']['overall']['questions']} questions")
    return True
