"""API edge, match (政策匹配 and the 政策计算器): the clauses that grant something to a company like a
profile; with structured facts, each rule checked condition by condition and the amount estimated."""

from __future__ import annotations

import time

from fastapi import APIRouter

from assistant.api.deps import AssistantDep, RateLimited
from assistant.api.models import MatchOptionsResponse, MatchRequest, MatchResponse
from assistant.api.routes import took_ms

router = APIRouter(tags=["match"])


@router.post("/api/match", response_model=MatchResponse, dependencies=[RateLimited])
def match(req: MatchRequest, assistant: AssistantDep) -> dict:
    """政策匹配: clauses that grant something to a company like the profile (in the region), best fit first;
    with `facts`, eligible rules by estimate, then those an unknown fact decides, then near misses."""
    started = time.perf_counter()
    facts = req.facts.model_dump(exclude_none=True) if req.facts is not None else None
    report = assistant.match_report(req.region, req.profile, facts, req.only_current)
    return {**report.to_dict(), "took_ms": took_ms(started)}


@router.get("/api/match/options", response_model=MatchOptionsResponse, dependencies=[RateLimited])
def match_options(assistant: AssistantDep, region: str | None = None) -> dict:
    """What a calculator form offers: qualifications and quantities from the library's own rules (in the
    region, when given), the industries and units of the vocabulary."""
    return assistant.match_options(region)
