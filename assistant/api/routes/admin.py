"""API edge, admin: the library's files (upload, list, delete), feedback review and re-index.

Every route needs the admin token (deps.AdminOnly); the work is the library's, these only translate.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, File, Form, Query, Request, UploadFile

from assistant.api.deps import AdminOnly, AssistantDep, LibraryDep, ReindexerDep, StoreDep
from assistant.api.models import AdminDocumentsResponse, OkResponse, ReindexStatus, UploadResponse

router = APIRouter(tags=["admin"], dependencies=[AdminOnly])


@router.post("/api/admin/documents", response_model=UploadResponse, status_code=201)
def upload(
    request: Request,
    library: LibraryDep,
    file: UploadFile = File(...),
    valid_until: str = Form("", description="optional ISO date overriding the term read from the text"),
    validity_basis: str = Form("", max_length=300, description="why (shown as the validity basis)"),
) -> dict:
    """Add a policy document (.txt, .html, .docx, .pdf); re-index to make it searchable."""
    request.state.audit = {"target": file.filename or ""}  # the audit names the file (routes/console.py)
    added = library.add(file.filename, file.file, valid_until, validity_basis)
    return {**asdict(added), "reindex_needed": True}


@router.get("/api/admin/documents", response_model=AdminDocumentsResponse)
def admin_documents(library: LibraryDep, assistant: AssistantDep) -> dict:
    """The files of the corpus folder, and whether each is in the live index."""
    return {"documents": [asdict(f) for f in library.files(assistant.index.documents)]}


@router.delete("/api/admin/documents/{doc_id}", response_model=OkResponse)
def delete_document(doc_id: str, library: LibraryDep) -> dict:
    """Remove a document's file and sidecar; re-index to drop it from answers."""
    library.remove(doc_id)
    return {"ok": True}


@router.get("/api/admin/feedback")
def admin_feedback(store: StoreDep, limit: int = Query(100, ge=1, le=1000)) -> dict:
    """The latest feedback for staff review, newest first."""
    return {"feedback": store.feedback(limit)}


@router.post("/api/admin/reindex", response_model=ReindexStatus, status_code=202)
def reindex(reindexer: ReindexerDep) -> dict:
    """Start a background re-index (409 while one runs); queries use the old index until the swap."""
    return reindexer.begin()


@router.get("/api/admin/reindex", response_model=ReindexStatus)
def reindex_status(reindexer: ReindexerDep) -> dict:
    """The state of the latest re-index."""
    return reindexer.snapshot()
