"""API edge: `create_app(settings)` — FastAPI routers over the Assistant, the static widget and lookup pages.

Core errors become HTTP statuses here, in one table, and nowhere else. The routers live in
`routes/` (one per concern), their dependencies in `deps.py`, the request and response models in
`models.py`; the work behind the admin routes is the library's (`assistant/library.py`).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from assistant.api import mcp
from assistant.api.deps import RateLimiter
from assistant.api.routes import admin, chat, console, lookup, match, openai, pages, service
from assistant.schema import (
    BackendError,
    BusyError,
    CorpusError,
    DecompressionBombError,
    DocumentTooLongError,
    FileTooLargeError,
    IndexMissingError,
    NestingTooDeepError,
    QueryError,
    ReindexRunningError,
    StaleIndexError,
    TooManyPagesError,
    UnknownClauseError,
    UnknownDocumentError,
    UnknownRecordError,
    UnknownSessionError,
    UnsafeNameError,
    UnsupportedFileError,
    UploadMemoryError,
)

# The one error → status table: every core error a request can meet, and what the client gets
# (under /v1 in OpenAI's error shape, and 400 for 422 as OpenAI answers).
ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (QueryError, 422),
    (UnknownSessionError, 404),
    (UnknownClauseError, 404),
    (UnknownDocumentError, 404),
    (IndexMissingError, 503),
    (StaleIndexError, 503),
    (BackendError, 503),
    (CorpusError, 422),
    (UnsafeNameError, 400),
    (UnsupportedFileError, 415),
    (FileTooLargeError, 413),
    (DecompressionBombError, 413),
    (TooManyPagesError, 413),
    (DocumentTooLongError, 413),
    (UploadMemoryError, 413),
    (NestingTooDeepError, 422),
    (ReindexRunningError, 409),
    (UnknownRecordError, 404),
    (BusyError, 409),
)

# No two routers' paths overlap, so their order changes no match; the pages come last, then the /static mount.
ROUTERS = (chat.router, lookup.router, match.router, service.router, openai.router, admin.router, console.router,
           console.staff, pages.router)


def create_app(settings=None, assistant=None) -> FastAPI:
    """The FastAPI application over one Assistant (loaded from settings when not given)."""
    from assistant.config import Settings

    settings = settings or Settings()
    if assistant is None:
        from assistant.pipeline import Assistant

        assistant = Assistant.from_settings(settings)
    app = FastAPI(
        title="Policy assistant",
        description="Grounded answers with citations over Chinese SME/innovation policy documents.",
        version="0.1.0",
        lifespan=_lifespan,
    )
    _attach_state(app, settings, assistant)
    _add_middleware(app, settings)
    _add_error_table(app)
    app.add_middleware(console.AuditAdminWrites)
    for router in ROUTERS:
        app.include_router(router)
    # MCP over streamable HTTP: a plain ASGI route, so not in /openapi.json (its session manager runs in _lifespan)
    app.router.routes.append(Route("/mcp", mcp.Endpoint(), include_in_schema=False))
    app.mount("/static", StaticFiles(directory=pages.STATIC, check_dir=False), name="static")
    return app


def app_factory() -> FastAPI:
    """The app over Settings() from the environment (for `uvicorn --factory`, several workers)."""
    return create_app()


@asynccontextmanager
async def _lifespan(app: FastAPI):
    async with mcp.running(app):
        yield
    # Shutdown (SIGTERM) must not wait on a re-index: it is told to stop, and given a moment.
    app.state.reindexer.stop()


def _attach_state(app: FastAPI, settings, assistant) -> None:
    # What deps.py hands to the routes: one of each per app, so two apps never share state.
    from assistant.library import Library, Reindexer
    from assistant.store import ApiStore

    app.state.settings = settings
    app.state.assistant = assistant
    app.state.store = ApiStore.from_settings(settings)
    app.state.library = Library.from_settings(settings)
    app.state.reindexer = Reindexer(settings, assistant)
    app.state.rate_limiter = RateLimiter(settings.rate_limit)
    _attach_console(app, settings, assistant)


def _attach_console(app: FastAPI, settings, assistant) -> None:
    # the staff console's services (routes/console.py): sign-in, audit, test items, evaluation runs
    from assistant.api.auth import Auth
    from assistant.audit import AuditStore
    from assistant.evalruns import EvalRunner, EvalStore
    from assistant.review import ReviewStore, export

    app.state.audit = AuditStore.from_settings(settings)
    app.state.auth = Auth(settings, app.state.audit)
    app.state.review = ReviewStore.from_settings(settings)
    app.state.evals = EvalStore.from_settings(settings)
    app.state.eval_runner = EvalRunner(settings, assistant, app.state.evals,
                                       lambda: export(assistant.curated.store.all(), app.state.review.all(), assistant.index))
    app.state.error_status = ERROR_STATUS


def _add_middleware(app: FastAPI, settings) -> None:
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Content-Type", "Authorization", "Accept"],
        )


def _add_error_table(app: FastAPI) -> None:
    for exc_type, status in ERROR_STATUS:
        app.add_exception_handler(exc_type, _handler(status))
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


def _handler(status: int):
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        if openai.serves(request):
            return openai.error_response(status, str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return handle


async def http_error(request: Request, exc: StarletteHTTPException):
    """FastAPI's own handling, except under /v1 (OpenAI's error shape)."""
    if openai.serves(request):
        return openai.http_error_response(exc.status_code, exc.detail, exc.headers)
    return await http_exception_handler(request, exc)


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """400 for a body that is not JSON at all; 422 naming each unusable field otherwise."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        status, message = 400, "malformed JSON body"
    else:
        status, message = 422, "; ".join(_field_message(e) for e in errors) or "invalid request"
    if openai.serves(request):
        first = [str(p) for p in (errors[0].get("loc", ()) if errors else ()) if p != "body"]
        return openai.error_response(status, message, param=".".join(first) or None)
    return JSONResponse({"detail": message}, status_code=status)


def _field_message(err: dict) -> str:
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
    where = ".".join(loc) or "body"
    return f"{where}: {err.get('msg', 'invalid value')}"
