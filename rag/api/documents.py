"""/documents: upload, list and remove the documents a running server answers from.

Thin handlers over `RagService.library` (rag/library.py), which the chat calls too, so both apply the
same checks and share the one index writer. An upload answers 202 at once: the file is saved, and is
indexed in the background (GET /documents shows pending → indexing → ready, or failed with the problem).
The answers of /ask follow without a restart (rag/live.py).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, File, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from rag.api.errors import translate
from rag.api.routes import Service
from rag.api.schemas import ErrorOut
from rag.errors import RagError

UPLOAD_OVERHEAD_BYTES = 64 * 1024  # multipart headers and boundaries around the file, on top of the file limit

Status = Literal["pending", "indexing", "ready", "failed", "deleting", "deleted"]


class DocumentOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f0c9a1b2d4e",
                    "name": "annual report.pdf",
                    "status": "ready",
                    "type": "pdf",
                    "sha256": "45f26feca34a4bff5bad4c2ac41e6af9bcb5b11db1d8efd369b2529788b5004c",
                    "pages": 12,
                    "chunks": 87,
                    "median_chars": 204,
                    "split_badly": False,
                },
                {
                    "id": "9b1e77c0a2f3",
                    "name": "scan.pdf",
                    "status": "failed",
                    "type": "pdf",
                    "problem": "no text layer (a scanned PDF?)",
                },
            ]
        }
    )

    id: str = Field(description="Stable id of the document (from its name); use it to remove it.")
    name: str = Field(description="File name in the documents folder (the `source` of its citations).")
    status: Status = Field(description="pending, indexing, ready (answered from), failed (see `problem`), deleting.")
    type: str | None = Field(None, description="text, markdown, html, pdf or docx, read from the content.")
    sha256: str | None = None
    bytes: int | None = Field(None, description="Size of an upload still in progress.")
    pages: int | None = None
    chunks: int | None = Field(None, description="Passages indexed from it.")
    median_chars: int | None = Field(
        None, description="Median length of its passages in characters (table rows left out), beside the chunk size."
    )
    split_badly: bool | None = Field(
        None,
        description="True when its passages are far shorter than the chunk size (many passages, median under a "
        "fifth of it): the file's format may have been read badly, sentences cut into pieces.",
    )
    problem: str | None = Field(None, description="Why it could not be indexed or removed.")


ERRORS = {
    401: {"model": ErrorOut, "description": "Missing or wrong bearer token (only when the server has one)."},
    503: {"model": ErrorOut, "description": "Model and index still loading, or too many changes waiting."},
}

router = APIRouter(tags=["documents"], responses=ERRORS)


@router.get("/documents", response_model=list[DocumentOut], response_model_exclude_none=True, summary="List documents")
async def list_documents(service: Service) -> list[dict]:
    """The served index's documents (status `ready`), then uploads and removals still in progress."""
    return await run_in_threadpool(service.library.list)


@router.post(
    "/documents",
    status_code=202,
    response_model=DocumentOut,
    response_model_exclude_none=True,
    summary="Upload a document",
    responses={
        409: {"model": ErrorOut, "description": "The same file is already in the documents."},
        413: {"model": ErrorOut, "description": "File larger than the upload limit (RAG_MAX_UPLOAD_BYTES)."},
        415: {
            "model": ErrorOut,
            "description": "Not a text, Markdown, HTML, PDF or DOCX file (judged from the content).",
        },
        422: {"model": ErrorOut, "description": "No `file` part in the multipart form."},
    },
)
async def upload_document(service: Service, file: UploadFile = File(description="The document (multipart `file`).")):
    """Save the file into the documents folder (under a safe, unused name) and index it in the background."""
    limit = service.settings.max_upload_bytes
    data = await file.read(limit + 1)  # one byte more than allowed is enough to refuse it
    try:
        return await run_in_threadpool(service.library.add, file.filename or "", data)
    except RagError as exc:
        raise translate(exc) from exc
    finally:
        await file.close()


@router.delete(
    "/documents/{doc_id}",
    status_code=202,
    response_model=DocumentOut,
    response_model_exclude_none=True,
    summary="Remove a document",
    responses={
        404: {"model": ErrorOut, "description": "No document with this id."},
        409: {"model": ErrorOut, "description": "The document is being indexed right now."},
    },
)
async def remove_document(doc_id: str, service: Service) -> dict:
    """Delete the file now and its passages in the background (`deleting`, then gone from the list)."""
    try:
        return await run_in_threadpool(service.library.remove, doc_id)
    except RagError as exc:
        raise translate(exc) from exc
