"""`rag` command line. Heavy imports happen inside commands so `rag --help` is instant.

For daily use in a terminal:
- Every error is one line on stderr, `rag <command>: <what> …`, naming what the user typed: the flag
  (`--k`, `--model-path`) or the variable (`RAG_K`), including argparse's own usage errors; exit 2.
- While the index or the model loads, a one-line status ("rag ask: loading the index and the model…")
  is shown on stderr and erased when loading is done — only when stderr is a terminal, so pipes,
  scripts and `2>log` files get nothing but the output and real errors.
- Other libraries' log lines (llama.cpp's, sentence-transformers', httpx's, bm25s' …) and Python
  warnings are silenced unless `-v` is given: they are not the user's business in daily use.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterable

EXIT_USAGE = 2
THIRD_PARTY_LOGGERS = (
    "llama.cpp",  # llama.cpp's own lines (rag.generation.route_llama_logs)
    "llama-cpp-python",
    "sentence_transformers",
    "transformers",
    "torch",
    "huggingface_hub",
    "httpx",
    "httpcore",
    "bm25s",
    "faiss",
    "urllib3",
    "matplotlib",
    "PIL",
    "pypdfium2",
)


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: `rag ask: --k: invalid int value: 'abc' (see rag ask --help)`.

    argparse's own error is two lines (the usage, then the error); the usage line buries what was wrong.
    """

    def error(self, message: str):
        message = message.removeprefix("argument ")
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


@contextlib.contextmanager
def loading(command: str, what: str):
    """A one-line status on stderr while `what` loads, erased afterwards; only on a terminal."""
    shown = sys.stderr.isatty()
    if shown:
        sys.stderr.write(f"rag {command}: loading {what}…")
        sys.stderr.flush()
    try:
        yield
    finally:
        if shown:
            sys.stderr.write("\r\033[K")  # back to the line's start, erase it
            sys.stderr.flush()


def _queries(arg: str) -> Iterable[str]:
    if arg == "-":
        for line in sys.stdin:
            if line.strip():
                yield line.rstrip("\n")
    else:
        yield arg


def _settings(args):
    from rag.settings import build_settings, flag_values

    return build_settings(flag_values(args))


def cmd_ingest(args) -> int:
    from tqdm import tqdm

    from rag.documents import discover, raise_empty, scan_corpus
    from rag.pipeline import ingest_settings, load_embedder, run_ingest

    settings = _settings(args)
    files, _ = discover(settings.seeds_dir)
    with tqdm(total=len(files), desc="reading", unit="file", disable=args.quiet, file=sys.stderr) as bar:
        corpus = scan_corpus(settings.seeds_dir, lambda path: bar.update(1))
    if not corpus.documents:  # fail fast, before loading the model, naming what was wrong with each file
        raise_empty(settings.seeds_dir, corpus.problems)
    embedder = load_embedder(ingest_settings(settings))
    with tqdm(total=0, desc="embedding", unit="chunk", disable=args.quiet, file=sys.stderr) as bar:

        def chunked(total: int) -> None:
            bar.total = total
            bar.refresh()

        _, report = run_ingest(settings, embedder, bar.update, corpus=corpus, on_chunked=chunked)
    print(report.summary())
    _prepare_reader(settings, args.quiet)
    return 0


def _prepare_reader(settings, quiet: bool) -> None:
    """The reader's ONNX export, made now if missing so that the first `rag serve` does not pay for it
    (rag.pipeline.prepare_reader); a failure only warns: the index is built and serving falls back to torch."""
    from rag.pipeline import prepare_reader

    t0 = time.perf_counter()
    try:
        path = prepare_reader(settings)
    except Exception as exc:  # noqa: BLE001 - the index is done; answering can still export or use torch
        print(
            f"warning: the reader's ONNX export could not be prepared ({exc}); `rag serve` will retry", file=sys.stderr
        )
        return
    took = time.perf_counter() - t0
    if path is not None and took > 1 and not quiet:
        print(f"prepared the reader for answering in {took:.1f} s (once): {path}", file=sys.stderr)


