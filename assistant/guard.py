"""Build guard (chunk → index stage): chunking and fact extraction of each document run in a worker
process under a time limit.

A regex that backtracks runs inside C while holding the GIL: a thread running it can't be
interrupted, and the rest of the process (a server answering queries, its signal handlers) stalls
with it. A process can be killed. So each document goes to one of a few worker processes; a worker
that overruns the limit is killed and replaced, its document is reported as skipped (an error naming
the file), and every other document goes on. Workers are started fresh (spawn) for each batch: they
inherit no locks from the threads of a running server.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing.connection import wait
from typing import Callable, Sequence

from assistant.schema import BuildCancelled, Clause, CorpusError, Document, DocumentTimeoutError

# How often a waiting build looks at its stop flag.
_POLL_S = 0.2
# Time a worker gets to start (interpreter, imports) before it is counted as broken; the
# per-document limit only starts when the worker has said it is ready.
_START_S = 60.0


def document_clauses(doc: Document, chunk_max_chars: int = 600) -> list[Clause]:
    """The clauses of one document with their facts and rules: the unit of work a worker runs."""
    from assistant.chunk import split
    from assistant.conditions import attach_rules
    from assistant.facts import attach_facts

    return [attach_rules(attach_facts(c)) for c in split(doc, max_chars=chunk_max_chars)]


def _serve(conn) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it and ends its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import assistant.chunk  # noqa: F401  (imported before "ready", so the time limit covers only work)
    import assistant.conditions  # noqa: F401
    import assistant.facts  # noqa: F401

    conn.send(("ready", None))
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result = ("ok", fn(*args))
        except Exception as exc:  # reported for this document; the worker serves the next one
            result = ("error", str(exc) if isinstance(exc, CorpusError) else f"{exc.__class__.__name__}: {exc}")
        conn.send(result)


class _Worker:
    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child,), name="assistant-chunk", daemon=True)
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
        return CorpusError(f"{doc.source}: chunking failed ({value})")
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


def check_document(doc: Document, chunk_max_chars: int = 600, timeout_s: float | None = 20.0) -> list[Clause]:
    """The clauses of one document, or its CorpusError raised (DocumentTimeoutError when too slow)."""
    result = run([doc], chunk_max_chars, timeout_s)[0]
    if isinstance(result, CorpusError):
        raise result
    return result


def check_stop(stop) -> None:
    """Raise BuildCancelled when the stop flag (a threading.Event or None) is set."""
    if stop is not None and stop.is_set():
        raise BuildCancelled()
