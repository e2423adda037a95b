"""`rag serve`: the HTTP API (rag/api/) under uvicorn, on one model loaded in the background.

Only the standard library is imported at module top: the CLI imports this module to build its parser.

The listening socket is bound before the app is built or the model loads: a port in use is then one line
naming `--port` (or `RAG_PORT`) and exit 2, not uvicorn's logged "[Errno 98] …" and exit 3 after startup.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys

GRACEFUL_SHUTDOWN_S = 5  # an open answer stream should not keep Ctrl-C waiting


def add_arguments(parser) -> None:
    """None of its own: `--host`, `--port` and the other server flags are generated from the server settings
    (rag.settings.ServerSettings) with the rest of the settings flags."""


def run_command(args) -> int:
    import uvicorn

    from rag.api import create_app
    from rag.settings import build_settings, flag_values

    settings = build_settings(flag_values(args))
    sock = bind(settings)
    _warn_if_exposed(settings)
    app = create_app(settings, loader=_announcing_loader)
    if settings.api_token:
        # The chat page calls the pipeline directly, so it would bypass the token: leave it out.
        print("rag serve: RAG_API_TOKEN is set, so the chat page is off; the API needs the token", file=sys.stderr)
    else:
        from ui.deferred import mount_ui_later

        # last: "/" catches every path no API route matched. The chat answers through the API's service, so
        # it shares its admission limit, question limit and documents. Built once the model is in, so Gradio's
        # import (~3 s) does not delay listening or /health "ready" (ui/deferred.py).
        mount_ui_later(app, app.state.service)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info" if getattr(args, "verbose", False) else "warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    _serve(config, sock)
    return 0


def bind(settings) -> socket.socket:
    """The listening socket for `settings.host`:`settings.port` (as uvicorn would bind it), or a `ServeError`
    saying why not in one line that names the flag or variable to change."""
    from rag.errors import ServeError

    host, port = settings.host, settings.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as exc:
        sock.close()
        where = f"{host}:{port}" if family == socket.AF_INET else f"[{host}]:{port}"
        code = getattr(exc, "errno", None)
        if code == errno.EADDRINUSE:
            raise ServeError(
                f"port {port} is already in use on {host}; stop what is listening there, "
                f"or choose another port with {settings.name_of('port')}"
            ) from None
        if code == errno.EACCES:
            raise ServeError(
                f"not allowed to listen on port {port} (ports below 1024 need privileges); "
                f"choose another port with {settings.name_of('port')}"
            ) from None
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ServeError(f"cannot listen on {where}: {reason}; check {settings.name_of('host')}") from None
    sock.set_inheritable(True)
    return sock


def _announcing_loader(settings):
    """The default loader, warmed (so the line comes when /health says ready), plus one line on stdout when
    the model is in (the log level may hide info). The service's own warm-up then returns at once."""
    from rag.api.service import load_pipeline, warm_up

    pipeline = load_pipeline(settings)
    warm_up(pipeline)
    info = pipeline.info()
    from rag.text import counted

    docs, chunks = (
        counted(info[k], k.rstrip("s")) if isinstance(info[k], int) else info[k] for k in ("documents", "chunks")
    )
    print(f"rag serve: ready: {info['model']}, {docs}, {chunks}", flush=True)
    return pipeline


def _serve(config, sock=None) -> None:
    """Run uvicorn, printing the bound address once the socket listens (the model may still be loading)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                host, port = self.servers[0].sockets[0].getsockname()[:2]
                host = f"[{host}]" if ":" in host else host
                print(f"rag serve: listening on http://{host}:{port} (chat at /, API docs at /docs)", flush=True)

    Server(config).run(sockets=[sock] if sock is not None else None)


def _warn_if_exposed(settings) -> None:
    try:
        loopback = ipaddress.ip_address(settings.host).is_loopback
    except ValueError:
        loopback = settings.host == "localhost"
    if not loopback and not settings.api_token:
        print(
            f"rag serve: warning: listening on {settings.host} without RAG_API_TOKEN; anyone who can reach "
            "this machine can use the API",
            file=sys.stderr,
        )
    if not loopback:
        print(
            f"rag serve: requests are answered when addressed to an IP or to {', '.join(settings.allowed_hosts)}; "
            "set RAG_ALLOWED_HOSTS to add the name you browse to",
            file=sys.stderr,
        )
