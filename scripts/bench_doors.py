"""Door latency (not a pytest): the same question through /api/chat, the OpenAI-compatible door
(non-stream and stream) and MCP's `ask` over streamable HTTP, in process (ASGI, no socket).

    python scripts/bench_doors.py [--n 100] [--questions eval/testset.jsonl]

Uses the index and model the settings name (ASSISTANT_* / .env; ./index by default); the questions
of the test set in turn, every door the same ones; prints the p50 and p95 in milliseconds of each
door, sequential requests, the doors in turn for each question after five warm-up rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import anyio



async def _timed(questions: list[str], doors: dict) -> dict[str, list[float]]:
    # Interleaved, question by question, so warm-up, caches and a busy machine weigh on every door alike.
    for q in questions[:5]:
        for call in doors.values():
            await call(q)
    out: dict[str, list[float]] = {door: [] for door in doors}
    for q in questions:
        for door, call in doors.items():
            began = time.perf_counter()
            await call(q)
            out[door].append((time.perf_counter() - began) * 1000)
    return out


async def _run(questions: list[str]) -> dict[str, list[float]]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from assistant.api import create_app
    from assistant.config import Settings

    app = create_app(Settings(rate_limit="1000000/minute", api_keys=[]))
    transport = httpx2.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx2.AsyncClient(transport=transport, base_url="http://bench") as http:

        async def post(path: str, body: dict) -> None:
            response = await http.post(path, json=body)
            assert response.status_code == 200, response.text

        def completion(q: str, stream: bool = False) -> dict:
            return {"model": "policy-assistant", "messages": [{"role": "user", "content": q}], "stream": stream}

        async with Client(streamable_http_client("http://bench/mcp", http_client=http)) as mcp:

            async def ask(q: str) -> None:
                result = await mcp.call_tool("ask", {"question": q})
                assert not result.is_error, result.content

            return await _timed(questions, {
                "/api/chat": lambda q: post("/api/chat", {"message": q}),
                "/v1/chat/completions": lambda q: post("/v1/chat/completions", completion(q)),
                "/v1/chat/completions stream": lambda q: post("/v1/chat/completions", completion(q, True)),
                "/mcp ask": ask,
            })


def _questions(path: Path, n: int) -> list[str]:
    asked = [json.loads(line).get("question") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    asked = [q for q in asked if isinstance(q, str)] or ["首次获批的国家高新技术企业有什么奖励？"]
    return [asked[i % len(asked)] for i in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--questions", type=Path, default=Path("eval/testset.jsonl"))
    args = parser.parse_args()
    timings = anyio.run(_run, _questions(args.questions, args.n))
    print(f"{'door':32} {'p50 ms':>8} {'p95 ms':>8}  (n={args.n}, in process)")
    for door, ms in timings.items():
        p95 = statistics.quantiles(ms, n=20)[-1]
        print(f"{door:32} {statistics.median(ms):8.1f} {p95:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
