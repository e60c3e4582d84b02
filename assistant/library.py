"""Library: the corpus folder as a managed collection of policy documents.

Above corpus, ingest, guard and index; below the edges (it never imports fastapi). Adding a file
writes `<doc_id>.txt` and its `<doc_id>.meta.json` sidecar (with a validity override when one is
given) only after the same checks a build makes; listing joins the folder with the live index;
removing deletes a file and its sidecar. The Reindexer rebuilds in a background thread and swaps
the Assistant's index atomically, so queries keep being answered from the old index meanwhile.
Refusals are the named errors of schema.py; the edges turn them into statuses or messages.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from assistant.schema import (
    CorpusError,
    FileTooLargeError,
    QueryError,
    ReindexRunningError,
    UnknownClauseError,
    UnknownDocumentError,
    UnsafeNameError,
    UnsupportedFileError,
)

_UNSAFE_NAME = re.compile(r"[/\\\x00]|^\.|\.\.")


@dataclass(frozen=True)
class Added:
    """A document written to the library; it is searchable after the next re-index."""

    doc_id: str
    file: str
    source: str  # the name it was uploaded under
    chars: int


@dataclass(frozen=True)
class LibraryFile:
    """One document file of the corpus folder, and whether the live index holds it."""

    doc_id: str
    file: str
    source: str
    title: str
    bytes: int
    indexed: bool


class Library:
    """The corpus folder: add, list and remove documents with their sidecars."""

    def __init__(self, folder: Path, max_upload_bytes: int, chunk_max_chars: int = 600,
                 document_timeout_s: float | None = 20.0, limits=None, upload_memory_mb: int | None = 1024):
        from assistant.ingest import DEFAULT_LIMITS

        self.folder = Path(folder)
        self.max_upload_bytes = max_upload_bytes
        self.chunk_max_chars = chunk_max_chars
        self.document_timeout_s = document_timeout_s
        self.limits = limits or DEFAULT_LIMITS  # ingest.Limits: what reading one file may cost
        self.upload_memory_mb = upload_memory_mb

    @classmethod
    def from_settings(cls, settings) -> "Library":
        from assistant.ingest import Limits

        return cls(settings.corpus_dir, settings.max_upload_bytes, settings.chunk_max_chars, settings.document_timeout_s,
                   Limits.from_settings(settings), settings.upload_memory_mb)

    def add(self, name: str | None, stream: BinaryIO, valid_until: str = "", validity_basis: str = "") -> Added:
        """Check an uploaded file and write it with its sidecar; nothing is written when it is refused."""
        from assistant.guard import read_upload

        name = self._checked_name(name)
        data = stream.read(self.max_upload_bytes + 1)  # never more than the limit and a byte is held
        if len(data) > self.max_upload_bytes:
            raise FileTooLargeError(f"file too large (limit {self.max_upload_bytes} bytes)")
        override = validity_override(valid_until, validity_basis)  # QueryError, nothing written
        doc_id = f"upload-{uuid.uuid4().hex[:10]}"
        # Read, cleaned and chunked as the index build will, in a worker under the build's time limit
        # and a memory cap: a file the build would skip, or one past a bound, is refused here (naming
        # the problem), this process's memory and threads are not held, and nothing is written.
        text, _ = read_upload(name, data, doc_id, self.limits, self.chunk_max_chars, self.document_timeout_s,
                              self.upload_memory_mb)
        sidecar = {"doc_id": doc_id, "source": name, **({"override": override} if override else {})}
        target = self._write(doc_id, text, sidecar)
        return Added(doc_id=doc_id, file=target.name, source=name, chars=len(text))

    def files(self, indexed_documents) -> list[LibraryFile]:
        """The document files of the folder; `indexed_documents` are the live index's document records."""
        indexed = {d.get("doc_id"): d for d in indexed_documents}
        out = []
        for path, side in self._entries():
            doc_id = str(side.get("doc_id") or path.stem)
            out.append(LibraryFile(
                doc_id=doc_id,
                file=path.name,
                source=str(side.get("source") or path.name),
                title=str(side.get("title") or indexed.get(doc_id, {}).get("title") or ""),
                bytes=path.stat().st_size,
                indexed=doc_id in indexed,
            ))
        return out

    def remove(self, doc_id: str) -> None:
        """Delete a document's file and sidecar (UnknownDocumentError when the folder has no such doc_id)."""
        for path, side in self._entries():
            if str(side.get("doc_id") or path.stem) == doc_id:
                path.unlink(missing_ok=True)
                _sidecar_of(path).unlink(missing_ok=True)
                return
        raise UnknownDocumentError(f"unknown document: {doc_id}")

    def add_many(self, files) -> list[tuple[str, "Added | Exception"]]:
        """Add several (name, stream) files, each on its own: (name, Added) or (name, the named error that refused it)."""
        from assistant.schema import AssistantError

        out = []
        for name, stream in files:
            try:
                out.append((name, self.add(name, stream)))
            except AssistantError as exc:  # one refused file does not stop the others; each is reported
                out.append((name, exc))
        return out

    def set_validity(self, doc_id: str, valid_until: str = "", basis: str = "") -> dict:
        """Override a document's term in its sidecar (an empty date clears the override); returns the override.
        It shows in answers after the next re-index. UnknownDocumentError, QueryError for a bad date."""
        override = validity_override(valid_until, basis)
        for path, side in self._entries():
            if str(side.get("doc_id") or path.stem) == doc_id:
                side = {k: v for k, v in side.items() if k != "override"}
                if override:
                    side["override"] = override
                target, tmp = _sidecar_of(path), path.with_name(f".{path.stem}.meta.json.tmp")
                tmp.write_text(json.dumps(side, ensure_ascii=False, indent=2), encoding="utf-8")
                tmp.replace(target)
                return override
        raise UnknownDocumentError(f"unknown document: {doc_id}")

    def overrides(self) -> dict[str, dict]:
        """Each document's validity override from its sidecar, by doc_id (only those that have one)."""
        return {str(side.get("doc_id") or path.stem): side["override"] for path, side in self._entries()
                if isinstance(side.get("override"), dict)}

    def _checked_name(self, name: str | None) -> str:
        from assistant.ingest import SUFFIXES

        name = (name or "").strip()
        if not name or _UNSAFE_NAME.search(name):
            raise UnsafeNameError(f"unsafe file name {name!r}: send a plain name such as policy.docx")
        suffix = Path(name).suffix.lower()
        if suffix not in SUFFIXES:
            raise UnsupportedFileError(f"unsupported file type {suffix or '(none)'}; expected {', '.join(SUFFIXES)}")
        return name

    def _write(self, stem: str, text: str, sidecar: dict) -> Path:
        # Both files go to hidden temporaries first, the sidecar is renamed in before the text: a
        # build never sees a text without its sidecar, nor half a file.
        self.folder.mkdir(parents=True, exist_ok=True)
        target, side = self.folder / f"{stem}.txt", self.folder / f"{stem}.meta.json"
        tmp_txt, tmp_side = self.folder / f".{stem}.txt.tmp", self.folder / f".{stem}.meta.json.tmp"
        tmp_txt.write_text(text, encoding="utf-8")
        tmp_side.write_text(json.dumps(sidecar, ensure_ascii=False, indent=2), encoding="utf-8")
        tmp_side.replace(side)
        tmp_txt.replace(target)
        return target

    def _entries(self) -> list[tuple[Path, dict]]:
        from assistant.corpus import corpus_files

        return [(p, _read_sidecar(p)) for p in corpus_files(self.folder)]


