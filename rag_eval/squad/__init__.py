"""SQuAD 2.0 evaluation: measure answering on text nobody on the project wrote.

The hand-written questions in eval/ were written by people who knew the seed documents and the
pipeline; SQuAD 2.0 was not. Each article becomes one plain-text document, so every gold answer is an
exact span of a document the real ingest indexes, and a cited span can be checked against it. Half the
questions are unanswerable but look answerable from the same paragraph, which is exactly the refusal
decision this project has to get right.

One module per job, each importable alone:

    data        the SQuAD file read and checked; the questions, sampled per article
    documents   articles as documents (layout, write_documents) and the index built from them
    records     one answer scored as one record (official EM/F1 from rag_eval.matching, cited overlap, rank)
    metrics     summaries overall and per article, the refuse-everything baseline, calibration
    report      report.md, chart.png, reliability.png (from rag_eval.report's pieces)
    running     run (the error policy of rag_eval.asking), evaluate, and the command line

It is one harness with `rag eval`: the same normaliser and F1 (rag_eval.matching), the same error
policy (rag_eval.asking), the same report cells and charts (rag_eval.report). The names below stay
importable from `rag_eval.squad`, which the fitting scripts (rag_eval.fit, rag_eval.fit_reader) and
`rag eval --squad` use. Only the standard library is imported at module level; the project's models,
pydantic and matplotlib are imported inside the functions that need them, so importing this is instant.
"""

from rag_eval.matching import contains, exact, f1, get_tokens, normalize_answer
from rag_eval.squad.data import (
    QA,
    Article,
    ArticleDoc,
    GoldAnswer,
    Paragraph,
    Span,
    SquadQuestion,
    load_squad,
    parse_squad,
    questions,
    stratified_sample,
)
from rag_eval.squad.documents import SEPARATOR, build_index, layout, safe_name, write_documents
from rag_eval.squad.metrics import (
    HITS,
    RIGHT_F1,
    calibration_of,
    metrics,
    refuse_everything,
    results,
    summary,
    was_right,
)
from rag_eval.squad.records import cited_overlap, error_record, prediction, retrieval_rank, score
from rag_eval.squad.report import (
    RELIABILITY_CHART,
    overall_table,
    render_report,
    worst_failures,
    write_chart,
    write_reliability_chart,
)
from rag_eval.squad.running import evaluate, main, run

__all__ = [
    "HITS", "QA", "RELIABILITY_CHART", "RIGHT_F1", "SEPARATOR", "Article", "ArticleDoc", "GoldAnswer", "Paragraph",
    "Span", "SquadQuestion", "build_index", "calibration_of", "cited_overlap", "contains",
    "error_record", "evaluate", "exact", "f1", "get_tokens", "layout", "load_squad", "main", "metrics",
    "normalize_answer", "overall_table", "parse_squad", "prediction", "questions", "refuse_everything",
    "render_report", "results", "retrieval_rank", "run", "safe_name", "score", "stratified_sample", "summary",
    "was_right", "worst_failures", "write_chart", "write_documents", "write_reliability_chart",
]  # fmt: skip
