"""API edge, the staff console: sign-in, the library's catalog, feedback review, curated answers, test
items, evaluation runs and the audit log. The /admin page (static/admin.*) is their one client.

Every route but sign-in needs an admin (deps.Actor: bearer token or session cookie with CSRF). Each
write is audited by `audit_admin_writes` (registered by create_app) after it ran, with the actor, the
action named in ACTIONS, its target and whether it succeeded; routes add what only they know to
request.state.audit. The work is the core's (curated.py, review.py, evalruns.py, library.py, audit.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from fastapi import APIRouter, File, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from assistant.api.auth import COOKIE
from assistant.api.console_models import (
    BatchUploadResponse,
    CreatedResponse,
    CuratedListResponse,
    CuratedRequest,
    EvalRunOut,
    EvalRunRequest,
    SessionOut,
    SignInRequest,
    TestItemRequest,
    ValidityRequest,
    ValidityResponse,
)
from assistant.api.deps import Actor, AdminOnly, AssistantDep, LibraryDep, RateLimited, ReindexerDep, StoreDep
from assistant.api.models import OkResponse

router = APIRouter(tags=["console"])
staff = APIRouter(tags=["console"], dependencies=[AdminOnly])

# endpoint function → the action the audit log records
ACTIONS = {
    "upload": "document.upload", "delete_document": "document.delete", "reindex": "reindex.start",
    "set_validity": "document.validity", "sign_out": "auth.sign_out", "add_curated": "curated.add",
    "edit_curated": "curated.edit", "delete_curated": "curated.delete", "add_test_item": "testitem.add",
    "delete_test_item": "testitem.delete", "upload_testset": "testset.upload", "start_eval": "eval.run",
}


def _state(request: Request, name: str):
    return getattr(request.app.state, name)


def _note(request: Request, **info) -> None:
    request.state.audit = {**(getattr(request.state, "audit", None) or {}), **info}


class AuditAdminWrites:
    """ASGI middleware: record every admin write (POST/PUT/DELETE under /api/admin/) an admin made, after it ran.
    Plain ASGI and inert for every other path, so streams (/api/chat/stream, /mcp) pass through untouched."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "DELETE") \
                or not scope["path"].startswith("/api/admin/"):
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def sending(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            await run_in_threadpool(_audit, scope, status["code"])


def _audit(scope, code: int) -> None:
    state = scope.get("state") or {}
    actor = state.get("actor")
    info = dict(state.get("audit") or {})
    if not actor or info.pop("done", False):
        return
    name = getattr(scope.get("endpoint"), "__name__", "")
    params = scope.get("path_params") or {}
    target = str(info.pop("target", "") or "/".join(str(v) for v in params.values()))
    scope["app"].state.audit.record(actor, ACTIONS.get(name, name or scope["path"]), target, code < 400, status=code, **info)


# ---------------------------------------------------------------- sign-in


@router.post("/api/admin/session", response_model=SessionOut, dependencies=[RateLimited])
def sign_in(req: SignInRequest, request: Request, response: Response) -> dict:
    """Exchange an admin token for the console's session cookie (HttpOnly, SameSite=Strict) and a CSRF token."""
    auth = _state(request, "auth")
    if not auth.enabled:
        raise HTTPException(404, "Not Found")
    if auth.by_token(req.token) is None:
        auth.failed(request, "sign-in")
        raise HTTPException(401, "wrong admin token")
    value, session = auth.sign_in(req.token)
    response.set_cookie(COOKIE, value, max_age=auth.ttl, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/api/admin")
    _state(request, "audit").record(session.actor, "auth.sign_in", request.client.host if request.client else "")
    return asdict(session)


@staff.get("/api/admin/session", response_model=SessionOut)
def whoami(request: Request) -> dict:
    """Who is signed in, and the session's CSRF token (null for a bearer request)."""
    session = _state(request, "auth").actor(request)
    return asdict(session)


@staff.delete("/api/admin/session", response_model=OkResponse)
def sign_out(response: Response) -> dict:
    """End the console session (the cookie is cleared)."""
    response.delete_cookie(COOKIE, path="/api/admin", httponly=True, samesite="strict")
    return {"ok": True}


# ---------------------------------------------------------------- library


@staff.get("/api/admin/library")
def library_view(library: LibraryDep, assistant: AssistantDep, reindexer: ReindexerDep) -> dict:
    """Every document file with its indexed record and state, and the latest re-index (progress, report)."""
    from assistant.library import catalog

    index = assistant.index
    docs = catalog(library.files(index.documents), index, library.overrides(), assistant.today())
    return {"documents": docs, "reindex": reindexer.snapshot(), "index": index.manifest.get("built_at")}


@staff.post("/api/admin/upload", response_model=BatchUploadResponse, status_code=207)
def upload_many(request: Request, library: LibraryDep, actor: Actor, files: list[UploadFile] = File(...)) -> dict:
    """Add several files at once; each gets its own result (a refused file does not stop the others)."""
    table, audit = _state(request, "error_status"), _state(request, "audit")
    results = []
    for name, outcome in library.add_many([(f.filename, f.file) for f in files]):
        if isinstance(outcome, Exception):
            status = next((s for t, s in table if isinstance(outcome, t)), 400)
            results.append({"file": name or "", "ok": False, "status": status, "error": str(outcome)})
        else:
            results.append({"file": name, "ok": True, "status": 201, "doc_id": outcome.doc_id, "chars": outcome.chars})
        audit.record(actor, "document.upload", name or "", results[-1]["ok"], status=results[-1]["status"],
                     doc_id=results[-1].get("doc_id"), error=results[-1].get("error"))
    _note(request, done=True)
    return {"results": results, "reindex_needed": any(r["ok"] for r in results)}


@staff.put("/api/admin/documents/{doc_id}/validity", response_model=ValidityResponse)
def set_validity(doc_id: str, req: ValidityRequest, request: Request, library: LibraryDep) -> dict:
    """Set (or, with an empty date, clear) a document's validity override; shown after the next re-index."""
    override = library.set_validity(doc_id, req.valid_until, req.basis)
    _note(request, valid_until=req.valid_until or None, basis=req.basis)
    return {"doc_id": doc_id, "override": override, "reindex_needed": True}


# ---------------------------------------------------------------- feedback review and test items


def _day(value: str, name: str) -> float | None:
    if not value:
        return None
    try:
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time()).timestamp()
    except ValueError:
        raise HTTPException(422, f"{name}: not an ISO date (YYYY-MM-DD): {value!r}") from None


@staff.get("/api/admin/review")
def review(store: StoreDep, rating: str = Query("", pattern="^(up|down)?$"), since: str = "", until: str = "",
           commented: bool = False, limit: int = Query(200, ge=1, le=1000)) -> dict:
    """Feedback with the rated question, answer and citations; filters: rating, [since, until] days, commented."""
    from assistant.review import feedback_view

    end = _day(until, "until")
    rows = store.feedback(limit, rating, _day(since, "since"), end + 86400 if end is not None else None, commented)
    return {"feedback": [feedback_view(r) for r in rows]}


@staff.post("/api/admin/testitems", response_model=CreatedResponse, status_code=201)
def add_test_item(req: TestItemRequest, request: Request, assistant: AssistantDep, actor: Actor) -> dict:
    """Turn a question (usually a feedback item's) into a regression test item."""
    from assistant.review import checked_item

    item = checked_item(assistant.index, req.question, req.clause_ids, req.expected, req.facts, req.refuse,
                        req.feedback_id, actor)
    new = _state(request, "review").add(item)
    _note(request, target=f"testitem:{new}", question=item.question, feedback_id=req.feedback_id)
    return {"id": new}


@staff.get("/api/admin/testitems")
def test_items(request: Request) -> dict:
    """The test items staff made, newest first."""
    return {"items": [t.to_dict() for t in _state(request, "review").all()]}


@staff.delete("/api/admin/testitems/{item_id}", response_model=OkResponse)
def delete_test_item(item_id: int, request: Request) -> dict:
    _state(request, "review").delete(item_id)
    return {"ok": True}


@staff.get("/api/admin/testset.jsonl", response_class=PlainTextResponse)
def export_testset(request: Request, assistant: AssistantDep) -> PlainTextResponse:
    """Curated answers and reviewed feedback as eval/testset.jsonl items (run them with `assistant eval --questions`)."""
    from assistant.review import to_jsonl

    return PlainTextResponse(to_jsonl(_export(request, assistant)), media_type="application/x-ndjson; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="testset.jsonl"'})


def _export(request: Request, assistant) -> list[dict]:
    from assistant.review import export

    return export(assistant.curated.store.all(), _state(request, "review").all(), assistant.index)


# ---------------------------------------------------------------- curated answers


@staff.post("/api/admin/curated", response_model=CreatedResponse, status_code=201)
def add_curated(req: CuratedRequest, request: Request, assistant: AssistantDep, actor: Actor) -> dict:
    """A staff-written answer for a question, served before retrieval for it and close paraphrases."""
    from assistant.curated import checked

    question, answer, ids = checked(assistant.index, req.question, req.answer, req.clause_ids)
    new = assistant.curated.store.add(question, answer, ids, req.note.strip(), actor)
    _note(request, target=f"curated:{new}", question=question, clause_ids=list(ids))
    return {"id": new}


@staff.get("/api/admin/curated", response_model=CuratedListResponse)
def list_curated(assistant: AssistantDep) -> dict:
    """Every curated answer; `missing` names cited clauses a re-index dropped (such an answer is not served)."""
    return {"curated": assistant.curated.listing(assistant.index)}


@staff.put("/api/admin/curated/{curated_id}", response_model=CreatedResponse)
def edit_curated(curated_id: int, req: CuratedRequest, request: Request, assistant: AssistantDep, actor: Actor) -> dict:
    from assistant.curated import checked

    question, answer, ids = checked(assistant.index, req.question, req.answer, req.clause_ids)
    assistant.curated.store.update(curated_id, question, answer, ids, req.note.strip(), actor)
    _note(request, target=f"curated:{curated_id}", question=question, clause_ids=list(ids))
    return {"id": curated_id}


@staff.delete("/api/admin/curated/{curated_id}", response_model=OkResponse)
def delete_curated(curated_id: int, request: Request, assistant: AssistantDep) -> dict:
    gone = assistant.curated.store.delete(curated_id)
    _note(request, target=f"curated:{curated_id}", question=gone.question)
    return {"ok": True}


# ---------------------------------------------------------------- evaluation


@staff.get("/api/admin/testsets")
def testsets(request: Request) -> dict:
    """The test sets a run can use: the built-in ones and those uploaded."""
    from assistant.evalruns import BUILT_IN

    return {"builtin": [{"id": k, "name": v} for k, v in BUILT_IN.items()], "uploaded": _state(request, "evals").testsets()}


@staff.post("/api/admin/testsets", status_code=201)
async def upload_testset(request: Request, file: UploadFile = File(...)) -> dict:
    """Upload a test set (eval JSONL); 422 naming the first bad line, and nothing stored then."""
    from assistant.review import MAX_TESTSET_BYTES, parse_testset

    data = await file.read(MAX_TESTSET_BYTES + 1)
    items = parse_testset(data)
    name = (file.filename or "testset.jsonl")[:100]
    new = await run_in_threadpool(_state(request, "evals").add_testset, name, items, request.state.actor)
    _note(request, target=f"testset:{new}", name=name, items=len(items))
    return {"id": new, "name": name, "items": len(items)}


@staff.post("/api/admin/evalruns", response_model=EvalRunOut, status_code=202)
def start_eval(req: EvalRunRequest, request: Request, actor: Actor) -> dict:
    """Run an evaluation in the background (409 while one runs); poll GET /api/admin/evalruns/{id}."""
    run = _state(request, "eval_runner").start(req.testset, actor, req.limit)
    _note(request, target=f"evalrun:{run['id']}", testset=run["testset"], items=run["total"])
    return run


@staff.get("/api/admin/evalruns")
def eval_runs(request: Request) -> dict:
    """Past and running evaluations, newest first: date, test set, index version, key metrics."""
    return {"runs": _state(request, "evals").runs()}


@staff.get("/api/admin/evalruns/{run_id}", response_model=EvalRunOut)
def eval_run(run_id: int, request: Request) -> dict:
    """One run with its report summary (report.json without the per-item rows) once it is done."""
    import json

    run = _state(request, "evals").run(run_id)
    if run["state"] == "done":
        report = json.loads(_state(request, "eval_runner").report_file(run_id, "report.json").read_text(encoding="utf-8"))
        report.pop("items", None)
        run["report"] = report
    return run


@staff.get("/api/admin/evalruns/{run_id}/files/{name}")
def eval_file(run_id: int, name: str, request: Request) -> FileResponse:
    """A file of a run's report: report.md, report.json, misses.jsonl or a plot (PNG)."""
    return FileResponse(_state(request, "eval_runner").report_file(run_id, name))


# ---------------------------------------------------------------- audit


@staff.get("/api/admin/audit")
def audit_log(request: Request, limit: int = Query(200, ge=1, le=1000), action: str = Query("", max_length=40),
              actor: str = Query("", max_length=100)) -> dict:
    """The audit log, newest first: time, actor, action, target, whether it succeeded."""
    return {"entries": [e.to_dict() for e in _state(request, "audit").entries(limit, action, actor)]}
