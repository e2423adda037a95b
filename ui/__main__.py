"""`python -m ui [--port 7860]`: the chat page alone (no HTTP API), for trying the UI.

The pipeline loads in a background thread, so the page answers "Model is loading…" until it is in.
`rag serve` is the real entry point: it serves the API and mounts this same page at "/".
"""

from __future__ import annotations

import argparse
import threading


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)

    import uvicorn
    from fastapi import FastAPI

    from rag.pipeline import Pipeline
    from rag.settings import Settings
    from ui.app import mount_ui

    state: dict = {}

    def load() -> None:
        try:
            state["pipeline"] = Pipeline.load(Settings(), with_generator=True)
        except Exception as exc:  # noqa: BLE001 - shown on the page
            state["error"] = exc

    def get_pipeline():
        if "error" in state:
            raise state["error"]
        return state.get("pipeline")

    threading.Thread(target=load, name="rag-load", daemon=True).start()
    from rag.api.app import HostGuard

    app = FastAPI()
    app.add_middleware(HostGuard, allowed=Settings().allowed_hosts)  # DNS rebinding: as under `rag serve`
    app = mount_ui(app, get_pipeline)
    print(f"chat UI on http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
