"""API edge: the pydantic request and response models (the shapes of /openapi.json).

The core hands back frozen dataclasses and their dicts; these models only describe and check them
at the edge. `document_out` shapes an index's document record for the document fields below.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field



class ChatRequest(BaseModel):
    message: str = Field(..., description="the user's message (1–max_message_chars characters)")
    session_id: str | None = Field(None, description="omit to start a new session")


class ValidityOut(BaseModel):
    status: Literal["current", "expired", "unknown"]
    until: str | None = None
    basis: str = ""


class CitationOut(BaseModel):
    n: int
    clause_id: str
    doc_id: str
    doc_title: str
    region: str
    section: str
    text: str
    quote: str
    score: float
    issued: str | None = None
    validity: ValidityOut | None = None


class ClarifyOut(BaseModel):
    question: str
    options: list[str]


class ChatResponse(BaseModel):
    source: Literal["retrieval", "curated"] = "retrieval"  # "curated": a staff-written answer served for the question
    session_id: str | None
    turn: int
    answer: str
    notice: str = ""  # validity advice on a cited document (expired, or old and undated)
    clarify: ClarifyOut | None = None  # present when the answer differs by region and the question named none
    refused: bool
    rewritten_query: str
    citations: list[CitationOut]
    related: list[CitationOut]


class SearchRequest(BaseModel):
    query: str
    k: int = Field(5, ge=1, le=100)
    region: str | None = None
    doc_id: str | None = None
    department: str | None = None
    only_current: bool = False  # only documents whose stated term has not ended


class MatchRequest(BaseModel):
    region: str | None = Field(None, max_length=60, description="where the company is registered")
    profile: str | None = Field(None, description="free text: types, recognitions, plans, size")
    only_current: bool = False


class MatchOut(BaseModel):
    clause_id: str
    doc_id: str
    doc_title: str
    region: str
    section: str
    benefit: str
    condition: str
    quote: str
    validity: ValidityOut
    why: list[str]
    score: float


class MatchResponse(BaseModel):
    matches: list[MatchOut]
    took_ms: float


class ClauseFields(BaseModel):
    """The public fields of a clause (Clause.record())."""

    clause_id: str
    doc_id: str
    doc_title: str
    region: str
    section: str
    text: str
    department: str


class HitOut(ClauseFields):
    score: float


class SearchResponse(BaseModel):
    hits: list[HitOut]
    took_ms: float


class FeedbackRequest(BaseModel):
    session_id: str = Field(..., min_length=1, max_length=200)
    turn: int = Field(..., ge=0)
    rating: Literal["up", "down"]
    comment: str = Field("", max_length=2000)


class OkResponse(BaseModel):
    ok: bool = True


class HealthResponse(BaseModel):
    status: str
    documents: int
    clauses: int
    model: str
    regions: list[str]


class DocumentOut(BaseModel):
    doc_id: str
    title: str
    issuer: str = ""
    region: str = ""
    level: str = ""
    date: str = ""
    doc_number: str = ""
    clause_count: int = 0
    duplicates: list[str] = []  # doc_ids of near-duplicate copies dropped at build time in its favour
    issued: str | None = None
    validity: ValidityOut | None = None


class DocumentsResponse(BaseModel):
    documents: list[DocumentOut]


class ClauseOut(BaseModel):
    clause_id: str
    section: str
    text: str
    department: str
    ordinal: int


class DocumentResponse(BaseModel):
    document: DocumentOut
    clauses: list[ClauseOut]


class ClauseResponse(ClauseFields):
    ordinal: int
    document: DocumentOut | None = None


class UploadResponse(BaseModel):
    doc_id: str
    file: str
    source: str
    chars: int
    reindex_needed: bool = True


class AdminDocument(BaseModel):
    doc_id: str
    file: str
    source: str
    title: str
    bytes: int
    indexed: bool


class AdminDocumentsResponse(BaseModel):
    documents: list[AdminDocument]


class ReindexStatus(BaseModel):
    state: Literal["idle", "running", "done", "failed"]
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    stats: dict | None = None
    progress: dict | None = None  # stage, documents_done/total, clauses_done/total, seconds_left



def document_out(record: dict, today=None) -> dict:
    """An index's document record in the shape of DocumentOut, with its validity judged on `today`."""
    from assistant.validity import of_record

    special = ("clause_count", "duplicates", "issued", "validity")
    out = {k: str(record.get(k) or "") for k in DocumentOut.model_fields if k not in special}
    out["clause_count"] = int(record.get("clause_count") or 0)
    out["duplicates"] = [str(d) for d in record.get("duplicates") or ()]
    out["issued"] = record.get("issued") or None
    out["validity"] = of_record(record, today).to_dict()
    return out
