"""Build guard (chunk → index stage): chunking and fact extraction of each document run in a worker
process under a time limit.

A regex that backtracks runs inside C while holding the GIL: a thread running it can't be
interrupted, and the rest of the process (a server answering queries, its signal handlers) stalls
with it. A process can be killed. So each document goes to one of a few worker processes; a worker
that overruns the limit is killed and replaced, its document is reported as skipped (an error naming
the file), and every other document goes on. Workers are started fresh (spawn) for each batch: they
inherit no locks from the threads of a running server.

An upload is read the same way (read_upload): extracting its text, cleaning and chunking it run in one
worker under the same time limit and a cap on its address space (RLIMIT_AS), so a hostile file costs
the server neither its memory nor a thread for longer than the limit. A .docx's zip sizes are checked
before the worker starts: a zip bomb is refused at once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable, Sequence

from assistant.schema import (
    BuildCancelled,
    Clause,
    CorpusError,
    Document,
    DocumentTimeoutError,
    UploadMemoryError,
)

# How often a waiting build looks at its stop flag.
_POLL_S = 0.2
# Time a worker gets to start (interpreter, imports) before it is counted as broken; the
# per-document limit only starts when the worker has said it is ready.
_START_S = 60.0
# What a worker imports before it says it is ready (so the time limit covers only the work).
_CHUNKERS = ("assistant.chunk", "assistant.conditions", "assistant.facts")
_READERS = _CHUNKERS + ("assistant.corpus", "assistant.ingest", "docx", "pypdf", "trafilatura", "lxml.html")


def document_clauses(doc: Document, chunk_max_chars: int = 600) -> list[Clause]:
    """The clauses of one document with their facts and rules: the unit of work a worker runs."""
    from assistant.chunk import split
    from assistant.conditions import attach_rules
    from assistant.facts import attach_facts

    return [attach_rules(attach_facts(c)) for c in split(doc, max_chars=chunk_max_chars)]


def upload_text(name: str, data: bytes, doc_id: str, limits, chunk_max_chars: int = 600,
                chunker: Callable = document_clauses) -> tuple[str, int]:
    """An upload's text, read within `limits`, and the number of clauses the build will make of it: the
    unit of work of read_upload (CorpusError, or an UploadLimitError, when it is refused)."""
    from assistant.corpus import build_document
    from assistant.ingest import extract_text

    text = extract_text(name, data, limits)
    return text, len(chunker(build_document(text, name, doc_id), chunk_max_chars))


def _serve(conn, preload: tuple[str, ...] = _CHUNKERS, memory_bytes: int | None = None) -> None:
    import importlib

    # Ctrl-C reaches the whole process group: the parent handles it and ends its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for module in preload:  # imported before "ready", so the time limit covers only work
        importlib.import_module(module)
    if memory_bytes:
        import resource

        # Address space, not resident memory: a parser that asks for more gets a MemoryError here.
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    conn.send(("ready", None))
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result = ("ok", fn(*args))
        except MemoryError:
            result = ("memory", None)
        except Exception as exc:  # reported for this document; the worker serves the next one
            # A named error travels as its class (by reference) and message, so the caller raises the same.
            named = exc.__class__ if isinstance(exc, CorpusError) else None
            result = ("error", (named, str(exc) if named else f"{exc.__class__.__name__}: {exc}"))
        conn.send(result)


class _Worker:
    def __init__(self, ctx, preload: tuple[str, ...] = _CHUNKERS, memory_bytes: int | None = None):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, preload, memory_bytes), name="assistant-chunk", daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.task: int | None = None
        self.deadline = time.monotonic() + _START_S

    def send(self, task: int, payload, timeout_s: float) -> None:
        self.conn.send(payload)
        self.task = task
        self.deadline = time.monotonic() + timeout_s

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()

    def close(self) -> None:
        self.conn.close()  # the worker reads EOF and returns
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.kill()


def run(
    docs: Sequence[Document],
    chunk_max_chars: int = 600,
    timeout_s: float | None = 20.0,
    stop=None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> list[list[Clause] | CorpusError]:
    """Per document (in order), its clauses or the CorpusError that skipped it.

    `timeout_s` falsy runs everything in this process, unguarded (errors then propagate as they are).
    `stop` (a threading.Event) is checked between documents: when set, BuildCancelled is raised.
    """
    if not timeout_s:
        return _run_unguarded(docs, chunk_max_chars, stop, progress)
    if not docs:
        return []
    ctx = multiprocessing.get_context("spawn")
    n = max(1, min(workers or os.cpu_count() or 1, len(docs), 4))
    pool = [_Worker(ctx) for _ in range(n)]
    results: list[list[Clause] | CorpusError | None] = [None] * len(docs)
    todo = list(range(len(docs)))
    todo.reverse()  # popped from the end: documents go out in order
    done = 0
    try:
        while done < len(docs):
            check_stop(stop)
            _dispatch(pool, todo, docs, chunk_max_chars, timeout_s)
            ready = _wait(pool)
            for k, w in enumerate(pool):
                message = _message(w, ready)
                if message is None:
                    continue
                kind, value = message
                if kind == "ready":
                    w.ready = True
                    continue
                if w.task is None:  # a worker that never started
                    w.kill()
                    raise CorpusError(f"chunking worker did not start ({kind})")
                i, w.task = w.task, None
                results[i] = _outcome(kind, value, docs[i], timeout_s, w)
                if kind not in ("ok", "error"):  # overran or died: replaced by a fresh worker
                    w.kill()
                    check_stop(stop)  # never start a replacement when the build is stopping
                    pool[k] = _Worker(ctx)
                done += 1
                if progress:
                    progress(done, len(docs))
    finally:
        _end(pool)
    return results  # type: ignore[return-value]


def _run_unguarded(docs, chunk_max_chars: int, stop, progress) -> list[list[Clause]]:
    results = []
    for i, doc in enumerate(docs):
        check_stop(stop)
        results.append(document_clauses(doc, chunk_max_chars))
        if progress:
            progress(i + 1, len(docs))
    return results


def _dispatch(pool: list[_Worker], todo: list[int], docs, chunk_max_chars: int, timeout_s: float) -> None:
    # Each idle, started worker takes the next document. The work function is looked up at each
    # dispatch, so a replaced module attribute (a test's slow chunker) is what the worker runs.
    work = globals()["document_clauses"]
    for w in pool:
        if w.ready and w.task is None and todo:
            i = todo.pop()
            w.send(i, (work, (docs[i], chunk_max_chars)), timeout_s)


def _wait(pool: list[_Worker]) -> set:
    # The pipes with a message, waiting no longer than the nearest deadline or the stop-flag poll.
    busy = [w for w in pool if not w.ready or w.task is not None]
    now = time.monotonic()
    wait_s = min([_POLL_S] + [max(0.0, w.deadline - now) for w in busy])
    return set(wait([w.conn for w in busy], timeout=wait_s)) if busy else set()


def _message(w: _Worker, ready: set) -> tuple | None:
    # What a worker has to say this round: its message, "died" when its pipe broke, "timeout" when it
    # overran its deadline (starting or working), or None when it is idle or still within time.
    if w.conn in ready:
        try:
            return w.conn.recv()
        except (EOFError, OSError):
            return "died", None
    if (w.ready and w.task is None) or time.monotonic() < w.deadline:
        return None
    return "timeout", None


def _outcome(kind: str, value, doc: Document, timeout_s: float, w: _Worker) -> list[Clause] | CorpusError:
    # A document's result from its worker's message: its clauses, or the error that skips it.
    if kind == "ok":
        return value
    if kind == "error":
        return CorpusError(f"{doc.source}: chunking failed ({value[1]})")
    if kind == "memory":
        return CorpusError(f"{doc.source}: chunking failed (MemoryError)")
    if kind == "timeout":
        return DocumentTimeoutError(
            f"{doc.source}: chunking took longer than {timeout_s:g} s and was stopped "
            "(ASSISTANT_DOCUMENT_TIMEOUT_S); the document was skipped"
        )
    return CorpusError(f"{doc.source}: the chunking worker died (exit code {w.process.exitcode})")


def _end(pool: list[_Worker]) -> None:
    # A worker still busy (or never started) is killed; an idle one is let go.
    for w in pool:
        if w.task is not None or not w.ready:
            w.kill()
        else:
            w.close()


def read_upload(name: str, data: bytes, doc_id: str, limits, chunk_max_chars: int = 600,
                timeout_s: float | None = 20.0, memory_mb: int | None = 1024) -> tuple[str, int]:
    """An uploaded file's text and clause count, read, cleaned and chunked in a worker process that may
    use `timeout_s` seconds and `memory_mb` MB of address space; the CorpusError (an UploadLimitError,
    DocumentTimeoutError, UploadMemoryError …) that refuses it otherwise. `timeout_s` falsy reads it in
    this process, unguarded."""
    from assistant.ingest import check_archive

    chunker = globals()["document_clauses"]  # looked up now: a test's slow chunker is what runs
    if Path(name).suffix.lower() == ".docx":
        check_archive(name, data, limits)  # only the central directory is read: a bomb costs nothing
    if not timeout_s:
        return upload_text(name, data, doc_id, limits, chunk_max_chars, chunker)
    memory_bytes = memory_mb * 1024 * 1024 if memory_mb else None
    kind, value = _run_one(upload_text, (name, data, doc_id, limits, chunk_max_chars, chunker), timeout_s, memory_bytes)
    if kind == "ok":
        return value
    if kind == "error":
        named, message = value
        raise (named or CorpusError)(message if named else f"{name}: reading failed ({message})")
    if kind == "memory":
        cap = f"more than {memory_mb} MB of memory (ASSISTANT_UPLOAD_MEMORY_MB)" if memory_mb else "more memory than there is"
        raise UploadMemoryError(f"{name}: reading the file needed {cap}; it was refused")
    if kind == "timeout":
        raise DocumentTimeoutError(
            f"{name}: reading and chunking took longer than {timeout_s:g} s and was stopped "
            "(ASSISTANT_DOCUMENT_TIMEOUT_S); the file was refused"
        )
    raise CorpusError(f"{name}: the reading worker died ({value}); the file was refused")


def _run_one(fn: Callable, args: tuple, timeout_s: float, memory_bytes: int | None) -> tuple[str, object]:
    # One task in one fresh worker: (kind, value) as _message gives them, the worker ended afterwards.
    w = _Worker(multiprocessing.get_context("spawn"), _READERS, memory_bytes)
    try:
        while True:
            ready = set(wait([w.conn], timeout=max(0.0, w.deadline - time.monotonic())))
            message = _message(w, ready)
            if message is None:
                continue
            kind, value = message
            if kind == "ready" and w.task is None:
                w.ready = True
                w.send(0, (fn, args), timeout_s)
                continue
            if w.task is None:
                raise CorpusError(f"the reading worker did not start ({kind})")
            if kind == "died":
                w.process.join(1)
                value = f"exit code {w.process.exitcode}"
            return kind, value
    finally:
        w.kill()  # used once: ended at once, busy or not


def check_stop(stop) -> None:
    """Raise BuildCancelled when the stop flag (a threading.Event or None) is set."""
    if stop is not None and stop.is_set():
        raise BuildCancelled()