def _print_passages(query: str, passages, as_json: bool) -> None:
    if as_json:
        results = [p.to_out().model_dump() for p in passages]
        print(json.dumps({"query": query, "results": results}, ensure_ascii=False), flush=True)
        return
    print(f"query: {query}")
    for i, p in enumerate(passages, 1):
        c = p.chunk
        print(f"  {i}. [{p.score:.4f}] {c.doc_id} {c.start}-{c.end}: {c.text}")
    print(flush=True)


def _each_query(command: str, arg: str, handle) -> int:
    """Run `handle` on every query; a bad one is reported and the rest still run (stdin batches)."""
    from rag.errors import QueryError

    status = 0
    for query in _queries(arg):
        try:
            handle(query)
        except QueryError as exc:
            print(f"rag {command}: {exc.describe()}", file=sys.stderr)
            status = EXIT_USAGE
    return status


def cmd_search(args) -> int:
    from rag.pipeline import Pipeline

    settings = _settings(args)
    with loading("search", "the index"):
        pipeline = Pipeline.load(settings)
    return _each_query(
        "search", args.query, lambda q: _print_passages(q.strip(), pipeline.search(q, args.k), args.json)
    )


def format_answer(answer) -> str:
    """Human output: the answer with its confidence in words, then each cited source with the cited span marked.

    An answer the confidence floor withheld reads "The documents don't say for sure; closest: <the guess>",
    and the guess's evidence and sources follow, as an answer's would."""
    from rag.contract import confidence_words

    guess = answer.best_guess
    shown = guess or answer
    head = f"{answer.reason}; closest: {guess.answer}" if guess is not None else answer.answer
    word = confidence_words(shown.confidence)
    lines = [f"{head}  ({word})" if word else head]
    if answer.refused and answer.reason and guess is None:
        lines.append(f"  (refused: {answer.reason})")
    if not answer.refused or guess is not None:
        for e in shown.evidence:
            lines.append(f"  evidence [{e.n}]: {e.text}")
    for c in shown.citations:
        rel_start, rel_end = c.start - c.passage_start, c.end - c.passage_start
        marked = c.text[:rel_start] + "⟦" + c.text[rel_start:rel_end] + "⟧" + c.text[rel_end:]
        lines.append(f"  [{c.n}] {c.source} (chars {c.start}-{c.end}): {marked}")
    return "\n".join(lines)


def cmd_ask(args) -> int:
    from rag.pipeline import Pipeline

    settings = _settings(args)
    with loading("ask", "the index and the model"):
        pipeline = Pipeline.load(settings, with_generator=True)

    def answer(question: str) -> None:
        result = pipeline.ask(question, args.k)
        text = result.model_dump_json() if args.json else format_answer(result) + "\n"
        print(text, flush=True)

    return _each_query("ask", args.question, answer)


