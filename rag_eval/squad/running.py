"""Running a SQuAD evaluation: index the articles, ask every question, score, write the outputs.

`rag eval --squad` and `python -m rag_eval.squad` both end here. Arguments are checked and the file is
read before any model loads, so a typo fails in a second with one line on stderr (exit 2); a question the
pipeline rejects is recorded and the run goes on (rag_eval.asking, the policy `rag eval` follows too).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag_eval.asking import ask_each
from rag_eval.squad.data import SquadQuestion, load_squad, questions
from rag_eval.squad.documents import build_index, layout
from rag_eval.squad.metrics import results
from rag_eval.squad.records import error_record, score
from rag_eval.squad.report import RELIABILITY_CHART, overall_table, render_report, write_chart, write_reliability_chart


def run(
    pipeline: Any,
    questions: Sequence[SquadQuestion],
    k: int | None,
    progress: Callable[[Iterable], Iterable] = iter,
) -> list[dict]:
    """Ask every question through `pipeline.ask(question, k)` and score it; a RagError becomes an error row."""
    records = []
    for asked in ask_each(pipeline, questions, k, progress):
        if asked.error is not None:
            records.append(error_record(asked.question, asked.error, asked.seconds))
        else:
            records.append(score(asked.question, asked.answer.model_dump(), asked.seconds))
    return records


# --- command line ---------------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        self.exit(2, f"{self.prog}: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m rag_eval.squad", description="Evaluate the real pipeline on SQuAD 2.0 articles.")
    p.add_argument("file", type=Path, help="SQuAD 2.0 JSON file (.json or .json.gz)")
    p.add_argument("--articles", nargs="+", metavar="TITLE", help="article titles to use (default: all)")
    p.add_argument("--limit", type=int, help="questions per article (stratified sample; default: all)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--k", type=int, help="passages shown to the model (default: the k setting)")
    p.add_argument("--out", type=Path, required=True, help="folder for results.json, report.md, chart.png")
    p.add_argument("--workdir", type=Path, help="folder for the documents and index (default: OUT/work)")
    return p


def _fail(message: str, code: int) -> int:
    print(f"python -m rag_eval.squad: {message}", file=sys.stderr)
    return code


def _progress(items: Sequence) -> Iterable:
    try:
        from tqdm import tqdm
    except ImportError:
        return iter(items)
    return tqdm(items, desc="asking", unit="q")


def _settings_config(settings) -> dict:
    keys = ("model", "model_path", "mode", "k", "chunk_size", "chunk_overlap", "min_support", "min_relevance",
            "reader", "reader_candidates", "reader_span_union")  # fmt: skip
    values = {key: getattr(settings, key) for key in keys}
    return {key: str(v) if isinstance(v, Path) else v for key, v in values.items()}


def _reader_config(reader) -> dict | None:
    """Which trained reader answered (its header's date, commit and training articles), or None: a decider
    fitted on these answers must not be fitted on the reader's own training articles (rag_eval/fit_decider.py)."""
    meta = getattr(reader, "meta", None)
    if not meta:
        return None
    return {k: meta.get(k) for k in ("created", "commit", "train_articles")}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m rag_eval.squad FILE --articles A B --limit N --out DIR [--k K]`: index, ask, score, report."""
    args = _parser().parse_args(argv)
    return evaluate(args.file, args.articles, args.limit, args.seed, args.out, args.workdir, {"k": args.k})


def evaluate(
    file: Path,
    titles: list[str] | None,
    limit: int | None,
    seed: int,
    out: Path,
    workdir: Path | None = None,
    overrides: dict | None = None,
    progress=None,
) -> int:
    """Index the articles together, ask their questions through the real pipeline, write results, report, chart.

    `overrides` are settings given on the command line (RAG_* variables apply too). Also `rag eval --squad`.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    k = overrides.get("k")
    if limit is not None and limit < 1:
        return _fail(f"--limit must be at least 1, not {limit}", 2)
    if k is not None and k < 1:
        return _fail(f"--k must be at least 1, not {k}", 2)
    if out.exists() and not out.is_dir():
        return _fail(f"--out {out} is a file, not a folder", 2)
    try:
        articles = load_squad(file, titles)
        from rag.settings import build_settings

        settings = build_settings(overrides)  # a bad flag or RAG_* variable fails before any model loads
    except RagError as exc:
        return _fail(exc.describe(), 2)

    from rag.pipeline import Pipeline, load_embedder

    started, t0 = datetime.now(UTC), time.perf_counter()
    try:
        embedder = load_embedder(settings)
        index_overrides = {n: v for n, v in overrides.items() if n not in ("seeds_dir", "index_dir")}
        settings = build_index(articles, workdir or out / "work", index_overrides, embedder=embedder)
        pipeline = Pipeline.load(settings, embedder=embedder, with_generator=True)
        asked = questions(articles, layout(articles), limit, seed)
        records = run(pipeline, asked, settings.k, progress or _progress)
    except RagError as exc:
        return _fail(exc.describe(), 1)
    config = {
        "file": str(file),
        "articles": [a.title for a in articles],
        "limit": limit,
        "seed": seed,
        "k": settings.k,
        "n_questions": len(asked),
        "settings": _settings_config(settings),
        "reader": _reader_config(pipeline.reader),
        "started": started.isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - t0, 1),
    }
    result = results(records, config)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), "utf-8")
    (out / "report.md").write_text(render_report(result), "utf-8")
    write_chart(result, out / "chart.png")
    reliability = write_reliability_chart(result, out / RELIABILITY_CHART)
    print(overall_table(result["metrics"]))
    print(f"wrote {out / 'results.json'}, report.md, chart.png" + (f" and {RELIABILITY_CHART}" if reliability else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
