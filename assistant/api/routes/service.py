"""API edge, service: the health of the running service (for probes and the pages)."""

from __future__ import annotations

from fastapi import APIRouter

from assistant.api.deps import AssistantDep, SettingsDep
from assistant.api.models import HealthResponse

router = APIRouter(tags=["service"])


@router.get("/api/health", response_model=HealthResponse)
def health(assistant: AssistantDep, settings: SettingsDep) -> dict:
    """Service status, document and clause counts, model name and regions."""
    index = assistant.index
    return {
        "status": "ok",
        "documents": len(index.documents),
        "clauses": len(index.clauses),
        "model": str(index.manifest.get("model") or settings.model),
        "regions": assistant.regions(),
    }
