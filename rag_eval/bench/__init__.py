"""`rag bench`: how fast is it, where does the time go, and how far is each number from its target.

Everything is measured on this machine with the configured model and embedder; nothing is estimated
unless the report says so.

    command     the run and the command line (`add_arguments`, `run_command`; rag.cli registers it)
    clock       timing and bookkeeping helpers
    corpus      the synthetic corpus and the scaled-up indexes
    startup     `rag --help`, cold start in a child process, embedder load
    retrieval   search latency at the seed, synthetic and scaled sizes; ingest rate
    generation  TTFT, tokens/s, overhead against raw llama-cpp-python, prompt work, threads
    server      /ask latency over HTTP, one and several clients
    concurrency `--concurrency N`: N clients at once in-process and through RAG_LLM_URL (servers it starts)
    report      the markdown table, targets, findings and `--json`
"""
