"""API edge, MCP: the assistant's tools and documents for agents, built with the official `mcp` SDK.

One MCPServer over the Assistant, two transports:
- streamable HTTP at /mcp on the FastAPI app. Stateless, with JSON responses, so any worker or
  replica answers any request; the SDK's session manager runs inside the app's lifespan
  (`running`), and `Endpoint` puts the API keys and the rate limit of the other doors in front;
- stdio: `python -m assistant mcp`, for an agent that starts the server itself.
Tool arguments are checked with the REST API's limits; a core error becomes a tool error (the
call returns is_error with the reason) and the server keeps serving.
"""

# No `from __future__ import annotations` here: the SDK reads each tool's signature, whose
# Annotated limits are built per server from the settings and must be real objects, not strings.

import argparse
import contextlib
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from assistant.api.models import document_out
from assistant.doors import answer_text
from assistant.schema import AssistantError, UnknownDocumentError

MAX_K = 100  # as SearchRequest.k
MAX_REGION_CHARS = 60  # as MatchRequest.region
MAX_ID_CHARS = 300

INSTRUCTIONS = (
    "政策助手：依据已收录的中小企业与创新政策文件回答，每个结论都引用条款原文。"
    "Policy assistant: answers only from the indexed Chinese SME and innovation policy documents, "
    "every statement cited to the clause it quotes ([n] markers match citations[].n)."
)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


@contextlib.contextmanager
def _tool_errors():
    # A refusal the core names (bad query, unknown clause …) is the caller's to fix: a tool error with
    # the reason, logged without a traceback, instead of the SDK's generic "Error executing tool".
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        yield
    except AssistantError as exc:
        raise ToolError(str(exc)) from exc


Region = Annotated[
    str | None, Field(max_length=MAX_REGION_CHARS, description="地区：市或区县名 / region: a city or district name")
]
OnlyCurrent = Annotated[bool, Field(description="只要仍在有效期内的文件 / only documents still in force")]


def build_server(assistant, settings):
    """The MCPServer with the five tools and the document resources over `assistant`."""
    from mcp.server.mcpserver import MCPServer

    # WARNING: the SDK configures the root logger at this level when nothing else did (INFO floods uvicorn's output)
    server = MCPServer("policy-assistant", instructions=INSTRUCTIONS, log_level="WARNING")
    _add_question_tools(server, assistant, settings.max_message_chars)
    _add_library_tools(server, assistant)
    return server


def _add_question_tools(server, assistant, limit: int) -> None:
    # The free-text limit is the REST API's (settings.max_message_chars), so it is built per server.
    Text = Annotated[str, Field(min_length=1, max_length=limit), AfterValidator(_not_blank)]

    @server.tool(description=(
        "检索政策条款：按问题或关键词返回最相关的条款原文（混合检索）。"
        "Search policy clauses: the clauses (full text, document, section, score) that best match a query."
    ))
    def search_clauses(
        query: Annotated[Text, Field(description="问题或关键词 / question or keywords")],
        k: Annotated[int, Field(ge=1, le=MAX_K, description="返回条数 / how many clauses")] = 5,
        region: Region = None,
        only_current: OnlyCurrent = False,
    ) -> dict[str, Any]:
        with _tool_errors():
            hits = assistant.search(
                query, k=k, region=region or None, current_on=assistant.today() if only_current else None
            )
        return {"hits": [h.to_dict() for h in hits]}

    @server.tool(description=(
        "政策问答：给出有出处的回答，文中 [n] 对应 citations 中的条款；找不到依据时明确拒答（refused）。"
        "Ask: a grounded answer whose [n] markers match citations[].n; when no clause answers it, a refusal "
        "(refused true). `text` is the answer followed by its sources."
    ))
    def ask(
        question: Annotated[Text, Field(description="用户的问题 / the question")],
        region: Region = None,
    ) -> dict[str, Any]:
        with _tool_errors():
            answer = assistant.ask(question, region=region or None)
        record = answer.to_dict()
        return {"text": answer_text(answer), **{k: record[k] for k in (
            "answer", "refused", "rewritten_query", "notice", "clarify", "citations", "related")}}

    @server.tool(description=(
        "政策匹配：根据企业注册地和情况（类型、资质、计划、规模），列出可申请的扶持条款及条件、原文。"
        "Match policies: the clauses that grant something to a company like the profile in the region, "
        "best fit first, each with its benefit, condition, quoted sentence and validity."
    ))
    def match_policies(
        region: Annotated[
            str | None, Field(max_length=MAX_REGION_CHARS, description="企业注册地 / where the company is registered")
        ] = None,
        profile: Annotated[
            str | None, Field(max_length=limit, description="企业情况，自由文本 / free text: types, recognitions, plans")
        ] = None,
        only_current: OnlyCurrent = False,
    ) -> dict[str, Any]:
        with _tool_errors():
            found = assistant.match(region or None, profile or None, only_current)
        return {"matches": [m.to_dict() for m in found]}


