"""CLI edge: `python -m assistant build|import|search|ask|chat|serve|eval|bench`.

Each subcommand imports what it needs when it runs; core errors become exit messages here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _settings(args=None):
    from assistant.config import Settings

    overrides = {}
    for name in ("corpus_dir", "index_dir", "embedder", "model", "backend"):
        value = getattr(args, name, None) if args is not None else None
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _embedder(settings):
    from assistant.embed import embedder_for

    return embedder_for(settings)


_WHY = {"missing": "no index yet", "forced": "rebuild requested"}


def ensure_index(settings, quiet: bool = False, force: bool = False) -> str | None:
    """Build the index when missing or stale (or forced), saying in plain words what was found and
    done; a progress bar appears only for a stage that has work to do."""
    from tqdm import tqdm

    from assistant.backends import target_of
    from assistant.index import build_from_settings

    target = target_of(settings)
    bars: dict[str, tqdm] = {}

    def bar(desc: str, unit: str):
        def update(done: int, total: int) -> None:
            if quiet or total <= 0:
                return
            if desc not in bars:
                bars[desc] = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr)
            b = bars[desc]
            if b.disable:  # closed: this stage is over
                return
            b.total = total
            b.update(done - b.n)  # update(), not refresh(): redraws at most ~10 times a second
            if done >= total:
                b.close()

        return update

    def started(reason: str) -> None:
        if not quiet:
            print(f"rebuilding the index at {target.describe()}: {_WHY.get(reason, reason)}", file=sys.stderr, flush=True)

    began = time.perf_counter()
    try:
        reason, stats, errors = build_from_settings(
            settings,
            target=target,
            force=force,
            progress=bar("embedding clauses", "clause"),
            chunk_progress=bar("chunking documents", "doc"),
            started=started,
        )
    finally:
        for b in bars.values():
            b.close()
    for err in errors:
        print(f"warning: skipped {err}", file=sys.stderr)
    if quiet:
        return reason
    if stats is None:
        counts = (target.read_manifest() or {}).get("counts", {})
        print(f"index is up to date: {counts.get('documents', 0)} documents, {counts.get('clauses', 0)} clauses ({target.describe()})")
    else:
        print(build_summary(reason, stats, len(errors), time.perf_counter() - began))
    return reason


def build_summary(reason: str, stats, skipped: int, seconds: float) -> str:
    """What a build found and did, in plain words (two lines)."""
    why = _WHY.get(reason, reason)
    changes = stats.changes or {}
    parts = [f"{changes[k]} {k}" for k in ("added", "changed", "removed") if changes.get(k)]
    if parts and reason not in ("missing", "forced"):
        n, _, what = parts[0].partition(" ")
        parts[0] = f"{n} document{'s' if n != '1' else ''} {what}"
        why += f" ({', '.join(parts)})"
    line1 = f"index rebuilt: {stats.documents} documents, {stats.clauses} clauses — {why}"
    line2 = (
        f"  chunked {stats.chunked} document{'s' if stats.chunked != 1 else ''}"
        + (f", reused {stats.reused} unchanged" if stats.reused else "")
        + f"; embedded {stats.embedded} clause{'s' if stats.embedded != 1 else ''}"
        + (f", {stats.clauses - stats.embedded} from the previous index" if stats.embedded < stats.clauses else "")
        + (f"; {skipped} file{'s' if skipped != 1 else ''} skipped" if skipped else "")
        + f"; {stats.dense_index} dense index, {seconds:.1f} s"
    )
    return f"{line1}\n{line2}"


def cmd_import(args) -> int:
    from tqdm import tqdm

    from assistant.corpus import import_documents

    settings = _settings(args)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=f"importing into {settings.corpus_dir}", unit="doc", file=sys.stderr)
        bar.update(done - bar.n)

    try:
        counts, errors = import_documents(args.path, settings.corpus_dir, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    print(
        f"imported into {settings.corpus_dir}: {counts['added']} added, {counts['changed']} changed, "
        f"{counts['unchanged']} unchanged" + (f", {len(errors)} could not be read" if errors else "")
    )
    if not args.no_build:
        ensure_index(settings)
    return 1 if errors and not sum(counts.values()) else 0


def cmd_build(args) -> int:
    settings = _settings(args)
    ensure_index(settings, force=not args.if_stale)
    return 0


def load_retriever(settings):
    from assistant.backends import target_of
    from assistant.retrieve import Retriever

    index = target_of(settings).load()
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
    p.add_argument("--backend", choices=["faiss", "milvus"], help="where the index lives (default: ASSISTANT_BACKEND or faiss)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m assistant", description="Policy assistant: cited answers from policy clauses.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build the index from corpus/")
    _add_index_args(p)
    p.add_argument("--if-stale", action="store_true", help="only build when the index is missing or stale")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("import", help="copy a folder (txt/html/docx/pdf) or a JSONL of {doc_id,title,text} into corpus/, then build")
    _add_index_args(p)
    p.add_argument("path", type=Path, help="a folder of documents or a .jsonl file")
    p.add_argument("--no-build", action="store_true", help="only copy the documents; build later")
    p.set_defaults(func=cmd_import)

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
        ("match", "assistant.pipeline", "政策匹配: the clauses that grant something to a company profile"),
        ("serve", "assistant.api", "start the web service"),
        ("mcp", "assistant.api.mcp", "MCP server over stdio (for agents; HTTP is served at /mcp)"),
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
