"""Benchmark stage, the command: `python -m assistant bench …` — scale points, `--vs-recipe FOLDER` or
`--backend faiss,milvus` — parsed, run, and printed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from assistant.bench.index_backends import index_backends, index_backends_lines
from assistant.bench.recipe import vs_recipe, vs_recipe_lines
from assistant.bench.scale import run, table


def cli(name: str, argv: list[str]) -> int:
    """`bench [--sizes 1000,10000,100000] [--real-sizes 50000] [--out eval/bench.json] [--queries 50] [--embedder K]`,
    or `bench --vs-recipe FOLDER [--backends torch,onnx-int8]`."""
    from assistant.embed import BACKENDS

    parser = argparse.ArgumentParser(prog=f"assistant {name}")
    parser.add_argument("--sizes", default="1000,10000,100000", help="synthetic points (noisy copies of real vectors); '' for none")
    parser.add_argument("--real-sizes", default="", help="points whose generated clauses are embedded for real, e.g. 50000")
    parser.add_argument("--real-backend", choices=BACKENDS, default="onnx-int8", help="embedding backend of the real points")
    parser.add_argument("--out", type=Path, default=Path("eval/bench.json"))
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--chat-queries", type=int, default=20)
    parser.add_argument("--throughput-sample", type=int, default=100, help="generated clauses embedded with the real model")
    parser.add_argument("--embedder", choices=["hash", "sentence-transformers"])
    parser.add_argument("--vs-recipe", type=Path, metavar="FOLDER",
                        help="only time the common recipe against this project's build of FOLDER")
    parser.add_argument("--backends", help=f"with --vs-recipe: embedding backends, comma-separated of {', '.join(BACKENDS)} (default: the setting)")
    parser.add_argument("--backend", metavar="faiss,milvus",
                        help="only compare index backends (comma-separated of faiss, milvus) on the same clauses and vectors: "
                        "build, disk, search and answer latency")
    parser.add_argument("--corpus", type=Path, help="with --backend: a corpus folder or JSONL (default: corpus/)")
    parser.add_argument("--questions", type=Path, default=Path("eval/testset.jsonl"), help="with --backend: the questions searched")
    args = parser.parse_args(argv)
    if args.backend is not None:
        from assistant.config import Settings

        names = [b.strip() for b in args.backend.split(",") if b.strip()]
        unknown = [b for b in names if b not in ("faiss", "milvus")]
        if unknown or not names:
            parser.error(f"--backend: unknown {', '.join(unknown) or 'nothing'}; use faiss, milvus")
        settings = Settings(**({"embedder": args.embedder} if args.embedder else {}))
        report = index_backends(names, settings, args.corpus, args.questions, args.queries)
        print(index_backends_lines(report))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_name(args.out.stem + "-backends.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        return 0
    if args.vs_recipe is not None:
        from assistant.config import Settings

        settings = Settings(**({"embedder": args.embedder} if args.embedder else {}))
        backends = [b.strip() for b in (args.backends or "").split(",") if b.strip()] or None
        unknown = [b for b in backends or [] if b not in BACKENDS]
        if unknown:
            parser.error(f"unknown backend {', '.join(unknown)}: use {', '.join(BACKENDS)}")
        report = vs_recipe(args.vs_recipe, settings, backends)
        print(vs_recipe_lines(report))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    real_sizes = [int(s) for s in args.real_sizes.split(",") if s.strip()]
    report = run(sizes, args.out, args.queries, args.embedder, args.throughput_sample, args.chat_queries,
                 real_sizes=real_sizes, real_backend=args.real_backend)
    print(report["note"])
    print(table(report))
    print(f"peak RSS (ru_maxrss): {report['peak_rss_mb']} MB\nwrote {args.out} and {args.out.with_suffix('.png')}")
    return 0
