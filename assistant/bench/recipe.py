"""Benchmark stage, against the common recipe: the time to read a folder, cut 500-character windows with 50
overlap and embed them in one sentence-transformers call, beside this project's build of the same folder."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from assistant.evaluate.baselines import windows


def vs_recipe(folder: Path, settings, backends=None, progress: bool = True) -> dict:
    """Time, in one run on `folder`, (a) the common recipe (read the documents, 500-character windows
    with 50 overlap, one sentence-transformers `encode` call with the same model) and (b) this project's
    build into a temporary index, once per backend; each from a cold start of embedding (a model loaded
    anew, no vector cache). The one-off ONNX export is done before timing and reported apart."""
    from assistant.embed import load_embedder, onnx_cache_dir

    folder = Path(folder)
    hashed = settings.embedder == "hash"
    backends = ["hash"] if hashed else list(backends or [settings.embed_backend])
    report = {"folder": str(folder), "model": settings.model if not hashed else f"hash-{settings.hash_dim}",
              "cores": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()], "project": {}}
    cache = onnx_cache_dir(settings.index_dir)
    export_s = {}
    for backend in backends:  # the export happens once per machine and model: not part of a build
        if not hashed and backend != "torch":
            t0 = time.perf_counter()
            load_embedder(settings.embedder, settings.model, settings.hash_dim, backend, cache)
            export_s[backend] = round(time.perf_counter() - t0, 1)
    report["onnx_export_or_load_s"] = export_s
    report["recipe"] = _time_recipe(folder, settings, progress)
    for backend in backends:
        report["project"][backend] = _time_project(folder, settings, backend, cache, report["recipe"]["seconds"])
    return report


def _time_recipe(folder: Path, settings, progress: bool) -> dict:
    """The recipe from reading the folder to its vectors, with a torch model loaded anew."""
    from assistant.corpus import load_corpus
    from assistant.embed import load_embedder

    t0 = time.perf_counter()
    docs, _ = load_corpus(folder)
    chunks = [w for d in docs for w in windows(d.text)]
    model = load_embedder(settings.embedder, settings.model, settings.hash_dim, "torch")
    model.encode(chunks, batch_size=32, progress=progress)  # sentence-transformers' default batch size
    seconds = time.perf_counter() - t0
    return {"documents": len(docs), "windows": len(chunks), "seconds": round(seconds, 1),
            "windows_per_s": round(len(chunks) / seconds, 1)}


def _time_project(folder: Path, settings, backend: str, cache: Path, recipe_s: float) -> dict:
    """This project's forced build of the folder into a temporary index, with the backend's model loaded anew."""
    from assistant.embed import load_embedder
    from assistant.index import build_from_settings

    with tempfile.TemporaryDirectory(prefix="vs-recipe-") as tmp:
        t0 = time.perf_counter()
        embedder = load_embedder(settings.embedder, settings.model, settings.hash_dim, backend, cache)
        _, stats, errors = build_from_settings(settings.model_copy(update={"corpus_dir": folder}), embedder=embedder,
                                               target=Path(tmp) / "index", force=True)
        seconds = time.perf_counter() - t0
    return {
        "embedder": embedder.name, "documents": stats.documents, "clauses": stats.clauses, "skipped": len(errors),
        "seconds": round(seconds, 1), "clauses_per_s": round(stats.clauses / seconds, 1),
        "ratio_to_recipe": round(seconds / max(recipe_s, 1e-9), 2),
    }


def vs_recipe_lines(report: dict) -> str:
    """The comparison in plain lines: both times, the ratio, windows and clauses per second."""
    r = report["recipe"]
    lines = [
        f"folder {report['folder']}: {r['documents']} documents; model {report['model']}; {report['cores']} cores, "
        f"load average at start {report['loadavg_at_start']}",
        f"recipe  (500-char windows, 50 overlap, one encode call, torch): {r['windows']} windows in {r['seconds']} s "
        f"({r['windows_per_s']} windows/s)",
    ]
    for backend, p in report["project"].items():
        lines.append(
            f"project ({backend}, {p['embedder']}): {p['clauses']} clauses in {p['seconds']} s ({p['clauses_per_s']} clauses/s)"
            f"; ratio project/recipe {p['ratio_to_recipe']}" + (f"; {p['skipped']} documents skipped" if p["skipped"] else "")
        )
    if report.get("onnx_export_or_load_s"):
        lines.append(f"ONNX export or load before timing (once per machine and model): {report['onnx_export_or_load_s']} s")
    return "\n".join(lines)