FOLDERS = (
    "documents folder: --seeds-dir or RAG_SEEDS_DIR (default seeds/); "
    "index folder: --index-dir or RAG_INDEX_DIR (default index/)."
)
MODEL = "the model (bundled SmolLM2, --model gemma3, or --model-path FILE.gguf; RAG_LLM_URL: a generation server)"
COMMANDS = {  # name: (one-line help, what it reads and writes: the --help description)
    "ingest": (
        "build or update the index from the documents folder",
        "Reads every document in the documents folder; writes the index folder (only changed documents are "
        "re-embedded). Prints a summary on stdout (each document read with its passages and their median length, "
        "flagging one whose passages are far shorter than the chunk size), progress on stderr. The first time, also "
        "writes the reader's ONNX export into RAG_ONNX_CACHE_DIR, so the first `rag serve` starts fast. " + FOLDERS,
    ),
    "search": (
        "show the passages retrieved for a query ('-' reads queries from stdin)",
        "Reads the index folder; writes nothing. Prints the passages with their scores on stdout "
        "(--json: one JSON object per query). " + FOLDERS,
    ),
    "ask": (
        "answer a question with citations ('-' reads questions from stdin)",
        f"Reads the index folder and {MODEL}; writes nothing. Prints the answer and its numbered sources on "
        "stdout (--json: one answer object per question); a loading line (on a terminal) and errors on stderr. "
        + FOLDERS,
    ),
    "eval": (
        "run the evaluation questions and write results, report and chart",
        f"Reads the questions file (--questions, default eval/questions.jsonl), the index folder and {MODEL}; "
        "writes results.json, report.md, failures.jsonl and a chart into --out (default eval/runs/<time>-<model>/). "
        + FOLDERS,
    ),
    "serve": (
        "start the chat UI and the HTTP API on one model",
        f"Reads the index folder and {MODEL}; serves the chat at / and the API at --host:--port. Writes documents "
        "added through the chat or POST /documents into the documents folder, and the index folder as they are "
        "indexed (deleting removes both); Gradio keeps uploads in its temp folder for an hour. " + FOLDERS,
    ),
    "bench": (
        "measure speed and memory, against raw llama.cpp",
        f"Reads the index folder and {MODEL}, and builds throwaway indexes in a temp folder; writes the markdown "
        "report (--out, default eval/runs/bench-<time>/bench.md). --concurrency starts generation servers on "
        "free loopback ports and stops them after. " + FOLDERS,
    ),
}
ANSWERING = ("index", "retrieval", "generation", "answering")
SETTINGS_OF = {  # the settings groups (rag/settings.py) each command reads: its setting flags are theirs
    "ingest": ("index",),
    "search": ("index", "retrieval"),
    "ask": ANSWERING,
    "eval": ANSWERING,
    "serve": (*ANSWERING, "server"),
    "bench": ANSWERING,
}


def build_parser(flags_for: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The `rag` parser; each command gets a flag for every setting it reads (rag.settings.add_flags).

    `flags_for`: the commands given their setting flags (default: all). Generating them imports pydantic
    (about a quarter of a second), so `main` asks only for the command being run: `rag --help` stays instant.
    """
    flags_for = COMMANDS if flags_for is None else set(flags_for)
    parser = Parser(prog="rag", description="Answer questions from your documents, with citations.")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show informational logging, and other libraries' logs"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str) -> argparse.ArgumentParser:
        help_text, description = COMMANDS[name]
        return sub.add_parser(name, help=help_text, description=description)

    def setting_flags(name: str, p: argparse.ArgumentParser) -> None:
        """After the command's own arguments: a flag the command defines itself keeps its meaning."""
        if name in flags_for:
            from rag.settings import add_flags

            add_flags(p, SETTINGS_OF[name])

    p = command("ingest")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_ingest)
    setting_flags("ingest", p)

    p = command("search")
    p.add_argument("query")
    p.add_argument("--json", action="store_true", help="one JSON object per query")
    p.set_defaults(func=cmd_search)
    setting_flags("search", p)

    p = command("ask")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="one JSON answer object per question")
    p.set_defaults(func=cmd_ask)
    setting_flags("ask", p)

    # Commands implemented in their own modules; each module keeps heavy imports inside functions.
    import rag_eval.bench.command as bench
    import rag_eval.evaluate as evaluation
    from rag import server

    for name, module in [("eval", evaluation), ("serve", server), ("bench", bench)]:
        p = command(name)
        module.add_arguments(p)
        p.set_defaults(func=module.run_command)
        setting_flags(name, p)
    return parser


def quiet_third_parties(verbose: bool) -> None:
    """Other libraries log at WARNING (shown) with -v, and not at all without it."""
    level = logging.WARNING if verbose else logging.CRITICAL + 1
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if not verbose:
        import warnings

        warnings.filterwarnings("ignore")  # torch/transformers deprecation notices on import
        import os

        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    named = next((a for a in argv if not a.startswith("-")), None)  # the command: only options come before it
    args = build_parser(flags_for=[named] if named in COMMANDS else []).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="rag: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    quiet_third_parties(args.verbose)
    from rag.errors import RagError

    try:
        return args.func(args) or 0
    except RagError as exc:
        print(f"rag {args.command}: {exc.describe()}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `rag … | head` closed the pipe: not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