def _add_library_tools(server, assistant) -> None:
    @server.tool(description=(
        "按编号取一条条款原文及其所属文件（编号如 doc_id#三.(一)，来自检索或引用）。"
        "Get one clause by its id (from search hits or citations), with its document's metadata."
    ))
    def get_clause(
        clause_id: Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, description="条款编号 / clause id")],
    ) -> dict[str, Any]:
        from assistant.library import clause_view

        with _tool_errors():
            clause, record = clause_view(assistant.index, clause_id)
        document = document_out(record, assistant.today()) if record else None
        return {**clause.record(), "ordinal": clause.ordinal, "document": document}

    @server.tool(description=(
        "列出已收录的政策文件（标题、发文单位、地区、日期、有效期）；可按地区筛选。"
        "List the indexed policy documents (title, issuer, region, dates, validity), optionally of one region."
    ))
    def list_documents(region: Region = None) -> dict[str, Any]:
        from assistant.backends.local import matches_region

        today = assistant.today()
        records = [d for d in assistant.index.documents if not region or matches_region(d.get("region", ""), region)]
        return {"documents": [
            {**document_out(d, today), "uri": f"policy://documents/{d['doc_id']}"} for d in records
        ]}

    @server.resource(
        "policy://documents/{doc_id}", mime_type="text/markdown",
        description="一份政策文件的全文（按条款）/ a policy document, clause by clause",
    )
    def document(doc_id: str) -> str:
        return _document_text(assistant, doc_id)


def _document_text(assistant, doc_id: str) -> str:
    from mcp.server.mcpserver.exceptions import ResourceNotFoundError

    from assistant.library import document_view

    try:
        record, clauses = document_view(assistant.index, doc_id)
    except UnknownDocumentError as exc:
        raise ResourceNotFoundError(str(exc)) from exc
    meta = document_out(record, assistant.today())
    head = [f"# {meta['title'] or doc_id}", ""]
    for label, key in (("发文单位", "issuer"), ("地区", "region"), ("文号", "doc_number"), ("日期", "date")):
        if meta[key]:
            head.append(f"- {label}：{meta[key]}")
    head.append(f"- 有效期：{meta['validity']['status']}" + (f"（至 {meta['validity']['until']}）" if meta["validity"]["until"] else ""))
    body = [f"\n## {c.section}  ({c.clause_id})\n\n{c.text}" for c in clauses]
    return "\n".join(head + body) + "\n"


# ---------------------------------------------------------------- streamable HTTP on the app


@contextlib.asynccontextmanager
async def running(app):
    """Serve /mcp while the app runs: a fresh session manager each time the lifespan is entered
    (the SDK's manager runs once only), removed again at shutdown."""
    from mcp.server.transport_security import TransportSecuritySettings

    server = build_server(app.state.assistant, app.state.settings)
    # DNS-rebinding protection would refuse every Host but localhost; the tools read only what the
    # REST API serves to anyone anyway, and ASSISTANT_API_KEYS guards both doors alike.
    server.streamable_http_app(
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    async with server.session_manager.run():
        app.state.mcp_sessions = server.session_manager
        try:
            yield
        finally:
            app.state.mcp_sessions = None


class Endpoint:
    """The ASGI app at /mcp: API key and rate limit (each POST counts as a request), then the SDK."""

    async def __call__(self, scope, receive, send) -> None:
        from fastapi import HTTPException
        from starlette.requests import Request
        from starlette.responses import JSONResponse

        from assistant.api.deps import key_accepted

        app = scope["app"]
        request = Request(scope)
        sessions = getattr(app.state, "mcp_sessions", None)
        try:
            if not key_accepted(app.state.settings.api_keys, request.headers.get("authorization", "")):
                raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})
            if request.method == "POST":
                app.state.rate_limiter(request)
            if sessions is None:
                raise HTTPException(503, "MCP is served while the app's lifespan runs (uvicorn does this)")
        except HTTPException as exc:
            response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
            await response(scope, receive, send)
            return
        await sessions.handle_request(scope, receive, send)


# ---------------------------------------------------------------- stdio


def cli(name: str, argv: list[str]) -> int:
    """`mcp`: the MCP server over stdin/stdout, over the index the settings (ASSISTANT_*) name."""
    from assistant.config import Settings
    from assistant.pipeline import Assistant

    parser = argparse.ArgumentParser(
        prog=f"assistant {name}",
        description="MCP server over stdio (for Claude Desktop, Cursor …); build the index first. "
        "Streamable HTTP is served at /mcp by `serve`.",
    )
    parser.parse_args(argv)
    settings = Settings()
    build_server(Assistant.from_settings(settings), settings).run("stdio")
    return 0
