"""API edge, lookup: clause search, the indexed documents, one document with its clauses, one clause."""

from __future__ import annotations

import time

from fastapi import APIRouter

from assistant.api.deps import AssistantDep, RateLimited, SettingsDep
from assistant.api.models import ClauseResponse, DocumentResponse, DocumentsResponse, SearchRequest, SearchResponse, document_out
from assistant.api.routes import took_ms
from assistant.library import clause_view, document_view
from assistant.schema import QueryError

router = APIRouter(tags=["lookup"])


@router.post("/api/search", response_model=SearchResponse, dependencies=[RateLimited])
def search(req: SearchRequest, assistant: AssistantDep, settings: SettingsDep) -> dict:
    """Hybrid clause search with optional region, document and department filters."""
    query = _checked_query(req.query, settings.max_message_chars)
    started = time.perf_counter()
    hits = assistant.search(
        query, k=req.k, region=req.region or None, doc_id=req.doc_id or None, department=req.department or None,
        current_on=assistant.today() if req.only_current else None,
    )
    return {"hits": [h.to_dict() for h in hits], "took_ms": took_ms(started)}


@router.get("/api/documents", response_model=DocumentsResponse)
def documents(assistant: AssistantDep) -> dict:
    """Every indexed document's metadata."""
    today = assistant.today()
    return {"documents": [document_out(d, today) for d in assistant.index.documents]}


@router.get("/api/documents/{doc_id}", response_model=DocumentResponse)
def document(doc_id: str, assistant: AssistantDep) -> dict:
    """A document's metadata and its clauses in order (section paths give the tree)."""
    record, clauses = document_view(assistant.index, doc_id)
    return {
        "document": document_out(record, assistant.today()),
        "clauses": [
            {"clause_id": c.clause_id, "section": c.section, "text": c.text, "department": c.department, "ordinal": c.ordinal}
            for c in clauses
        ],
    }


@router.get("/api/clauses/{clause_id:path}", response_model=ClauseResponse)
def clause(clause_id: str, assistant: AssistantDep) -> dict:
    """One clause by its id (URL-encode the '#')."""
    c, record = clause_view(assistant.index, clause_id)
    return {**c.record(), "ordinal": c.ordinal, "document": document_out(record, assistant.today()) if record else None}


def _checked_query(query: str, limit: int) -> str:
    # Unlike a chat message the query is searched as sent (not stripped); only emptiness and length are refused.
    if not query.strip():
        raise QueryError("query: must not be empty")
    if len(query) > limit:
        raise QueryError(f"query: too long ({len(query)} characters, at most {limit})")
    return query
