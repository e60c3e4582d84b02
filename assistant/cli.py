"""CLI edge: `python -m assistant build|import|search|ask|chat|match|serve|eval|bench`.

Each subcommand imports what it needs when it runs; core errors become exit messages here, and
answers, matches and search hits are printed for a terminal here (the core returns records).
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


# -- the Assistant at a terminal: ask, chat, match -------------------------------------------------
def format_answer(answer) -> str:
    """An answer for a terminal: the text as every edge shows it (the fact first, one line per document,
    the short validity line last), then each citation's title, section and quote."""
    out = [answer.answer]
    if answer.clarify:
        options = " / ".join(f"[{i}] {o}" for i, o in enumerate(answer.clarify["options"], 1))
        out.append(f"{answer.clarify['question']} {options}（输入地区名或序号）")
    if answer.rewritten_query:
        out.insert(0, f"（检索：{answer.rewritten_query}）")
    for c in answer.citations:
        out.append(f"  [{c.n}] 《{c.doc_title}》 {c.section}\n      “{c.quote}”  ({c.clause_id})")
    if answer.related:
        out.append("可能相关：")
        for c in answer.related:
            out.append(f"  - 《{c.doc_title}》 {c.section}  ({c.clause_id})")
    return "\n".join(out)


def format_matches(matches: list) -> str:
    """政策匹配 results for a terminal: benefit, condition, the quoted sentence and where it stands."""
    if not matches:
        return "没有找到适用于该企业的支持条款。"
    out = []
    for i, m in enumerate(matches, 1):
        status = {"current": "现行", "expired": "已过期", "unknown": "未载明有效期"}.get(m.validity.get("status"), "")
        out.append(f"{i}. {m.benefit}" + (f"（条件：{m.condition}）" if m.condition else "") + (f"  匹配：{'、'.join(m.why)}" if m.why else ""))
        out.append(f"   “{m.quote}”")
        out.append(f"   《{m.doc_title}》{'（' + m.region + '）' if m.region else ''} {m.section} [{status}]  ({m.clause_id})")
    return "\n".join(out)


def _converse_parser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"assistant {name}")
    if name == "ask":
        parser.add_argument("question")
        parser.add_argument("--region")
        parser.add_argument("--doc")
    if name == "match":
        parser.add_argument("profile", nargs="?", default="", help="the company: types, recognitions, plans, size")
        parser.add_argument("--region", help="where it is registered")
        parser.add_argument("--only-current", action="store_true", help="only documents whose term has not ended")
        parser.add_argument("--facts", help="the structured profile as JSON (政策计算器), e.g. "
                            "'{\"industry\": \"工业\", \"quantities\": {\"节能量\": \"2000吨标准煤\"}}'")
    parser.add_argument("--json", action="store_true", help="print the record as JSON")
    return parser


def converse(name: str, argv: list[str]) -> int:
    """`ask "…" [--json] [--region R] [--doc D]`, interactive `chat [--json]` and
    `match ["profile"] [--region R] [--facts JSON] [--only-current] [--json]`."""
    from assistant.config import Settings
    from assistant.pipeline import Assistant

    args = _converse_parser(name).parse_args(argv)
    assistant = Assistant.from_settings(Settings())
    if name == "match":
        return _match(assistant, args)

    def show(answer) -> None:
        if args.json:
            print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        else:
            print(format_answer(answer))

    if name == "ask":
        show(assistant.ask(args.question, region=args.region, doc_id=args.doc))
        return 0
    _chat_loop(assistant, show)
    return 0


def _match(assistant, args) -> int:
    # without --facts, the free-text match as before; with them, the calculator's checklist per rule
    from assistant.match import format_report

    facts = None
    if args.facts is not None:
        try:
            facts = json.loads(args.facts)
        except json.JSONDecodeError as exc:
            print(f"error: --facts is not valid JSON ({exc.msg} at character {exc.pos})", file=sys.stderr)
            return 2
    report = assistant.match_report(args.region, args.profile, facts, args.only_current)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(format_matches(list(report.matches)) if facts is None else format_report(report))
    return 0


def _chat_loop(assistant, show) -> None:
    # One conversation over stdin until end of input or "exit"; a bad message is reported, not fatal.
    from assistant.schema import QueryError

    session_id = None
    clarify = None
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            break
        line = line.strip()
        if line in ("exit", "quit", "退出"):
            break
        if not line:
            continue
        if clarify and line.isdigit() and 1 <= int(line) <= len(clarify["options"]):
            line = clarify["options"][int(line) - 1]  # a clarifying option chosen by its number
        try:
            answer = assistant.chat(line, session_id)
        except QueryError as e:
            print(f"error: {e}", file=sys.stderr)
            continue
        session_id = answer.session_id
        clarify = answer.clarify
        show(answer)
        print()


# -- the web service -------------------------------------------------------------------------------
def _terminate(signum, frame) -> None:
    raise SystemExit(0)


def serve(name: str, argv: list[str]) -> int:
    """`serve [--host --port --workers]`: build the index when missing or stale, then run uvicorn."""
    import signal

    import uvicorn

    settings = _settings()
    parser = argparse.ArgumentParser(prog=f"assistant {name}")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    # SIGTERM (systemd, docker stop, kill) is a normal stop: exit 0 after uvicorn's graceful shutdown,
    # which hands the signal back once it is done, or straight away during the start-up build.
    signal.signal(signal.SIGTERM, _terminate)
    ensure_index(settings)
    base = f"http://{args.host}:{args.port}"
    print(f"chat widget demo: {base}/\nclause lookup:    {base}/lookup\nAPI docs:         {base}/docs", flush=True)
    if args.workers > 1:
        # each worker builds its own app from the environment's settings
        uvicorn.run("assistant.api:app_factory", factory=True, host=args.host, port=args.port, workers=args.workers)
    else:
        from assistant.api import create_app

        uvicorn.run(create_app(settings), host=args.host, port=args.port)
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

    for name, run, helptext in (
        ("ask", converse, "answer one question with citations"),
        ("chat", converse, "interactive conversation"),
        ("match", converse, "政策匹配: the clauses that grant something to a company profile"),
        ("serve", serve, "start the web service"),
        ("mcp", "assistant.api.mcp", "MCP server over stdio (for agents; HTTP is served at /mcp)"),
        ("eval", "assistant.evaluate", "evaluate on a test set"),
        ("calibrate", "assistant.evaluate.calibrate", "choose answer thresholds and ranking weights on both test sets"),
        ("train-reranker", "assistant.evaluate.rerank_train", "train the learned re-ranker on both test sets (cross-validated)"),
        ("bench", "assistant.bench", "speed and scale benchmarks"),
    ):
        # The command parses its own arguments, `--help` included: this parser only routes to it
        # (a function here, or the `cli` of a module named by its path, imported when it runs).
        p = sub.add_parser(name, help=helptext, add_help=False)
        p.set_defaults(run=run, name=name)
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
        run = args.run
        if isinstance(run, str):
            import importlib

            run = importlib.import_module(run).cli
        return run(args.name, rest)
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
