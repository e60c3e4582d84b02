"""API edge: `create_app(settings)` — FastAPI routes over the Assistant, the static widget and lookup pages.

Core errors become HTTP statuses here and nowhere else. Chat and search are rate-limited per
client; admin routes (upload, list, delete, re-index) need the bearer token and vanish (404)
without one. A re-index runs in a background thread and swaps the index atomically, so queries
keep being answered from the old index meanwhile.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import signal
import threading
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from assistant.schema import (
    BackendError,
    CorpusError,
    IndexMissingError,
    QueryError,
    StaleIndexError,
    UnknownClauseError,
    UnknownDocumentError,
    UnknownSessionError,
)

STATIC = Path(__file__).resolve().parent / "static"
_UNSAFE_NAME = re.compile(r"[/\\\x00]|^\.|\.\.")
_DELTA_CHARS = 24


# ---------------------------------------------------------------- request / response models


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


# ---------------------------------------------------------------- helpers


class RateLimiter:
    """Per-client moving-window limit (the `limits` library, which slowapi is built on)."""

    def __init__(self, spec: str):
        from limits import parse
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self.item = parse(spec)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.spec = spec

    def __call__(self, request: Request) -> None:
        client = request.client.host if request.client else "unknown"
        if not self.limiter.hit(self.item, "api", client):
            raise HTTPException(429, f"rate limit exceeded ({self.spec}); please retry later")


class Reindexer:
    """One background re-index at a time; the old index keeps answering until the swap."""

    def __init__(self, settings, assistant):
        self.settings = settings
        self.assistant = assistant
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()  # set at shutdown: the build stops between documents or batches
        self.status = {"state": "idle", "started_at": None, "finished_at": None, "error": None, "stats": None}

    def start(self) -> bool:
        """Start a re-index unless one is running; False when one already is."""
        with self._lock:
            if self.status["state"] == "running" or self._stop.is_set():
                return False
            self.status = {"state": "running", "started_at": time.time(), "finished_at": None, "error": None, "stats": None}
            self._thread = threading.Thread(target=self._run, name="reindex", daemon=True)
            self._thread.start()
            return True

    def join(self, timeout: float | None = None) -> None:
        """Wait for the running re-index (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask a running re-index to stop and wait up to `timeout` s for it. It is a daemon thread: one
        still inside a long embedding batch after that does not keep the process alive."""
        self._stop.set()
        self.join(timeout)

    def _run(self) -> None:
        from dataclasses import asdict

        from assistant import index as index_mod
        from assistant.backends import target_of

        s = self.settings
        try:
            target = self.assistant.target or target_of(s)
            reason, stats, errors = index_mod.build_from_settings(
                s, embedder=self.assistant.embedder, target=target, force=True, stop=self._stop
            )
            self.assistant.swap_index(target.load())
            result = asdict(stats) if stats is not None else {}
            result["skipped"] = [str(e) for e in errors]
            result["reason"] = reason
            with self._lock:
                self.status.update(state="done", finished_at=time.time(), stats=result)
        except Exception as exc:  # a failed build keeps the old index; the reason is shown to the admin
            with self._lock:
                self.status.update(state="failed", finished_at=time.time(), error=f"{exc.__class__.__name__}: {exc}")

    def snapshot(self) -> dict:
        """The current status record."""
        with self._lock:
            return dict(self.status)


def _field_message(err: dict) -> str:
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
    where = ".".join(loc) or "body"
    return f"{where}: {err.get('msg', 'invalid value')}"


def _document_out(record: dict, today=None) -> dict:
    from assistant.validity import of_record

    special = ("clause_count", "duplicates", "issued", "validity")
    out = {k: str(record.get(k) or "") for k in DocumentOut.model_fields if k not in special}
    out["clause_count"] = int(record.get("clause_count") or 0)
    out["duplicates"] = [str(d) for d in record.get("duplicates") or ()]
    out["issued"] = record.get("issued") or None
    out["validity"] = of_record(record, today).to_dict()
    return out


def _validity_override(valid_until: str, basis: str) -> dict:
    """The sidecar override for an upload's term (empty when none given); a bad date is a QueryError."""
    import datetime as dt

    valid_until = (valid_until or "").strip()
    if not valid_until:
        return {}
    try:
        dt.date.fromisoformat(valid_until)
    except ValueError as exc:
        raise QueryError(f"valid_until: not an ISO date (YYYY-MM-DD): {valid_until!r}") from exc
    return {"valid_until": valid_until, "validity_basis": basis.strip() or "上传时标注的有效期"}


def _sidecar_of(path: Path) -> Path:
    return path.with_name(path.stem + ".meta.json")


def _read_sidecar(path: Path) -> dict:
    side = _sidecar_of(path)
    try:
        data = json.loads(side.read_text(encoding="utf-8")) if side.exists() else {}
    except (OSError, json.JSONDecodeError):
        data = {}
    return data if isinstance(data, dict) else {}


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _pieces(text: str, size: int = _DELTA_CHARS) -> list[str]:
    # Cut after Chinese sentence punctuation where possible so a marker like "[12]" is never split.
    parts, buf = [], ""
    for token in re.findall(r"\[\d+\]|.", text, flags=re.S):
        buf += token
        if len(buf) >= size or token in "。；！？\n":
            parts.append(buf)
            buf = ""
    if buf:
        parts.append(buf)
    return parts


# ---------------------------------------------------------------- the app


def create_app(settings=None, assistant=None) -> FastAPI:
    """The FastAPI application over one Assistant (loaded from settings when not given)."""
    from assistant.config import Settings
    from assistant.store import ApiStore

    settings = settings or Settings()
    if assistant is None:
        from assistant.pipeline import Assistant

        assistant = Assistant.from_settings(settings)
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        # Shutdown (SIGTERM) must not wait on a re-index: it is told to stop, and given a moment.
        app.state.reindexer.stop()

    app = FastAPI(
        title="Policy assistant",
        description="Grounded answers with citations over Chinese SME/innovation policy documents.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.assistant = assistant
    app.state.store = store = ApiStore.from_settings(settings)
    app.state.reindexer = reindexer = Reindexer(settings, assistant)
    limit = RateLimiter(settings.rate_limit)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type", "Authorization", "Accept"],
        )

    # ------------------------------------------------ errors → HTTP
    def _handler(status: int):
        async def handle(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=status)

        return handle

    for exc_type, status in (
        (QueryError, 422),
        (UnknownSessionError, 404),
        (UnknownClauseError, 404),
        (UnknownDocumentError, 404),
        (IndexMissingError, 503),
        (StaleIndexError, 503),
        (BackendError, 503),
        (CorpusError, 422),
    ):
        app.add_exception_handler(exc_type, _handler(status))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"detail": "malformed JSON body"}, status_code=400)
        return JSONResponse({"detail": "; ".join(_field_message(e) for e in errors) or "invalid request"}, status_code=422)

    # ------------------------------------------------ public API
    @app.post("/api/chat", response_model=ChatResponse, tags=["chat"], dependencies=[Depends(limit)])
    def chat(req: ChatRequest) -> dict:
        """One turn of a conversation; omit session_id to start one."""
        return app.state.assistant.chat(req.message, req.session_id).to_dict()

    @app.post("/api/chat/stream", tags=["chat"], dependencies=[Depends(limit)],
              responses={200: {"content": {"text/event-stream": {}}}})
    def chat_stream(req: ChatRequest) -> StreamingResponse:
        """The same turn as server-sent events: `meta`, several `delta`, then `done` (the full record) or `error`."""
        record = app.state.assistant.chat(req.message, req.session_id).to_dict()

        def events():
            try:
                yield _sse("meta", {k: record[k] for k in ("session_id", "turn", "rewritten_query")})
                for piece in _pieces(record["answer"]):
                    yield _sse("delta", {"text": piece})
                yield _sse("done", record)
            except Exception as exc:  # the status line is already sent: report in-band
                yield _sse("error", {"detail": str(exc) or "internal error"})

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    @app.post("/api/search", response_model=SearchResponse, tags=["lookup"], dependencies=[Depends(limit)])
    def search(req: SearchRequest) -> dict:
        """Hybrid clause search with optional region, document and department filters."""
        if not req.query.strip():
            raise QueryError("query: must not be empty")
        if len(req.query) > settings.max_message_chars:
            raise QueryError(f"query: too long ({len(req.query)} characters, at most {settings.max_message_chars})")
        started = time.perf_counter()
        hits = app.state.assistant.search(
            req.query, k=req.k, region=req.region or None, doc_id=req.doc_id or None, department=req.department or None,
            current_on=app.state.assistant.today() if req.only_current else None,
        )
        return {"hits": [h.to_dict() for h in hits], "took_ms": round((time.perf_counter() - started) * 1000, 2)}

    @app.post("/api/match", response_model=MatchResponse, tags=["match"], dependencies=[Depends(limit)])
    def match(req: MatchRequest) -> dict:
        """政策匹配: clauses that grant something to a company like the profile (in the region), best fit first."""
        started = time.perf_counter()
        found = app.state.assistant.match(req.region, req.profile, req.only_current)
        return {"matches": [m.to_dict() for m in found], "took_ms": round((time.perf_counter() - started) * 1000, 2)}

    @app.post("/api/feedback", response_model=OkResponse, tags=["chat"])
    def feedback(req: FeedbackRequest) -> dict:
        """Thumbs up/down on one answer, stored for staff review."""
        store.add_feedback(req.session_id, req.turn, req.rating, req.comment)
        return {"ok": True}

    @app.get("/api/health", response_model=HealthResponse, tags=["service"])
    def health() -> dict:
        """Service status, document and clause counts, model name and regions."""
        a = app.state.assistant
        index = a.index
        return {
            "status": "ok",
            "documents": len(index.documents),
            "clauses": len(index.clauses),
            "model": str(index.manifest.get("model") or settings.model),
            "regions": a.regions(),
        }

    def _documents() -> list[dict]:
        return list(app.state.assistant.index.documents)

    @app.get("/api/documents", response_model=DocumentsResponse, tags=["lookup"])
    def documents() -> dict:
        """Every indexed document's metadata."""
        today = app.state.assistant.today()
        return {"documents": [_document_out(d, today) for d in _documents()]}

    @app.get("/api/documents/{doc_id}", response_model=DocumentResponse, tags=["lookup"])
    def document(doc_id: str) -> dict:
        """A document's metadata and its clauses in order (section paths give the tree)."""
        index = app.state.assistant.index
        record = next((d for d in index.documents if d.get("doc_id") == doc_id), None)
        if record is None:
            raise UnknownDocumentError(f"unknown document: {doc_id}")
        clauses = sorted((c for c in index.clauses if c.doc_id == doc_id), key=lambda c: c.ordinal)
        return {
            "document": _document_out(record, app.state.assistant.today()),
            "clauses": [
                {"clause_id": c.clause_id, "section": c.section, "text": c.text, "department": c.department, "ordinal": c.ordinal}
                for c in clauses
            ],
        }

    @app.get("/api/clauses/{clause_id:path}", response_model=ClauseResponse, tags=["lookup"])
    def clause(clause_id: str) -> dict:
        """One clause by its id (URL-encode the '#')."""
        index = app.state.assistant.index
        c = index.get(clause_id)
        if c is None:
            raise UnknownClauseError(f"unknown clause: {clause_id}")
        record = next((d for d in index.documents if d.get("doc_id") == c.doc_id), None)
        today = app.state.assistant.today()
        return {**c.record(), "ordinal": c.ordinal, "document": _document_out(record, today) if record else None}

    # ------------------------------------------------ admin
    def admin(request: Request) -> None:
        token = settings.admin_token
        if not token:
            raise HTTPException(404, "Not Found")
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(401, "missing or wrong admin token", headers={"WWW-Authenticate": "Bearer"})

    def _corpus_entries() -> list[tuple[Path, dict]]:
        from assistant.corpus import corpus_files

        return [(p, _read_sidecar(p)) for p in corpus_files(Path(settings.corpus_dir))]

    @app.post("/api/admin/documents", response_model=UploadResponse, status_code=201, tags=["admin"],
              dependencies=[Depends(admin)])
    def upload(
        file: UploadFile = File(...),
        valid_until: str = Form("", description="optional ISO date overriding the term read from the text"),
        validity_basis: str = Form("", max_length=300, description="why (shown as the validity basis)"),
    ) -> dict:
        """Add a policy document (.txt, .html, .docx, .pdf); re-index to make it searchable."""
        from assistant.corpus import build_document
        from assistant.guard import check_document
        from assistant.ingest import SUFFIXES, extract_text

        name = (file.filename or "").strip()
        if not name or _UNSAFE_NAME.search(name):
            raise HTTPException(400, f"unsafe file name {name!r}: send a plain name such as policy.docx")
        suffix = Path(name).suffix.lower()
        if suffix not in SUFFIXES:
            raise HTTPException(415, f"unsupported file type {suffix or '(none)'}; expected {', '.join(SUFFIXES)}")
        data = file.file.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise HTTPException(413, f"file too large (limit {settings.max_upload_bytes} bytes)")
        override = _validity_override(valid_until, validity_basis)  # QueryError → 422, nothing written
        text = extract_text(name, data)  # CorpusError → 422, nothing written
        doc_id = f"upload-{uuid.uuid4().hex[:10]}"
        # The same checks the index build will make, chunking under the same time limit: a document
        # the build would skip is refused here (422 naming the problem), and the index is untouched.
        check_document(build_document(text, name, doc_id), settings.chunk_max_chars, settings.document_timeout_s)
        corpus = Path(settings.corpus_dir)
        corpus.mkdir(parents=True, exist_ok=True)
        stem = f"{doc_id}"
        target = corpus / f"{stem}.txt"
        side = corpus / f"{stem}.meta.json"
        tmp_txt, tmp_side = corpus / f".{stem}.txt.tmp", corpus / f".{stem}.meta.json.tmp"
        tmp_txt.write_text(text, encoding="utf-8")
        sidecar = {"doc_id": doc_id, "source": name, **({"override": override} if override else {})}
        tmp_side.write_text(json.dumps(sidecar, ensure_ascii=False, indent=2), encoding="utf-8")
        tmp_side.replace(side)
        tmp_txt.replace(target)
        return {"doc_id": doc_id, "file": target.name, "source": name, "chars": len(text), "reindex_needed": True}

    @app.get("/api/admin/documents", response_model=AdminDocumentsResponse, tags=["admin"], dependencies=[Depends(admin)])
    def admin_documents() -> dict:
        """The files of the corpus folder, and whether each is in the live index."""
        indexed = {d.get("doc_id"): d for d in _documents()}
        out = []
        for path, side in _corpus_entries():
            doc_id = str(side.get("doc_id") or path.stem)
            out.append({
                "doc_id": doc_id,
                "file": path.name,
                "source": str(side.get("source") or path.name),
                "title": str(side.get("title") or indexed.get(doc_id, {}).get("title") or ""),
                "bytes": path.stat().st_size,
                "indexed": doc_id in indexed,
            })
        return {"documents": out}

    @app.delete("/api/admin/documents/{doc_id}", response_model=OkResponse, tags=["admin"], dependencies=[Depends(admin)])
    def delete_document(doc_id: str) -> dict:
        """Remove a document's file and sidecar; re-index to drop it from answers."""
        for path, side in _corpus_entries():
            if str(side.get("doc_id") or path.stem) == doc_id:
                path.unlink(missing_ok=True)
                _sidecar_of(path).unlink(missing_ok=True)
                return {"ok": True}
        raise UnknownDocumentError(f"unknown document: {doc_id}")

    @app.get("/api/admin/feedback", tags=["admin"], dependencies=[Depends(admin)])
    def admin_feedback(limit: int = Query(100, ge=1, le=1000)) -> dict:
        """The latest feedback for staff review, newest first."""
        return {"feedback": store.feedback(limit)}

    @app.post("/api/admin/reindex", response_model=ReindexStatus, status_code=202, tags=["admin"],
              dependencies=[Depends(admin)])
    def reindex() -> dict:
        """Start a background re-index (409 while one runs); queries use the old index until the swap."""
        if not reindexer.start():
            raise HTTPException(409, "a re-index is already running")
        return reindexer.snapshot()

    @app.get("/api/admin/reindex", response_model=ReindexStatus, tags=["admin"], dependencies=[Depends(admin)])
    def reindex_status() -> dict:
        """The state of the latest re-index."""
        return reindexer.snapshot()

    # ------------------------------------------------ static pages
    def _static(name: str, media_type: str | None = None):
        def serve() -> FileResponse:
            path = STATIC / name
            if not path.is_file():
                raise HTTPException(404, f"{name} is not available")
            return FileResponse(path, media_type=media_type)

        return serve

    app.get("/", include_in_schema=False)(_static("index.html", "text/html; charset=utf-8"))
    app.get("/lookup", include_in_schema=False)(_static("lookup.html", "text/html; charset=utf-8"))
    app.get("/widget.js", include_in_schema=False)(_static("widget.js", "application/javascript; charset=utf-8"))
    app.get("/lookup.js", include_in_schema=False)(_static("lookup.js", "application/javascript; charset=utf-8"))
    app.get("/lookup.css", include_in_schema=False)(_static("lookup.css", "text/css; charset=utf-8"))
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    return app


def app_factory() -> FastAPI:
    """The app over Settings() from the environment (for `uvicorn --factory`, several workers)."""
    return create_app()


def _terminate(signum, frame) -> None:
    raise SystemExit(0)


def cli(name: str, argv: list[str]) -> int:
    """`serve [--host --port --workers]`: build the index when missing or stale, then run uvicorn."""
    import uvicorn

    from assistant.cli import ensure_index
    from assistant.config import Settings

    settings = Settings()
    parser = argparse.ArgumentParser(prog=f"assistant {name}")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    # SIGTERM (systemd, docker stop, kill) is a normal stop: exit 0 after uvicorn's graceful shutdown,
    # which hands the signal back once it is done, or straight away during the start-up build.
    signal.signal(signal.SIGTERM, _terminate)
    ensure_index(settings)
    base = f"http://{args.host}:{args.port}"
    print(f"chat widget demo: {base}/\nclause lookup:    {base}/lookup\nAPI docs:         {base}/docs", flush=True)
    if args.workers > 1:
        uvicorn.run("assistant.api:app_factory", factory=True, host=args.host, port=args.port, workers=args.workers)
    else:
        uvicorn.run(create_app(settings), host=args.host, port=args.port)
    return 0
