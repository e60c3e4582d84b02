"""Load test (not a pytest): start the service on 127.0.0.1 and drive /api/chat and /api/search.

    ASSISTANT_RATE_LIMIT=100000/minute python scripts/loadtest.py [--clients 20] [--seconds 30] [--workers 2,1]

Uses the real model and the index the settings name (./index by default; ASSISTANT_INDEX_DIR and
ASSISTANT_CORPUS_DIR for another library). Each client alternates chat and search questions in a
bounded loop. With --workers 2,1 one invocation starts `serve --workers 2`, measures it, stops it,
then does the same with one worker, and prints req/s, p50/p95 latency and the error count per route
and server side by side.
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


def _start(workers: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.setdefault("ASSISTANT_RATE_LIMIT", "100000/minute")
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}"


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _ready(base: str, proc: subprocess.Popen | None) -> dict | None:
    # The health record once the server answers; None when it exits or does not start in time.
    deadline = time.time() + 300
    while True:
        try:
            return httpx.get(base + "/api/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            if proc is not None and proc.poll() is not None:
                print("server exited before answering", file=sys.stderr)
                return None
            if time.time() > deadline:
                print("server did not start", file=sys.stderr)
                return None
            time.sleep(0.5)


def _measure(base: str, args) -> dict:
    # One load run against a ready server: per route, its latencies, errors and throughput.
    for q in QUESTIONS[:4]:  # warm-up (every worker process, likely), not measured
        httpx.post(base + "/api/search", json={"query": q, "k": 5}, timeout=60)
        httpx.post(base + "/api/chat", json={"message": q}, timeout=60)
    lat, errors, wall = asyncio.run(_run(base, args.clients, args.seconds, args.max_requests))
    rows = {}
    for route in ("/api/chat", "/api/search"):
        v = lat[route]
        rows[route] = {
            "ok": len(v), "errors": errors[route], "rps": len(v) / wall, "p50": _pct(v, 0.5), "p95": _pct(v, 0.95),
            "mean": statistics.fmean(v) if v else float("nan"),
        }
    return {"wall": wall, "rows": rows}


def _table(results: list[tuple[str, dict]], clients: int) -> None:
    print(f"\n{clients} concurrent clients, each alternating chat and search")
    print(f"{'server':12s} {'route':12s} {'ok':>6s} {'errors':>6s} {'req/s':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'mean ms':>8s}")
    for label, r in results:
        for route, row in r["rows"].items():
            print(f"{label:12s} {route:12s} {row['ok']:6d} {row['errors']:6d} {row['rps']:7.1f} {row['p50']:8.1f} "
                  f"{row['p95']:8.1f} {row['mean']:8.1f}")
        total = sum(row["ok"] for row in r["rows"].values())
        print(f"{label:12s} {'both':12s} {total:6d} {sum(row['errors'] for row in r['rows'].values()):6d} "
              f"{total / r['wall']:7.1f}   ({r['wall']:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    """Start the server (once per --workers count, one after the other), run the load, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-requests", type=int, default=100_000, help="per client, bounds the loop")
    parser.add_argument("--workers", default="1",
                        help="comma-separated worker counts, each measured in turn: 2,1 compares two workers with one")
    parser.add_argument("--url", help="use a running server instead of starting one (127.0.0.1 only)")
    args = parser.parse_args(argv)

    if args.url and not args.url.startswith(("http://127.0.0.1", "http://localhost")):
        parser.error("--url must be a local server")
    runs = [("running", None)] if args.url else [(f"{n} worker{'s' * (n > 1)}", n) for n in _counts(parser, args.workers)]
    results = []
    for label, workers in runs:
        proc, base = (None, args.url.rstrip("/")) if workers is None else _start(workers)
        try:
            health = _ready(base, proc)
            if health is None:
                return 1
            print(f"{label}: {base}, {health['documents']} documents, {health['clauses']} clauses, model {health['model']}")
            results.append((label, _measure(base, args)))
        finally:
            _stop(proc)
    _table(results, args.clients)
    errors = sum(row["errors"] for _, r in results for row in r["rows"].values())
    print(f"total errors: {errors}")
    return 0 if errors == 0 else 2


def _counts(parser, text: str) -> list[int]:
    try:
        counts = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1 or max(counts) > 8:
        parser.error("--workers: comma-separated counts from 1 to 8, e.g. 2,1")
    return counts


if __name__ == "__main__":
    sys.exit(main())
