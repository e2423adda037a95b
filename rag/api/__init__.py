"""The HTTP API (`rag serve`): FastAPI routes over one loaded pipeline. See rag/api/app.py."""

from rag.api.app import create_app

__all__ = ["create_app"]