def validity_override(valid_until: str, basis: str) -> dict:
    """The sidecar override for an upload's term (empty when none given); a bad date is a QueryError."""
    valid_until = (valid_until or "").strip()
    if not valid_until:
        return {}
    try:
        dt.date.fromisoformat(valid_until)
    except ValueError as exc:
        raise QueryError(f"valid_until: not an ISO date (YYYY-MM-DD): {valid_until!r}") from exc
    return {"valid_until": valid_until, "validity_basis": basis.strip() or "上传时标注的有效期"}


def _sidecar_of(path: Path) -> Path:
    return path.with_name(path.stem + ".meta.json")


def _read_sidecar(path: Path) -> dict:
    # The listing shows what it can: a broken sidecar (the build reports it) reads as none here.
    from assistant.corpus import load_sidecar

    try:
        return load_sidecar(path)
    except CorpusError:
        return {}


# ---------------------------------------------------------------- the live index's view


def catalog(files: list[LibraryFile], index, overrides: dict[str, dict], today=None) -> list[dict]:
    """The console's document list: each file with its indexed record (region, issued, validity, clauses,
    duplicates) and state — "indexed", "pending" (not yet re-indexed) or "duplicate" (dropped as a copy of another)."""
    from assistant.validity import of_record

    records = {d.get("doc_id"): d for d in index.documents}
    copy_of = {dup: d.get("doc_id") for d in index.documents for dup in d.get("duplicates") or ()}
    out = []
    for f in files:
        record = records.get(f.doc_id)
        state = "indexed" if record else ("duplicate" if f.doc_id in copy_of else "pending")
        out.append({
            **asdict(f), "state": state, "duplicate_of": copy_of.get(f.doc_id),
            "region": (record or {}).get("region", ""), "issued": (record or {}).get("issued"),
            "clause_count": int((record or {}).get("clause_count") or 0),
            "duplicates": list((record or {}).get("duplicates") or ()),
            "validity": of_record(record, today).to_dict() if record else None,
            "override": overrides.get(f.doc_id),
        })
    return out


