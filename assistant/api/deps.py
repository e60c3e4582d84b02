"""API edge: what routes depend on, as FastAPI dependencies read from `request.app.state`.

create_app puts one of each on the app's state; a route names the ones it needs by these
Annotated aliases. `RateLimited` and `AdminOnly` guard routes: the rate limit is per client, and
admin routes need the bearer token and vanish (404) when none is configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request

if TYPE_CHECKING:
    from assistant.config import Settings
    from assistant.library import Library, Reindexer
    from assistant.pipeline import Assistant
    from assistant.store import ApiStore


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


def get_settings(request: Request) -> "Settings":
    return request.app.state.settings


def get_assistant(request: Request) -> "Assistant":
    return request.app.state.assistant


def get_store(request: Request) -> "ApiStore":
    return request.app.state.store


def get_library(request: Request) -> "Library":
    return request.app.state.library


def get_reindexer(request: Request) -> "Reindexer":
    return request.app.state.reindexer


def rate_limit(request: Request) -> None:
    """429 once this client has used up the configured rate."""
    request.app.state.rate_limiter(request)


def admin(request: Request) -> str:
    """The acting admin's name: 404 when no admin token is configured; 401 without a valid bearer token or
    console session; 403 for a console write without its CSRF header (api/auth.py)."""
    session = request.app.state.auth.actor(request)
    request.state.actor = session.actor  # for the audit of the action (routes/console.py)
    return session.actor


SettingsDep = Annotated["Settings", Depends(get_settings)]
AssistantDep = Annotated["Assistant", Depends(get_assistant)]
StoreDep = Annotated["ApiStore", Depends(get_store)]
LibraryDep = Annotated["Library", Depends(get_library)]
ReindexerDep = Annotated["Reindexer", Depends(get_reindexer)]
RateLimited = Depends(rate_limit)
AdminOnly = Depends(admin)
Actor = Annotated[str, Depends(admin)]
