"""API edge: what routes depend on, as FastAPI dependencies read from `request.app.state`.

create_app puts one of each on the app's state; a route names the ones it needs by these
Annotated aliases. `RateLimited`, `AdminOnly` and `KeyRequired` guard routes: the rate limit is per
client, admin routes need the bearer token and vanish (404) when none is configured, and the standard
doors (/v1, /mcp) need one of the API keys when any is configured.
"""

from __future__ import annotations

import secrets
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


def api_key(request: Request) -> None:
    """401 unless the request carries one of the configured API keys as a bearer token (none configured: open)."""
    if not key_accepted(request.app.state.settings.api_keys, request.headers.get("authorization", "")):
        raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})


def key_accepted(keys: list[str], authorization: str) -> bool:
    """True when no key is configured, or the Authorization header is `Bearer <one of the keys>`."""
    if not keys:
        return True
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    given_bytes = given.strip().encode()
    # every key compared, so the time taken does not tell which one nearly matched
    return sum(secrets.compare_digest(given_bytes, k.encode()) for k in keys) > 0


SettingsDep = Annotated["Settings", Depends(get_settings)]
AssistantDep = Annotated["Assistant", Depends(get_assistant)]
StoreDep = Annotated["ApiStore", Depends(get_store)]
LibraryDep = Annotated["Library", Depends(get_library)]
ReindexerDep = Annotated["Reindexer", Depends(get_reindexer)]
RateLimited = Depends(rate_limit)
AdminOnly = Depends(admin)
Actor = Annotated[str, Depends(admin)]
KeyRequired = Depends(api_key)
