"""`python -m ui [--port 7860]`: the chat page alone (no HTTP API), for trying the UI.

The page runs over the same `RagService` as under `rag serve` (so the same limits and the same documents
panel), loading the pipeline in a background thread: the page answers "Model is loading…" until it is in.
`rag serve` is the real entry point: it serves the API and mounts this same page at "/".
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)

    import uvicorn
    from fastapi import FastAPI

    from rag.api.app import HostGuard
    from rag.api.service import RagService, load_pipeline
    from rag.settings import Settings
    from ui.app import mount_ui

    settings = Settings()
    service = RagService(settings)
    service.start_loading(load_pipeline)
    app = FastAPI()
    app.add_middleware(HostGuard, allowed=settings.allowed_hosts)  # DNS rebinding: as under `rag serve`
    app = mount_ui(app, service)
    print(f"chat UI on http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
