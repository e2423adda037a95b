"""`rag serve`: the HTTP API (rag/api/) under uvicorn, on one model loaded in the background.

Only the standard library is imported at module top: the CLI imports this module to build its parser.
"""

from __future__ import annotations

import ipaddress
import sys

GRACEFUL_SHUTDOWN_S = 5  # an open answer stream should not keep Ctrl-C waiting


def add_arguments(parser) -> None:
    parser.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, help="port (default 8000)")


def run_command(args) -> int:
    import uvicorn

    from rag.api import create_app
    from rag.settings import build_settings

    settings = build_settings(vars(args))
    _warn_if_exposed(settings)
    app = create_app(settings, loader=_announcing_loader)
    if settings.api_token:
        # The chat page calls the pipeline directly, so it would bypass the token: leave it out.
        print("rag serve: RAG_API_TOKEN is set, so the chat page is off; the API needs the token", file=sys.stderr)
    else:
        from ui.app import mount_ui

        service = app.state.service
        mount_ui(  # last: "/" catches every path no API route matched
            app,
            service.get_pipeline,
            library=service.library,
            admission=service.admission,  # chat answers share the API's limit
            queue_size=settings.queue_size,
        )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info" if getattr(args, "verbose", False) else "warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    _serve(config)
    return 0


def _announcing_loader(settings):
    """The default loader, plus one line on stdout when the model is in (the log level may hide info)."""
    from rag.api.service import load_pipeline

    pipeline = load_pipeline(settings)
    info = pipeline.info()
    print(f"rag serve: ready: {info['model']}, {info['documents']} documents, {info['chunks']} chunks", flush=True)
    return pipeline


def _serve(config) -> None:
    """Run uvicorn, printing the bound address once the socket listens (the model may still be loading)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                host, port = self.servers[0].sockets[0].getsockname()[:2]
                host = f"[{host}]" if ":" in host else host
                print(f"rag serve: listening on http://{host}:{port} (chat at /, API docs at /docs)", flush=True)

    Server(config).run()


def _warn_if_exposed(settings) -> None:
    try:
        loopback = ipaddress.ip_address(settings.host).is_loopback
    except ValueError:
        loopback = settings.host == "localhost"
    if not loopback and not settings.api_token:
        print(f"rag serve: warning: listening on {settings.host} without RAG_API_TOKEN; anyone who can reach "
              "this machine can use the API", file=sys.stderr)  # fmt: skip
    if not loopback:
        print(f"rag serve: requests are answered when addressed to an IP or to {', '.join(settings.allowed_hosts)}; "
              "set RAG_ALLOWED_HOSTS to add the name you browse to", file=sys.stderr)  # fmt: skip
