"""API edge, staff sign-in: admin tokens by name, the console's session cookie, CSRF, the audit of each attempt.

A request is an admin's when it carries a configured token as a bearer header (scripts), or the
console's session cookie: signed (itsdangerous) with a key derived from the configured tokens, expiring,
HttpOnly, SameSite=Strict. The cookie names the actor and a fingerprint of the token signed in with,
so removing a token from the configuration ends its sessions. A state-changing request made with the
cookie must echo the session's CSRF token in the X-CSRF-Token header (the page reads it from the
sign-in answer); bearer requests carry no ambient credential and need none. A wrong token is audited
with the client's address, never with the token.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request

COOKIE = "assistant_admin"
CSRF_HEADER = "x-csrf-token"
_SAFE = {"GET", "HEAD", "OPTIONS"}


def staff_tokens(settings) -> dict[str, str]:
    """token → actor name: ASSISTANT_ADMIN_TOKEN as "admin", and each "name:token" of ASSISTANT_ADMIN_TOKENS
    (the pairs themselves, or the path of a file holding them). A malformed entry is named by position."""
    out: dict[str, str] = {}
    if getattr(settings, "admin_token", ""):
        out[settings.admin_token] = "admin"
    spec = (getattr(settings, "admin_tokens", "") or "").strip()
    if spec and ":" not in spec.splitlines()[0] and Path(spec).is_file():
        spec = Path(spec).read_text(encoding="utf-8")
    entries = [e.strip() for line in spec.splitlines() for e in line.split(",")]
    for n, entry in enumerate((e for e in entries if e and not e.startswith("#")), 1):
        name, sep, token = entry.partition(":")
        if not sep or not name.strip() or len(token.strip()) < 8:
            raise ValueError(f"ASSISTANT_ADMIN_TOKENS entry {n}: expected name:token with a token of 8+ characters")
        out[token.strip()] = name.strip()
    return out


def _fingerprint(token: str) -> str:
    return hashlib.sha256(("assistant-console-token\0" + token).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Session:
    actor: str
    csrf: str | None  # None for a bearer request
    expires_at: float | None = None


class Auth:
    """Who an admin request comes from (or an HTTPException), and the console's session cookies."""

    def __init__(self, settings, audit=None):
        self.tokens = staff_tokens(settings)
        self.ttl = int(getattr(settings, "admin_session_s", 8 * 3600))
        self.audit = audit
        self._fingerprints = {_fingerprint(t): name for t, name in self.tokens.items()}
        key = hashlib.sha256(("assistant-console\0" + "\0".join(sorted(self.tokens))).encode()).hexdigest()
        from itsdangerous import URLSafeTimedSerializer

        self._signer = URLSafeTimedSerializer(key, salt="assistant-console-session")

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def by_token(self, given: str) -> str | None:
        """The actor a token belongs to (compared in constant time), or None."""
        found = None
        for token, name in self.tokens.items():
            if secrets.compare_digest(given.encode(), token.encode()):
                found = name
        return found

    def failed(self, request: Request, via: str) -> None:
        """Audit a wrong token: the client's address and how it came, never what it was."""
        if self.audit is not None:
            client = request.client.host if request.client else "unknown"
            self.audit.record("?", "auth.failed", target=client, ok=False, via=via)

    def sign_in(self, token: str) -> tuple[str, Session]:
        """(cookie value, session) for a valid token; None is never returned: a wrong token is the caller's 401."""
        actor = self.by_token(token)
        if actor is None:
            raise HTTPException(401, "wrong admin token")
        csrf = secrets.token_urlsafe(24)
        value = self._signer.dumps({"a": actor, "f": _fingerprint(token), "c": csrf})
        return value, Session(actor, csrf, time.time() + self.ttl)

    def session(self, value: str) -> Session | None:
        """The session a cookie value carries, when its signature, age and token are all still good."""
        from itsdangerous import BadSignature

        try:
            data, signed_at = self._signer.loads(value, max_age=self.ttl, return_timestamp=True)
        except BadSignature:  # SignatureExpired is one
            return None
        if not isinstance(data, dict) or self._fingerprints.get(data.get("f")) != data.get("a"):
            return None
        return Session(data["a"], data.get("c"), signed_at.timestamp() + self.ttl)

    def actor(self, request: Request) -> Session:
        """The admin session of a request: bearer token or cookie (+ CSRF header on writes); 404/401/403 otherwise."""
        if not self.enabled:
            raise HTTPException(404, "Not Found")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and given.strip():
            actor = self.by_token(given.strip())
            if actor is None:
                self.failed(request, "bearer")
                raise HTTPException(401, "missing or wrong admin token", headers={"WWW-Authenticate": "Bearer"})
            return Session(actor, None)
        session = self.session(request.cookies.get(COOKIE, ""))
        if session is None:
            raise HTTPException(401, "missing or wrong admin token", headers={"WWW-Authenticate": "Bearer"})
        if request.method not in _SAFE:
            sent = request.headers.get(CSRF_HEADER, "")
            if not session.csrf or not secrets.compare_digest(sent.encode(), session.csrf.encode()):
                raise HTTPException(403, "missing or wrong X-CSRF-Token header (sign in again from the console)")
        return session
