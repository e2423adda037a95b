"""Measurement: evaluation and benchmarks, kept out of the runtime package `rag`.

    rag_eval.stats       percentile, Wilson interval, proportion, mean (one definition each)
    rag_eval.questions   JSONL question sets (eval/questions.jsonl)
    rag_eval.matching    the one answer normaliser, EM, F1 and containment (official SQuAD v2), for both harnesses
    rag_eval.asking      asking a question set, and the one error policy (record the error, go on, count it)
    rag_eval.judging     one answer against its question: text and evidence matching, citation checks
    rag_eval.metrics     metrics over judged answers, metric names, --min/--max gates
    rag_eval.report      report.md, failures.jsonl, charts, results.json and the A/B comparison
    rag_eval.evaluate    the `rag eval` command
    rag_eval.squad       `rag eval --squad`: SQuAD 2.0 articles indexed and asked (the same harness)
    rag_eval.bench       the `rag bench` command (synthetic corpus, measurements, report)
    rag_eval.api_latency /ask latency of a running `rag serve` (a script)

Modules the CLI imports to build its parser (evaluate, bench) import only the standard library at module
level; this one too.
"""

from pathlib import Path

DEFAULT_QUESTIONS = Path("eval") / "questions.jsonl"
RUNS_DIR = Path("eval") / "runs"  # git ignores it: every run writes a folder here unless told otherwise
