"""Labelling stage: derive each test item's `relevant` clause ids from its gold quotes, so labels survive re-chunking.

A clause is relevant when its compacted text contains a compacted gold quote; a quote spanning a clause
split marks the clauses holding its parts. Only `relevant` changes; every other field is kept as is.

    python eval/label.py [--questions eval/testset.jsonl] [--out eval/testset.labeled.jsonl] [--in-place]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def label_items(items: list[dict], clauses) -> tuple[list[dict], list[str]]:
    """Items with `relevant` filled in, and the ids of answerable items whose quotes matched no clause."""
    from assistant.evaluate import relevant_clauses

    out, unmatched = [], []
    for item in items:
        rel = relevant_clauses(clauses, item.get("gold_quotes", []))
        if item.get("gold_quotes") and not rel:
            unmatched.append(item["id"])
        out.append({**item, "relevant": rel})
    return out, unmatched


def main(argv: list[str] | None = None) -> int:
    """Label a test set against the chunked corpus."""
    from assistant.chunk import split
    from assistant.config import Settings
    from assistant.evaluate import documents_from, load_questions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=Path("eval/testset.jsonl"))
    parser.add_argument("--corpus", type=Path, help="corpus folder or JSONL (default: corpus/)")
    parser.add_argument("--out", type=Path, default=Path("eval/testset.labeled.jsonl"))
    parser.add_argument("--in-place", action="store_true", help="rewrite --questions, changing only `relevant`")
    args = parser.parse_args(argv)
    settings = Settings()
    clauses = [c for d in documents_from(args.corpus, settings) for c in split(d, max_chars=settings.chunk_max_chars)]
    items, unmatched = label_items(load_questions(args.questions), clauses)
    target = args.questions if args.in_place else args.out
    target.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    print(f"labelled {len(items)} items into {target}; {len(unmatched)} with unmatched quotes {unmatched}")
    return 1 if unmatched else 0


if __name__ == "__main__":
    sys.exit(main())
