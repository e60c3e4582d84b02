"""Evaluation stage, the command: `python -m assistant eval …` parsed, run, and its tables printed."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from assistant.evaluate.report import span_line, table
from assistant.evaluate.run import MODES, evaluate
from assistant.evaluate.sources import DEFAULT_CACHE


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def cli(name: str, argv: list[str]) -> int:
    """`eval [--corpus PATH] [--questions F] [--out DIR] [--modes …] [--embedder K] [--limit N] [--index-cache DIR] [--no-answers]`."""
    parser = argparse.ArgumentParser(
        prog=f"python -m assistant {name}",
        description="Evaluate retrieval and answers on a question set. Seed items (gold_quotes/facts/refuse) get recall, "
        "fact, citation and refusal metrics; span items ({id, question, answer}) get hit@k, MRR@10, answer_contains, "
        "refusal rate and answer length, scored as ../shared/extdata/score_http.py does.",
    )
    parser.add_argument("--corpus", type=Path, help="corpus folder or JSONL of {doc_id,title,text} (default: the service's corpus/ and index/)")
    parser.add_argument("--questions", type=Path, default=Path("eval/testset.jsonl"), help="JSONL question set (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("eval"), help="where report.json, report.md and plots go (default: %(default)s)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="retrieval modes to score (default: all)")
    parser.add_argument("--embedder", choices=["hash", "sentence-transformers"], help="embedding backend (default: the settings')")
    parser.add_argument("--limit", type=_positive, metavar="N", help="only the first N questions")
    parser.add_argument("--index-cache", type=Path, default=DEFAULT_CACHE, metavar="DIR",
                        help="where the cached index of a --corpus lives, rebuilt only when stale (default: %(default)s)")
    parser.add_argument("--no-answers", action="store_true", help="retrieval metrics only")
    parser.add_argument("--backend", choices=["faiss", "milvus"],
                        help="search the index in FAISS + bm25s or in Milvus (default: ASSISTANT_BACKEND or faiss)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = evaluate(args.questions, args.out, args.corpus, args.modes, args.embedder, not args.no_answers,
                      limit=args.limit, cache_root=args.index_cache, backend=args.backend)
    info = report["meta"].get("index")
    if info:
        how = "current" if info["built"] is None else f"built ({info['built']}), {info['embedded']} of {info['clauses']} clauses embedded"
        print(f"index {info['dir']}: {how}")
    print(table(report))
    if "span" in report:
        print("\nspan (score_http.py keys): " + span_line(report["span"]))
    print(f"\nwrote {args.out / 'report.json'}, {args.out / 'report.md'} ({time.perf_counter() - started:.1f} s)")
    return 0
