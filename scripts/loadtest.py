"""Load test (not a pytest): start the service on 127.0.0.1 and drive /api/chat and /api/search.

    ASSISTANT_RATE_LIMIT=100000/minute python scripts/loadtest.py [--clients 20] [--seconds 30]

Uses the real model and the index the settings name (./index by default). Each client alternates
chat and search questions in a bounded loop; prints p50/p95 latency and the error count per route.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time

import httpx

QUESTIONS = [
    "首次获批的国家高新技术企业有什么奖励？",
    "蓟州区对企业上市有什么支持？",
    "专精特新小巨人企业能拿多少奖励？",
    "西青区对科技型中小企业有哪些扶持政策？",
    "企业在新三板挂牌有补贴吗？",
    "宝坻区对雏鹰企业怎么支持？",
    "研发费用加计扣除有什么规定？",
    "芦台经济开发区对专精特新企业奖励多少？",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


async def _client(n: int, base: str, until: float, lat: dict, errors: dict, max_requests: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        i = n
        sent = 0
        while time.perf_counter() < until and sent < max_requests:
            q = QUESTIONS[i % len(QUESTIONS)]
            route, payload = ("/api/chat", {"message": q}) if i % 2 == 0 else ("/api/search", {"query": q, "k": 5})
            i += 1
            sent += 1
            started = time.perf_counter()
            try:
                r = await client.post(route, json=payload)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            if ok:
                lat[route].append(elapsed)
            else:
                errors[route] += 1


async def _run(base: str, clients: int, seconds: float, max_requests: int) -> tuple[dict, dict, float]:
    lat = {"/api/chat": [], "/api/search": []}
    errors = {"/api/chat": 0, "/api/search": 0}
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(_client(n, base, until, lat, errors, max_requests) for n in range(clients)))
    return lat, errors, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Start the server, run the load, print the numbers, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-requests", type=int, default=100_000, help="per client, bounds the loop")
    parser.add_argument("--url", help="use a running server instead of starting one (127.0.0.1 only)")
    args = parser.parse_args(argv)

    proc = None
    if args.url:
        if not args.url.startswith(("http://127.0.0.1", "http://localhost")):
            parser.error("--url must be a local server")
        base = args.url.rstrip("/")
    else:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        env.setdefault("ASSISTANT_RATE_LIMIT", "100000/minute")
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistant", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    try:
        deadline = time.time() + 180
        while True:
            try:
                health = httpx.get(base + "/api/health", timeout=5).json()
                break
            except (httpx.HTTPError, ValueError):
                if proc is not None and proc.poll() is not None:
                    print("server exited before answering", file=sys.stderr)
                    return 1
                if time.time() > deadline:
                    print("server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.5)
        print(f"server {base}: {health['documents']} documents, {health['clauses']} clauses, model {health['model']}")
        for q in QUESTIONS[:2]:  # warm-up, not measured
            httpx.post(base + "/api/search", json={"query": q, "k": 5}, timeout=60)
        lat, errors, wall = asyncio.run(_run(base, args.clients, args.seconds, args.max_requests))
        print(f"{args.clients} concurrent clients, {wall:.1f} s")
        for route in ("/api/chat", "/api/search"):
            v = lat[route]
            p50, p95 = _pct(v, 0.5), _pct(v, 0.95)
            mean = statistics.fmean(v) if v else float("nan")
            print(f"{route:12s} ok={len(v):5d} errors={errors[route]:3d} p50={p50:7.1f} ms p95={p95:7.1f} ms "
                  f"mean={mean:7.1f} ms  {len(v) / wall:6.1f} req/s")
        print(f"total errors: {sum(errors.values())}")
        return 0 if sum(errors.values()) == 0 else 2
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
