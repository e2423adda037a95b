"""`rag eval`: run a question set through the real pipeline, judge every answer, write and gate the results.

The runner takes any object shaped like `rag.pipeline.Pipeline` (`.ask`, `.settings`, `.embedder.id`,
`.generator.path`, `.answerer.mode`), so every metric, the report and the gates can be tested with a fake
and no model. Only the standard library is imported at module level: the CLI imports this module to build
its parser, and `rag --help` must stay instant.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from rag_eval import DEFAULT_QUESTIONS, RUNS_DIR
from rag_eval.asking import ask_each
from rag_eval.judging import judge
from rag_eval.metrics import METRICS, check_thresholds, metrics_by_category, metrics_of
from rag_eval.report import load_run, overall_table, render_comparison, write_outputs

EXIT_GATE = 1  # a --min/--max threshold was not met (usage errors exit 2 through rag.cli)


# --- running -------------------------------------------------------------------------------------------------------
def ask_all(pipeline, questions, k: int, progress: Callable[[Iterable], Iterable] = iter) -> list[dict]:
    """Ask every question through the one loaded pipeline and judge each answer as it comes.

    A question the pipeline rejects (a RagError) is recorded with its `error` and no judgement, and the run
    goes on (rag_eval.asking: the one error policy of both harnesses).
    """
    from rag.sources import SourceTexts

    read_source = SourceTexts(pipeline.settings.seeds_dir, pipeline.settings.index_dir)
    records = []
    for asked in ask_each(pipeline, questions, k, progress):
        q, answer = asked.question, asked.answer
        raw = answer.model_dump() if answer is not None else None
        records.append(
            {
                "id": q.id,
                "category": q.category,
                "question": q.question,
                "answerable": q.answerable,
                "expected": q.answers,
                "evidence": q.evidence,
                "forbidden": q.forbidden,
                "retrieved": [p.chunk_id for p in answer.passages] if answer is not None else [],
                "answer": raw,
                "judgement": judge(q, raw, answer.passages, asked.seconds, read_source) if raw is not None else None,
                "error": asked.error,
            }
        )
    return records


def run_config(pipeline, k: int, questions_path: Path, n_questions: int) -> dict:
    """What a result depends on, so two runs can be told apart (model bytes, embedder, chunking, k, mode)."""
    from rag.generation import file_sha256

    s = pipeline.settings
    generator = pipeline.generator
    if getattr(generator, "path", None) is not None:
        model_path = Path(generator.path)
        model = {"model": model_path.name, "model_path": str(model_path), "model_sha256": file_sha256(model_path)}
    else:  # RAG_LLM_URL: the weights live on the server and cannot be hashed from here
        model = {"model": generator.model_name, "model_path": generator.backend, "model_sha256": None}
    return {
        **model,
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
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    records = ask_all(pipeline, questions, k, progress)
    config = run_config(pipeline, k, questions_path, len(questions))
    config["started"] = started.isoformat(timespec="seconds")
    config["duration_seconds"] = round(time.perf_counter() - t0, 1)
    return {
        "config": config,
        "metrics": {
            "overall": metrics_of(records, k),
            "by_category": metrics_by_category(records, k),
        },
        "questions": records,
    }


# --- gates and comparison ------------------------------------------------------------------------------------------------
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
            raise argparse.ArgumentTypeError(
                f"{name} is {'lower' if higher_is_better else 'higher'}-is-better; use {other}"
            )
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} {name}: {value!r} is not a number") from None
        if math.isnan(number):
            raise argparse.ArgumentTypeError(f"{flag} {name}: threshold must be a number")
        return name, number

    return parse


def compare_command(paths: list[Path]) -> int:
    a, b = (load_run(p) for p in paths)
    print(render_comparison(a, b, str(paths[0]), str(paths[1])))
    return 0


# --- command line ------------------------------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    parser.add_argument("--questions", type=Path, help=f"questions JSONL (default {DEFAULT_QUESTIONS})")
    parser.add_argument("--out", type=Path, help=f"output folder (default {RUNS_DIR}/<time>-<model>)")
    parser.add_argument(
        "--min",
        dest="minimums",
        action="append",
        default=[],
        type=threshold_type(True),
        metavar="METRIC=VALUE",
        help="exit 1 if this overall metric is below VALUE (repeatable); metrics: " + ", ".join(METRICS),
    )
    parser.add_argument(
        "--max",
        dest="maximums",
        action="append",
        default=[],
        type=threshold_type(False),
        metavar="METRIC=VALUE",
        help="exit 1 if this lower-is-better metric (rates, seconds) is above VALUE (repeatable)",
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("A.json", "B.json"),
        help="print two runs' overall metrics side by side and exit (no model is loaded)",
    )
    parser.add_argument(
        "--squad",
        type=Path,
        metavar="FILE",
        help="evaluate on SQuAD 2.0 JSON (.json or .json.gz) instead: each article becomes a document, all are "
        "indexed together, every question is asked; reports EM, F1, containment, refusals, cited-span overlap",
    )
    parser.add_argument("--articles", nargs="+", metavar="TITLE", help="with --squad: the articles to use")
    parser.add_argument("--limit", type=int, help="with --squad: questions per article (stratified sample)")
    parser.add_argument("--seed", type=int, default=0, help="with --squad: sampling seed (default 0)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def default_out_dir(settings) -> Path:
    model = Path(settings.model_path).stem if settings.model_path else settings.model
    return RUNS_DIR / f"{datetime.now():%Y%m%d-%H%M%S}-{model}"


def run_command(args) -> int:
    if args.compare:
        return compare_command(args.compare)
    from tqdm import tqdm

    if args.squad:
        from rag_eval import squad

        out = args.out or RUNS_DIR / f"{datetime.now():%Y%m%d-%H%M%S}-squad"
        from rag.settings import flag_values

        overrides = {k: v for k, v in flag_values(args).items() if k not in ("seeds_dir", "index_dir")}

        def squad_progress(items):
            return tqdm(items, desc="squad", unit="q", file=sys.stderr, disable=args.quiet)

        return squad.evaluate(args.squad, args.articles, args.limit, args.seed, out, None, overrides, squad_progress)

    from rag.errors import EvalSetError
    from rag.pipeline import Pipeline
    from rag.settings import build_settings, flag_values
    from rag_eval.questions import load_questions

    questions_path = args.questions or DEFAULT_QUESTIONS
    questions = load_questions(questions_path)  # before the model load: a typo should fail in a second
    settings = build_settings(flag_values(args))
    out_dir = args.out or default_out_dir(settings)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EvalSetError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
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
