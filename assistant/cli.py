"""CLI edge: `python -m assistant build|search|ask|chat|serve|eval|bench`.

Each subcommand imports what it needs when it runs; core errors become exit messages here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def _settings(args=None):
    from assistant.config import Settings

    overrides = {}
    for name in ("corpus_dir", "index_dir", "embedder", "model"):
        value = getattr(args, name, None) if args is not None else None
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _embedder(settings):
    from assistant.embed import make_embedder

    return make_embedder(settings.embedder, settings.model, settings.hash_dim)


def ensure_index(settings, quiet: bool = False, force: bool = False) -> str | None:
    """Build the index when missing or stale (or forced), printing progress and counts."""
    from tqdm import tqdm

    from assistant.index import build_corpus

    bar = tqdm(total=0, desc="embedding clauses", unit="clause", disable=quiet, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    started = time.perf_counter()
    try:
        reason, stats, errors = build_corpus(
            settings.corpus_dir,
            settings.index_dir,
            _embedder(settings),
            chunk_max_chars=settings.chunk_max_chars,
            force=force,
            progress=progress,
            ann_threshold=settings.ann_threshold,
            hnsw_m=settings.hnsw_m,
            hnsw_ef_search=settings.hnsw_ef_search,
            batch_size=settings.embed_batch_size,
        )
    finally:
        bar.close()
    for err in errors:
        print(f"warning: skipped {err}", file=sys.stderr)
    if quiet:
        return reason
    if stats is None:
        print(f"index at {settings.index_dir} is current")
    else:
        print(
            f"built index at {settings.index_dir} ({reason}): {stats.documents} documents, {stats.clauses} clauses, "
            f"{stats.embedded} embedded ({stats.clauses - stats.embedded} from cache), {stats.dense_index} dense index, "
            f"{time.perf_counter() - started:.1f} s"
        )
    return reason


def cmd_build(args) -> int:
    settings = _settings(args)
    ensure_index(settings, force=not args.if_stale)
    return 0


def load_retriever(settings):
    from assistant.index import PolicyIndex
    from assistant.retrieve import Retriever

    index = PolicyIndex.load(settings.index_dir)
    return Retriever.from_settings(index, _embedder(settings), settings)


def cmd_search(args) -> int:
    settings = _settings(args)
    retriever = load_retriever(settings)
    hits, took = retriever.timed_search(args.query, k=args.k, region=args.region, doc_id=args.doc, department=args.department, mode=args.mode)
    if args.json:
        print(json.dumps({"hits": [h.to_dict() for h in hits], "took_ms": round(took, 2)}, ensure_ascii=False, indent=2))
        return 0
    if not hits:
        print("no matching clause")
    for i, hit in enumerate(hits, 1):
        c = hit.clause
        print(f"{i}. [{hit.score:.4f}] 《{c.doc_title}》（{c.region}）{c.section}")
        print(f"   {c.clause_id}" + (f"  负责：{c.department}" if c.department else ""))
        print("   " + c.text.replace("\n", " ")[:160] + ("…" if len(c.text) > 160 else ""))
    print(f"({took:.1f} ms)")
    return 0


def _add_index_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus-dir", dest="corpus_dir", help="corpus folder (default: corpus/)")
    p.add_argument("--index-dir", dest="index_dir", help="index folder (default: index/)")
    p.add_argument("--embedder", choices=["sentence-transformers", "hash"], help="embedding backend")
    p.add_argument("--model", help="sentence-transformers model name or path (default: m3e-small)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m assistant", description="Policy assistant: cited answers from policy clauses.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build the index from corpus/")
    _add_index_args(p)
    p.add_argument("--if-stale", action="store_true", help="only build when the index is missing or stale")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("search", help="hybrid search for clauses")
    _add_index_args(p)
    p.add_argument("query")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--region")
    p.add_argument("--doc", help="restrict to one doc_id")
    p.add_argument("--department")
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    for name, module, helptext in (
        ("ask", "assistant.pipeline", "answer one question with citations"),
        ("chat", "assistant.pipeline", "interactive conversation"),
        ("serve", "assistant.api", "start the web service"),
        ("eval", "assistant.evaluate", "evaluate on a test set"),
        ("bench", "assistant.bench", "speed and scale benchmarks"),
    ):
        # The module parses its own arguments, `--help` included: this parser only routes to it.
        p = sub.add_parser(name, help=helptext, add_help=False)
        p.set_defaults(module=module, name=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    from assistant.schema import AssistantError

    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    try:
        if hasattr(args, "func"):
            if rest:
                parser.error(f"unrecognized arguments: {' '.join(rest)}")
            return args.func(args)
        import importlib

        module = importlib.import_module(args.module)
        return module.cli(args.name, rest)
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
