"""API edge, chat: one turn of a conversation, the same turn streamed as server-sent events, feedback."""

from __future__ import annotations

import json
import re

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from assistant.api.deps import AssistantDep, RateLimited, StoreDep
from assistant.api.models import ChatRequest, ChatResponse, FeedbackRequest, OkResponse

router = APIRouter(tags=["chat"])
_DELTA_CHARS = 24


@router.post("/api/chat", response_model=ChatResponse, dependencies=[RateLimited])
def chat(req: ChatRequest, assistant: AssistantDep) -> dict:
    """One turn of a conversation; omit session_id to start one."""
    return assistant.chat(req.message, req.session_id).to_dict()


@router.post("/api/chat/stream", dependencies=[RateLimited], responses={200: {"content": {"text/event-stream": {}}}})
def chat_stream(req: ChatRequest, assistant: AssistantDep) -> StreamingResponse:
    """The same turn as server-sent events: `meta`, several `delta`, then `done` (the full record) or `error`."""
    record = assistant.chat(req.message, req.session_id).to_dict()
    return StreamingResponse(
        _events(record), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@router.post("/api/feedback", response_model=OkResponse)
def feedback(req: FeedbackRequest, store: StoreDep, assistant: AssistantDep) -> dict:
    """Thumbs up/down on one answer, stored for staff review (with a copy of the question and answer)."""
    from assistant.review import record_feedback

    record_feedback(store, assistant.sessions, req.session_id, req.turn, req.rating, req.comment)
    return {"ok": True}


def _events(record: dict):
    try:
        yield _sse("meta", {k: record[k] for k in ("session_id", "turn", "rewritten_query", "source")})
        for piece in _pieces(record["answer"]):
            yield _sse("delta", {"text": piece})
        yield _sse("done", record)
    except Exception as exc:  # the status line is already sent: report in-band
        yield _sse("error", {"detail": str(exc) or "internal error"})


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
