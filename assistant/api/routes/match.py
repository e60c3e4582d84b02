"""API edge, match (政策匹配): the clauses that grant something to a company like a profile."""

from __future__ import annotations

import time

from fastapi import APIRouter

from assistant.api.deps import AssistantDep, RateLimited
from assistant.api.models import MatchRequest, MatchResponse
from assistant.api.routes import took_ms

router = APIRouter(tags=["match"])


@router.post("/api/match", response_model=MatchResponse, dependencies=[RateLimited])
def match(req: MatchRequest, assistant: AssistantDep) -> dict:
    """政策匹配: clauses that grant something to a company like the profile (in the region), best fit first."""
    started = time.perf_counter()
    found = assistant.match(req.region, req.profile, req.only_current)
    return {"matches": [m.to_dict() for m in found], "took_ms": took_ms(started)}
