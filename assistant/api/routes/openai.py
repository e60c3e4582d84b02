"""API edge, the OpenAI-compatible door: `POST /v1/chat/completions` and `GET /v1/models`.

Chat front-ends and bots that speak OpenAI's Chat Completions API (Open WebUI, LobeChat, Dify …)
use the assistant as the model `policy-assistant`. The conversation comes from `messages` (the
core's doors.answer_transcript resolves the follow-up over them); the content keeps the [n]
markers and ends with the sources, and the structured citations travel in an extra `citations`
field (on the message, and on the last chunk of a stream). Usage is counted in characters. Errors
under /v1 take OpenAI's shape, {"error": {"message", "type", "param", "code"}}: create_app's
handlers ask `serves()` and build them with the functions at the bottom.
"""

from __future__ import annotations

import json
import time
import uuid

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse

from assistant.api.deps import AssistantDep, KeyRequired, RateLimited
from assistant.api.models import ChatCompletion, ChatCompletionRequest, ModelCard, ModelList
from assistant.api.routes.chat import _pieces
from assistant.doors import Message, answer_text, answer_transcript
from assistant.schema import QueryError

PREFIX = "/v1"
MODEL_ID = "policy-assistant"
OWNER = "policy-assistant"
_STARTED = int(time.time())

router = APIRouter(prefix=PREFIX, tags=["openai"], dependencies=[KeyRequired])


@router.get("/models", response_model=ModelList)
def models() -> dict:
    """The one model this service answers as."""
    return {"object": "list", "data": [_card()]}


@router.get("/models/{model_id}", response_model=ModelCard)
def model(model_id: str) -> dict:
    """One model by id (404 for any other id)."""
    _check_model(model_id)
    return _card()


@router.post(
    "/chat/completions", response_model=ChatCompletion, dependencies=[RateLimited],
    responses={200: {"content": {"text/event-stream": {}}}},
)
def chat_completions(req: ChatCompletionRequest, assistant: AssistantDep):
    """OpenAI Chat Completions over the assistant: the last user message answered with citations,
    earlier user messages used to resolve a follow-up; `stream: true` for server-sent chunks."""
    _check_model(req.model)
    messages = _messages(req)
    answer = answer_transcript(assistant, messages)
    text = answer_text(answer)
    citations = answer.to_dict()["citations"]
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": MODEL_ID}
    usage = _usage(messages, text)
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(
            _chunks(head, text, citations, usage if include_usage else None), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return {
        **head, "object": "chat.completion", "usage": usage,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "citations": citations},
                     "finish_reason": "stop", "logprobs": None}],
    }


def _card() -> dict:
    return {"id": MODEL_ID, "object": "model", "created": _STARTED, "owned_by": OWNER}


def _check_model(model_id: str) -> None:
    if model_id != MODEL_ID:
        raise HTTPException(404, {"message": f"The model {model_id!r} does not exist; this service answers as "
                                             f"{MODEL_ID!r}", "param": "model", "code": "model_not_found"})


def _messages(req: ChatCompletionRequest) -> list[Message]:
    out = []
    for i, m in enumerate(req.messages):
        if isinstance(m.content, list):
            kinds = sorted({p.type for p in m.content if p.type != "text"})
            if kinds and m.role == "user":
                raise QueryError(f"messages[{i}].content: only text parts are supported (got {', '.join(kinds)})")
            content = "".join(p.text or "" for p in m.content if p.type == "text")
        else:
            content = m.content or ""
        out.append(Message(m.role, content))
    return out


def _usage(messages: list[Message], text: str) -> dict:
    # Characters, not tokens: nothing here runs a tokenizer (the answer is quoted, not generated).
    prompt = sum(len(m.content) for m in messages)
    return {"prompt_tokens": prompt, "completion_tokens": len(text), "total_tokens": prompt + len(text)}


def _chunks(head: dict, text: str, citations: list[dict], usage: dict | None):
    base = {**head, "object": "chat.completion.chunk"}
    if usage is not None:
        base["usage"] = None  # as OpenAI: null on every chunk but the last when usage is asked for

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        record = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(record, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(text):
        yield chunk({"content": piece})
    yield chunk({}, "stop", citations=citations)
    if usage is not None:
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage}, ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"


# ---------------------------------------------------------------- errors in OpenAI's shape

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "invalid_request_error", 409: "conflict_error", 413: "invalid_request_error",
          429: "rate_limit_error"}
_CODES = {401: "invalid_api_key", 404: "not_found", 429: "rate_limit_exceeded"}


def serves(request: Request) -> bool:
    """True for a request to this door, whose errors take OpenAI's shape."""
    return request.url.path == PREFIX or request.url.path.startswith(PREFIX + "/")


def error_response(status: int, message: str, param: str | None = None, code: str | None = None,
                   headers: dict | None = None) -> JSONResponse:
    """An error in OpenAI's shape; a request the core cannot use (422 elsewhere) is a 400 here, as OpenAI's."""
    status = 400 if status == 422 else status
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code or _CODES.get(status)}}
    return JSONResponse(body, status_code=status, headers=headers)


def http_error_response(status: int, detail, headers: dict | None = None) -> JSONResponse:
    """An HTTPException (404, 401, 429 …) in OpenAI's shape; a dict detail may name param and code."""
    if isinstance(detail, dict):
        return error_response(status, str(detail.get("message", "")), detail.get("param"), detail.get("code"), headers)
    return error_response(status, str(detail), headers=headers)

