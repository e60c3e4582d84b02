"""The standard doors driven by their real client libraries: the `openai` package against
/v1/chat/completions, the `mcp` package's client over streamable HTTP (/mcp) and over stdio
(`python -m assistant mcp`), each against the real app over a hash-embedder index of corpus/."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import anyio
import pytest

from serving import in_thread

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"

QUESTION = "首次获批的国家高新技术企业有什么奖励？"
KEY = "test-key-1"
TOOLS = {"search_clauses", "ask", "get_clause", "list_documents", "match_policies"}


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    """Settings over a private copy of corpus/ with a hash index, API keys on, a generous rate limit."""
    from assistant.config import Settings
    from assistant.embed import make_embedder
    from assistant.index import build_corpus

    tmp = tmp_path_factory.mktemp("doors")
    shutil.copytree(CORPUS, tmp / "corpus")
    s = Settings(corpus_dir=tmp / "corpus", index_dir=tmp / "index", data_dir=tmp / "data", embedder="hash",
                 hash_dim=256, api_keys=[KEY, "another-key"], rate_limit="1000/minute")
    build_corpus(s.corpus_dir, s.index_dir, make_embedder("hash", s.model, 256), s.chunk_max_chars)
    return s


@pytest.fixture(scope="module")
def base_url(settings):
    with in_thread(settings) as url:
        yield url


@pytest.fixture
def client(base_url):
    from openai import OpenAI

    return OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0)


def _ask(client, *contents: str, **kwargs):
    roles = ["user", "assistant"]
    messages = [{"role": roles[i % 2], "content": c} for i, c in enumerate(contents)]
    return client.chat.completions.create(model="policy-assistant", messages=messages, **kwargs)


# ---------------------------------------------------------------- OpenAI-compatible chat


def test_models_lists_the_one_model(client):
    assert [m.id for m in client.models.list().data] == ["policy-assistant"]
    assert client.models.retrieve("policy-assistant").id == "policy-assistant"


def test_completion_answers_with_markers_sources_and_citations(client):
    done = _ask(client, QUESTION)
    choice = done.choices[0]
    text = choice.message.content
    assert choice.finish_reason == "stop" and done.object == "chat.completion" and done.model == "policy-assistant"
    assert "30—50万元" in text and "[1]" in text
    citations = choice.message.citations  # the extra field, read through the client's model
    first = citations[0]
    assert first["n"] == 1 and "30—50万元" in first["quote"]
    # the plain text ends with the sources: a plain client shows which document [1] is
    assert text.rindex("来源：") > text.index("[1]")
    assert f"[1] 《{first['doc_title']}》 {first['section']}" in text.split("来源：")[1]
    # usage in characters
    assert done.usage.completion_tokens == len(text)
    assert done.usage.prompt_tokens == len(QUESTION)
    assert done.usage.total_tokens == len(text) + len(QUESTION)


def test_stream_sends_chunks_then_citations_on_the_last(client):
    stream = _ask(client, QUESTION, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "30—50万元" in text and "[1]" in text and "来源：" in text
    assert len(chunks) > 3  # the answer arrives in several pieces
    last = [c for c in chunks if c.choices and c.choices[0].finish_reason][-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.citations[0]["n"] == 1 and "30—50万元" in last.citations[0]["quote"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(text)
    # the same answer as without streaming
    assert text == _ask(client, QUESTION).choices[0].message.content


def test_refusal_is_a_normal_completion(client):
    for done_text, finish, citations in _both(client, "今天天气怎么样？"):
        assert finish == "stop"
        assert "没有找到" in done_text and citations == []
        assert "[1]" not in done_text


def _both(client, *contents):
    """(text, finish_reason, citations) without and with streaming."""
    done = _ask(client, *contents)
    yield done.choices[0].message.content, done.choices[0].finish_reason, done.choices[0].message.citations
    chunks = list(_ask(client, *contents, stream=True))
    last = chunks[-1]
    yield "".join(c.choices[0].delta.content or "" for c in chunks), last.choices[0].finish_reason, last.citations


def test_followup_is_resolved_from_the_messages(client):
    first = _ask(client, QUESTION).choices[0].message.content
    for text, _, citations in _both(client, QUESTION, first, "那上市呢？"):
        assert "上市" in citations[0]["quote"]
        assert "[1]" in text
    # without the earlier turns the same words ask nothing the documents answer about 高企 listing
    alone = _ask(client, "那上市呢？").choices[0].message
    assert alone.citations != _ask(client, QUESTION, first, "那上市呢？").choices[0].message.citations


def test_system_and_text_parts_are_accepted(client):
    done = client.chat.completions.create(model="policy-assistant", messages=[
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
    ])
    assert "30—50万元" in done.choices[0].message.content


def test_bad_requests_get_openai_errors(client):
    import openai

    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    assert e.value.status_code == 404
    assert e.value.body["code"] == "model_not_found" and e.value.body["param"] == "model"
    assert "gpt-4o" in e.value.body["message"] and e.value.body["type"] == "invalid_request_error"

    cases = [
        ({"messages": []}, "messages: must not be empty"),
        ({"messages": [{"role": "user", "content": "奖" * 1001}]}, "too long (1001 characters, at most 1000)"),
        ({"messages": [{"role": "user", "content": "   "}]}, "must not be empty"),
        ({"messages": [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "…"}]},
         "the last message must be the user's"),
        ({"messages": [{"role": "user", "content": QUESTION}], "stream_options": {"include_usage": True}},
         "stream_options: only allowed when stream is true"),
        ({"messages": [{"role": "user", "content": QUESTION}], "stream": True, "stream_options": {"include_usage": "yes"}},
         "stream_options.include_usage"),
        ({"messages": [{"role": "user", "content": QUESTION}], "stream": True,
          "extra_body": {"stream_options": {"include_usage": True, "chunk_size": 3}}}, "stream_options.chunk_size"),
        ({"messages": [{"role": "wizard", "content": QUESTION}]}, "unknown role 'wizard'"),
    ]
    for kwargs, says in cases:
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model="policy-assistant", **kwargs)
        assert e.value.status_code == 400, kwargs
        assert says in e.value.body["message"], (kwargs, e.value.body)
        assert e.value.body["type"] == "invalid_request_error"
    # and it keeps answering
    assert "30—50万元" in _ask(client, QUESTION).choices[0].message.content


def test_api_keys_are_required_when_configured(base_url):
    import openai

    for key in ("wrong", KEY + "x"):
        stranger = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as e:
            _ask(stranger, QUESTION)
        assert e.value.status_code == 401 and e.value.body["code"] == "invalid_api_key"
    other = openai.OpenAI(base_url=f"{base_url}/v1", api_key="another-key", max_retries=0)
    assert "30—50万元" in _ask(other, QUESTION).choices[0].message.content


def test_rate_limit_applies_to_completions(settings):
    import openai

    with in_thread(settings.model_copy(update={"rate_limit": "2/minute", "api_keys": []})) as url:
        open_client = openai.OpenAI(base_url=f"{url}/v1", api_key="anything", max_retries=0)
        _ask(open_client, QUESTION)  # no keys configured: any key (or none) is let in
        _ask(open_client, QUESTION)
        with pytest.raises(openai.RateLimitError) as e:
            _ask(open_client, QUESTION)
        assert e.value.body["type"] == "rate_limit_error" and "rate limit" in e.value.body["message"]


# ---------------------------------------------------------------- MCP


def _http_client(base_url: str, key: str | None = KEY, statuses: list | None = None):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def record(response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    http = httpx2.AsyncClient(headers=headers, timeout=60, event_hooks={"response": [record]})
    return Client(streamable_http_client(f"{base_url}/mcp", http_client=http))


def _stdio_client(settings):
    from mcp import Client, StdioServerParameters

    env = {
        "ASSISTANT_EMBEDDER": "hash", "ASSISTANT_HASH_DIM": "256", "ASSISTANT_INDEX_DIR": str(settings.index_dir),
        "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir), "ASSISTANT_DATA_DIR": str(settings.data_dir),
        "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT),
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "assistant", "mcp"], env=env, cwd=str(ROOT))
    return Client(params, read_timeout_seconds=120)


async def _exercise(client) -> None:
    """What every MCP transport must do: the five tools described in both languages, cited answers,
    refusals, documents as resources, and tool errors for bad arguments with the server still serving."""
    from mcp.shared.exceptions import MCPError

    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for t in tools.values():
        assert any("\u4e00" <= ch <= "\u9fff" for ch in t.description), t.name  # Chinese
        assert sum(ch.isascii() and ch.isalpha() for ch in t.description) > 20, t.name  # and English
    assert tools["search_clauses"].input_schema["properties"]["k"]["maximum"] == 100
    assert tools["ask"].input_schema["properties"]["question"]["maxLength"] == 1000

    result = await client.call_tool("ask", {"question": QUESTION})
    assert not result.is_error
    answer = result.structured_content
    assert "30—50万元" in answer["answer"] and "[1]" in answer["answer"] and not answer["refused"]
    assert answer["citations"][0]["n"] == 1 and "30—50万元" in answer["citations"][0]["quote"]
    assert "来源：" in answer["text"]

    refusal = (await client.call_tool("ask", {"question": "今天天气怎么样？"})).structured_content
    assert refusal["refused"] is True and refusal["citations"] == []

    hits = (await client.call_tool("search_clauses", {"query": QUESTION, "k": 3})).structured_content["hits"]
    assert len(hits) == 3 and any("30—50万元" in h["text"] for h in hits)
    clause = (await client.call_tool("get_clause", {"clause_id": answer["citations"][0]["clause_id"]})).structured_content
    assert "30—50万元" in clause["text"] and clause["document"]["doc_id"] == clause["doc_id"]

    documents = (await client.call_tool("list_documents", {})).structured_content["documents"]
    region = answer["citations"][0]["region"]
    local = (await client.call_tool("list_documents", {"region": region})).structured_content["documents"]
    assert 0 < len(local) < len(documents) and all(region in d["region"] for d in local)
    page = await client.read_resource(local[0]["uri"])
    assert page.contents[0].text.startswith(f"# {local[0]['title']}")

    matches = (await client.call_tool("match_policies", {"region": region, "profile": "国家高新技术企业"})).structured_content
    assert matches["matches"] and all(region in m["region"] or m["region"] in region for m in matches["matches"])

    bad = [
        ("search_clauses", {"query": QUESTION, "k": 0}, "k"),
        ("search_clauses", {"query": QUESTION, "k": "many"}, "k"),
        ("search_clauses", {"query": "   "}, "must not be empty"),
        ("ask", {"question": "奖" * 1001}, "question"),
        ("ask", {}, "question"),
        ("get_clause", {"clause_id": "no-such#1"}, "unknown clause"),
        ("match_policies", {"region": "区" * 61}, "region"),
        ("match_policies", {"region": "不存在的地方", "profile": "国家高新技术企业"}, "不存在的地方"),
    ]
    for name, arguments, says in bad:
        result = await client.call_tool(name, arguments)
        assert result.is_error, (name, arguments)
        assert says in result.content[0].text, (name, arguments, result.content[0].text)
    with pytest.raises(MCPError, match="unknown document"):
        await client.read_resource("policy://documents/no-such-document")
    # still serving
    again = (await client.call_tool("ask", {"question": QUESTION})).structured_content
    assert again["citations"] == answer["citations"]


def _drive(client, work) -> None:
    async def run():
        async with client as connected:
            await work(connected)

    anyio.run(run)


def test_mcp_over_streamable_http(base_url):
    _drive(_http_client(base_url), _exercise)


def test_mcp_over_http_needs_the_key(base_url):
    statuses: list[int] = []
    with pytest.raises(BaseException):  # the client reports "Server returned an error response"
        _drive(_http_client(base_url, key=None, statuses=statuses), lambda client: client.list_tools())
    assert statuses and set(statuses) == {401}


def test_mcp_over_stdio(settings):
    _drive(_stdio_client(settings), _exercise)


def test_mcp_is_not_in_the_openapi_schema_but_v1_is(base_url):
    import httpx2

    paths = httpx2.get(f"{base_url}/openapi.json").json()["paths"]
    assert "/v1/chat/completions" in paths and "/v1/models" in paths
    assert not any(p.startswith("/mcp") for p in paths)
