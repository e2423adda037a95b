"""What an eval run writes and prints: the markdown report, failures, the charts, and the A/B comparison.

The calibration section and its reliability chart (stated confidence against measured accuracy, per
bin) are here because a confidence shown to users is only worth showing if "sure" answers are right as
often as they claim; the questions are held out from everything the decider was fitted on.

The SQuAD report (rag_eval.squad.report) is built from the same pieces: `md_cell`, the reliability
table and chart, and `write_bar_chart`, so the two harnesses' outputs read and look alike. Questions the
pipeline rejected are failures of their own ("error", rag_eval.asking) and counted in `error_rate`.

Standard library only at module level (matplotlib is imported by the chart writers).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from rag.errors import EvalSetError
from rag_eval.judging import REASONS
from rag_eval.metrics import METRICS, metric_label

CHART_METRICS = ("accuracy", "hit@k", "citation_hit", "refusal_recall", "truthfulness")
RELIABILITY_CHART = "reliability.png"


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
    """Every failure of every question; a question the pipeline rejected is one failure, "error"."""
    rows = []
    for r in results["questions"]:
        if r.get("error") is not None:
            rows.append({"id": r["id"], "category": r["category"], "reason": "error", "detail": r["error"]})
            continue
        rows += [{"id": r["id"], "category": r["category"], **failure} for failure in r["judgement"]["failures"]]
    return rows


def failures_section(results: dict) -> str:
    failures = failure_rows(results)
    if not failures:
        return "No failures."
    counts = Counter(f["reason"] for f in failures)
    summary = ", ".join(f"{reason} {counts[reason]}" for reason in REASONS if counts[reason])
    rows = ["| id | category | reason | answer | detail |", "| --- | --- | --- | --- | --- |"]
    answers = {r["id"]: (r["answer"] or {}).get("answer") or "" for r in results["questions"]}
    for f in failures:
        rows.append(
            f"| {f['id']} | {md_cell(f['category'])} | {f['reason']} | {md_cell(answers[f['id']], 80)} "
            f"| {md_cell(f['detail'])} |"
        )
    return f"{len(failures)} failures ({summary}).\n\n" + "\n".join(rows)


def calibration_section(results: dict, chart: str | None = None) -> str:
    """ECE and the reliability table: per bin of stated confidence, how many answers and how often right."""
    ece = results["metrics"]["overall"].get("ece")
    if not ece or not ece["n"]:
        left = f" ({ece['without']} questions)" if ece else ""
        return f"No answer stated a confidence{left}: nothing to calibrate."
    lead = (
        f"Expected calibration error **{ece['value']:.3f}** over {ece['n']} questions with a confidence "
        f"({ece['without']} without one are left out; 10 equal-width bins, weighted by their answers). "
        "An answer counts as right when it is correct with no forbidden value, a refusal when the question is "
        "unanswerable." + (f" Chart: `{chart}`." if chart else "")
    )
    return lead + "\n\n" + reliability_table(ece["bins"])


def reliability_table(bins: list[dict]) -> str:
    """The bins of rag_eval.stats.calibration that hold answers, as a markdown table."""
    rows = ["| confidence | answers | mean confidence | accuracy |", "| --- | ---: | ---: | ---: |"]
    rows += [
        f"| {b['lo']:.1f}–{b['hi']:.1f} | {b['n']} | {b['confidence']:.3f} | {b['accuracy']:.3f} |"
        for b in bins
        if b["n"]
    ]
    return "\n".join(rows)


def write_reliability_chart(calibration: dict, path: Path | str, title: str) -> None:
    """`calibration` as rag_eval.stats.calibration returns it, drawn as a reliability diagram: accuracy against mean stated confidence per bin (dot size: answers in the bin), the
    diagonal a perfectly calibrated decider lies on, and the share of answers per bin underneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [b for b in calibration["bins"] if b["n"]]
    total = max(1, calibration["n"])
    fig, (ax, counts) = plt.subplots(2, 1, figsize=(5.5, 6), height_ratios=(3, 1), sharex=True)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    for b in calibration["bins"]:
        if b["n"]:
            ax.plot([b["lo"], b["hi"]], [b["accuracy"]] * 2, color="#2563eb", linewidth=0.8, alpha=0.4)
    ax.scatter(
        [b["confidence"] for b in rows],
        [b["accuracy"] for b in rows],
        s=[20 + 300 * b["n"] / total for b in rows],
        color="#2563eb",
        zorder=3,
        label="accuracy per bin",
    )
    ece = calibration["ece"]
    ax.set_title(f"{title}\nECE {ece:.3f} over {calibration['n']} answers" if ece is not None else title, fontsize=10)
    ax.set_ylabel("measured accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="upper left")
    counts.bar(
        [(b["lo"] + b["hi"]) / 2 for b in calibration["bins"]],
        [b["n"] / total for b in calibration["bins"]],
        width=0.09,
        color="#94a3b8",
    )
    counts.set_xlabel("stated confidence")
    counts.set_ylabel("share")
    fig.tight_layout()
    fig.savefig(Path(path), dpi=120)
    plt.close(fig)


def model_id(config: dict) -> str:
    """The model file's hash, or the server that holds it (RAG_LLM_URL)."""
    sha = config.get("model_sha256")
    return f"sha256 `{sha[:16]}…`" if sha else f"served by `{config['model_path']}`"


def errors_note(results: dict) -> str:
    errors = sum(r.get("error") is not None for r in results["questions"])
    return f", {errors} rejected by the pipeline and not scored" if errors else ""


def render_report(results: dict) -> str:
    c = results["config"]
    return (
        "\n\n".join(
            [
                "# rag eval report",
                f"- model: `{c['model']}` ({model_id(c)}), mode {c['mode']}\n"
                f"- embedder: `{c['embedder']}`; chunks {c['chunk_size']} chars, overlap {c['chunk_overlap']}; k = {c['k']}\n"
                f"- questions: `{c['questions']}` ({c['n_questions']}{errors_note(results)}); started {c['started']}, "
                f"took {c['duration_seconds']} s",
                "## Overall\n\n"
                "Intervals are Wilson 95% intervals; ↑ higher is better, ↓ lower is better; "
                "`over` says which questions a metric counts.\n\n" + overall_table(results),
                "## Per category\n\n" + category_table(results),
                "## Calibration\n\n" + calibration_section(results, RELIABILITY_CHART),
                "## Failures\n\n" + failures_section(results),
            ]
        )
        + "\n"
    )


def write_chart(results: dict, path: Path) -> None:
    """Grouped bars of the main metrics per category (Wilson intervals as error bars), overall first."""
    k = results["config"]["k"]
    groups = {"overall": results["metrics"]["overall"], **dict(sorted(results["metrics"]["by_category"].items()))}
    write_bar_chart(
        {g: {name: m[name]["value"] for name in CHART_METRICS} for g, m in groups.items()},
        [(name, metric_label(name, k)) for name in CHART_METRICS],
        path,
        f"rag eval: {results['config']['model']}, k = {k}",
        ylabel="score (truthfulness: -1..1)",
        ylim=(-1.05, 1.1),
        intervals={g: {name: m[name]["ci"] for name in CHART_METRICS} for g, m in groups.items()},
    )


def write_bar_chart(
    groups: dict[str, dict[str, float | None]],
    series: list[tuple[str, str]],
    path: Path | str,
    title: str,
    ylabel: str = "share",
    ylim: tuple[float, float] = (0, 1.05),
    intervals: dict[str, dict[str, list | None]] | None = None,
) -> None:
    """One group of bars per key of `groups` (a category, an article), one bar per `series` (key, label);
    a None value draws no bar; `intervals[group][key]` ([lo, hi] or None) adds an error bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(8.0, 1.2 * len(groups) + 1), 4.5))
    for i, (key, label) in enumerate(series):
        offset = (i - (len(series) - 1) / 2) * width
        bars = [(x + offset, g, values[key]) for x, (g, values) in enumerate(groups.items()) if values[key] is not None]
        ax.bar([x for x, _, _ in bars], [v for _, _, v in bars], width, label=label)
        ranged = [(x, v, ci) for x, g, v in bars if (ci := (intervals or {}).get(g, {}).get(key))]  # means: none
        if ranged:
            ax.errorbar(
                [x for x, _, _ in ranged],
                [v for _, v, _ in ranged],
                fmt="none",
                ecolor="black",
                capsize=2,
                # clamped: a Wilson bound at a share of 0 or 1 can sit a rounding error past the value
                yerr=[[max(0.0, v - ci[0]) for _, v, ci in ranged], [max(0.0, ci[1] - v) for _, v, ci in ranged]],
            )
    if ylim[0] < 0:
        ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(groups)), list(groups), rotation=20, ha="right", fontsize=8)
    ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=len(series), loc="lower center", bbox_to_anchor=(0.5, 1.08))
    fig.tight_layout()
    fig.savefig(Path(path), dpi=120)
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
        ece = results["metrics"]["overall"].get("ece")
        if ece and ece["n"]:
            paths.append(out_dir / RELIABILITY_CHART)
            table = {"ece": ece["value"], "n": ece["n"], "bins": ece["bins"]}  # rag_eval.stats.calibration's shape
            write_reliability_chart(table, paths[-1], f"rag eval: {results['config']['model']}")
    return paths


# --- comparison ------------------------------------------------------------------------------------------------------
def load_run(path: Path) -> dict:
    """A previous run's results.json (or its folder); a bad file is an `EvalSetError` naming the file."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        data = json.loads(path.read_text("utf-8"))
        overall = data["metrics"]["overall"]
        if not isinstance(overall, dict):
            raise TypeError("metrics.overall is not an object")
    except OSError as exc:
        raise EvalSetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except json.JSONDecodeError as exc:
        raise EvalSetError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    except (KeyError, TypeError) as exc:
        raise EvalSetError(f"{path}: not a rag eval results.json (no metrics.overall)") from exc
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
