"""API edge: the pydantic request and response models (the shapes of /openapi.json).

The core hands back frozen dataclasses and their dicts; these models only describe and check them
at the edge. `document_out` shapes an index's document record for the document fields below.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic_core import PydanticCustomError


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


class FactsIn(BaseModel):
    """A company as a policy calculator asks about it; every field optional (a field not given leaves
    the conditions on it unknown). Quantities are "number + unit" strings the core parses."""

    model_config = ConfigDict(extra="forbid")

    qualifications: list[Annotated[str, Field(max_length=60)]] | None = Field(
        None, max_length=50, description="types and recognitions held, e.g. [\"国家高新技术企业\"]; a list "
        "given is complete: a qualification not in it counts as not held")
    industry: str | None = Field(None, max_length=40, description="e.g. 工业, 商贸 (data/industries.tsv)")
    employees: int | None = Field(None, ge=0, le=10_000_000, description="headcount")
    revenue_10k: float | None = Field(None, ge=0, le=1e9, description="annual revenue in 万元")
    rd_ratio: float | None = Field(None, ge=0, le=100, description="R&D spending as % of revenue")
    founded: int | None = Field(None, ge=1800, le=2200, description="the year the company was founded")
    quantities: dict[Annotated[str, Field(min_length=1, max_length=40)], Annotated[str, Field(max_length=40)]] | None = Field(
        None, max_length=30, description="name → number with unit, e.g. {\"节能量\": \"2000吨标准煤\"}")


class MatchRequest(BaseModel):
    region: str | None = Field(None, max_length=60, description="where the company is registered")
    profile: str | None = Field(None, description="free text: types, recognitions, plans, size")
    facts: FactsIn | None = Field(None, description="the structured profile (policy calculator); omit for the free-text match")
    only_current: bool = False


class AnswerOut(BaseModel):
    """How an answer to an unknown condition's question becomes a fact (a form asks it in place)."""

    fact: str  # quantities.<name> | employees | revenue_10k | rd_ratio | founded | industry | profile
    unit: str | None = None  # a number in this unit answers it
    yes: str | None = None  # the value a yes sets
    no: str | None = None
    choices: list[str] | None = None  # one of these answers it


class ConditionOut(BaseModel):
    text: str
    status: Literal["met", "unmet", "unknown"]
    why: str
    kind: str = ""
    question: str | None = None
    answer: AnswerOut | None = None


class EstimateOut(BaseModel):
    amount_yuan: float | None = None
    min_yuan: float | None = None
    max_yuan: float | None = None
    formula: str
    quote: str


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
    # with facts only (the calculator); empty or null otherwise
    conditions: list[ConditionOut] = []
    eligible: bool | None = None
    estimate: EstimateOut | None = None
    group: Literal["", "eligible", "unknown", "near_miss"] = ""
    question: str = ""
    missing: str = ""


class MatchResponse(BaseModel):
    matches: list[MatchOut]
    unused: list[str] = []  # with facts: the facts no clause of the library conditions on
    took_ms: float


class QuantityOption(BaseModel):
    name: str
    unit: str
    dimension: str


class MatchOptionsResponse(BaseModel):
    qualifications: list[str]
    quantities: list[QuantityOption]
    industries: list[str]
    units: dict[str, list[str]]


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


# ---------------------------------------------------------------- the OpenAI-compatible door (/v1)


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls …: accepted, not used

    role: str = Field(..., description="system, developer, user, assistant or tool")
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: StrictBool = False


class ChatCompletionRequest(BaseModel):
    # temperature, top_p, max_tokens, user …: accepted and ignored (answers are quoted, not sampled)
    model_config = ConfigDict(extra="allow")

    model: str = Field(..., description="policy-assistant")
    messages: list[ChatMessageIn] = Field(..., description="the conversation, oldest first; the last is the user's question")
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="only one choice")

    @field_validator("stream_options")
    @classmethod
    def _only_when_streaming(cls, value, info):
        if value is not None and not info.data.get("stream"):
            raise PydanticCustomError("stream_options", "only allowed when stream is true")
        return value


class CompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str  # the answer with its [n] markers, then the sources
    citations: list[CitationOut]


class CompletionChoice(BaseModel):
    index: int = 0
    message: CompletionMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class CompletionUsage(BaseModel):
    """Counted in characters (the answers are quoted, not generated by a tokenizer's model)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
