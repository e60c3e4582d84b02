"""API edge, the console's request and response models (staff routes: routes/console.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class SignInRequest(BaseModel):
    token: str = Field(..., min_length=1, max_length=500)


class SessionOut(BaseModel):
    actor: str
    csrf: str | None = None  # send it back as X-CSRF-Token on every write made with the session cookie
    expires_at: float | None = None


class ValidityRequest(BaseModel):
    valid_until: str = Field("", max_length=20, description="ISO date; empty clears the override")
    basis: str = Field("", max_length=300)


class ValidityResponse(BaseModel):
    doc_id: str
    override: dict
    reindex_needed: bool = True


class UploadResult(BaseModel):
    file: str
    ok: bool
    status: int
    doc_id: str | None = None
    chars: int | None = None
    error: str | None = None


class BatchUploadResponse(BaseModel):
    results: list[UploadResult]
    reindex_needed: bool


class CuratedRequest(BaseModel):
    question: str = Field(..., max_length=1000)
    answer: str = Field(..., max_length=5000)
    clause_ids: list[str] = Field(..., max_length=20)
    note: str = Field("", max_length=1000)


class CreatedResponse(BaseModel):
    id: int


class CuratedOut(BaseModel):
    id: int
    question: str
    answer: str
    clause_ids: list[str]
    note: str
    actor: str
    created_at: float
    updated_at: float
    missing: list[str]  # cited clauses the live index no longer holds: the answer is not served
    served: bool


class CuratedListResponse(BaseModel):
    curated: list[CuratedOut]


class TestItemRequest(BaseModel):
    question: str = Field(..., max_length=1000)
    clause_ids: list[str] = Field([], max_length=20)
    expected: str = Field("", max_length=5000)
    facts: list[str] = Field([], max_length=20)
    refuse: bool = False
    feedback_id: int | None = None


class EvalRunRequest(BaseModel):
    testset: str = Field(..., max_length=40, description='"seed", "export" or the id of an uploaded test set')
    limit: int | None = Field(None, ge=1, le=5000)


class EvalRunOut(BaseModel):
    id: int
    testset: str
    actor: str
    state: Literal["running", "done", "failed"]
    started_at: float
    finished_at: float | None = None
    done: int
    total: int
    index_version: str
    metrics: dict
    error: str
    report: dict | None = None