def document_view(index, doc_id: str) -> tuple[dict, list]:
    """A document's record and its clauses in order (UnknownDocumentError when not indexed)."""
    record = _record_of(index, doc_id)
    if record is None:
        raise UnknownDocumentError(f"unknown document: {doc_id}")
    return record, sorted((c for c in index.clauses if c.doc_id == doc_id), key=lambda c: c.ordinal)


def clause_view(index, clause_id: str) -> tuple:
    """A clause and its document's record (None when the record is missing); UnknownClauseError."""
    clause = index.get(clause_id)
    if clause is None:
        raise UnknownClauseError(f"unknown clause: {clause_id}")
    return clause, _record_of(index, clause.doc_id)


def _record_of(index, doc_id: str) -> dict | None:
    return next((d for d in index.documents if d.get("doc_id") == doc_id), None)


# ---------------------------------------------------------------- re-index


class Reindexer:
    """One background re-index at a time; the old index keeps answering until the swap."""

    def __init__(self, settings, assistant):
        self.settings = settings
        self.assistant = assistant
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()  # set at shutdown: the build stops between documents or batches
        self.status = {"state": "idle", "started_at": None, "finished_at": None, "error": None, "stats": None}

    def start(self) -> bool:
        """Start a re-index unless one is running; False when one already is."""
        with self._lock:
            if self.status["state"] == "running" or self._stop.is_set():
                return False
            self.status = {"state": "running", "started_at": time.time(), "finished_at": None, "error": None, "stats": None,
                           "progress": {"stage": "starting"}}
            self._thread = threading.Thread(target=self._run, name="reindex", daemon=True)
            self._thread.start()
            return True

    def begin(self) -> dict:
        """Start a re-index and return its status; ReindexRunningError while one runs."""
        if not self.start():
            raise ReindexRunningError("a re-index is already running")
        return self.snapshot()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the running re-index (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask a running re-index to stop and wait up to `timeout` s for it. It is a daemon thread: one
        still inside a long embedding batch after that does not keep the process alive."""
        self._stop.set()
        self.join(timeout)

    def _run(self) -> None:
        from assistant import index as index_mod
        from assistant.backends import target_of

        s = self.settings
        try:
            target = self.assistant.target or target_of(s)
            reason, stats, errors = index_mod.build_from_settings(
                s, embedder=self.assistant.embedder, target=target, force=True, stop=self._stop, **self._hooks()
            )
            self.assistant.swap_index(target.load())
            result = asdict(stats) if stats is not None else {}
            result["skipped"] = [str(e) for e in errors]
            result["reason"] = reason
            with self._lock:
                self.status.update(state="done", finished_at=time.time(), stats=result, progress={"stage": "done"})
        except Exception as exc:  # a failed build keeps the old index; the reason is shown to the admin
            with self._lock:
                self.status.update(state="failed", finished_at=time.time(), error=f"{exc.__class__.__name__}: {exc}")

    def _hooks(self) -> dict:
        """The build's progress callbacks: they keep status["progress"] (stage, counts, seconds left) current."""
        began = {}

        def at(stage: str, done: int | None = None, total: int | None = None, **counts) -> None:
            now = time.time()
            began.setdefault(stage, (now, done or 0))
            t0, d0 = began[stage]
            left = None
            if done and total and done > d0 and now > t0:
                left = round((total - done) * (now - t0) / (done - d0), 1)
            with self._lock:
                progress = dict(self.status.get("progress") or {})
                progress.update(stage=stage, seconds_left=left, **counts)
                self.status["progress"] = progress

        return {
            "started": lambda reason: at("loading", reason=reason),
            "chunk_progress": lambda d, t: at("chunking", d, t, documents_done=d, documents_total=t),
            "progress": lambda d, t: at("embedding" if d < t else "writing", d, t, clauses_done=d, clauses_total=t),
        }

    def snapshot(self) -> dict:
        """The current status record."""
        with self._lock:
            return dict(self.status)
