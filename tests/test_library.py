"""The library service without the web edge: refusals are named errors and write nothing; an added
document comes with its sidecar; listing joins the folder with the live index; removal is exact."""

from __future__ import annotations

import io
import json

import pytest

from assistant.library import Library, clause_view, document_view
from assistant.schema import (
    CorpusError,
    FileTooLargeError,
    QueryError,
    UnknownClauseError,
    UnknownDocumentError,
    UnsafeNameError,
    UnsupportedFileError,
)

TEXT = "某区关于支持企业发展的若干措施\n一、对新认定的企业给予二十万元奖励。\n".encode("utf-8")


@pytest.fixture
def library(tmp_path):
    return Library(tmp_path / "corpus", max_upload_bytes=1000, chunk_max_chars=600, document_timeout_s=10)


@pytest.mark.parametrize(
    "name, data, error",
    [
        ("../up.txt", TEXT, UnsafeNameError),
        (".hidden.txt", TEXT, UnsafeNameError),
        ("", TEXT, UnsafeNameError),
        ("notes.xyz", TEXT, UnsupportedFileError),
        ("big.txt", b"x" * 1001, FileTooLargeError),
        ("empty.txt", b"   ", CorpusError),
    ],
)
def test_a_refused_file_writes_nothing(library, name, data, error):
    with pytest.raises(error):
        library.add(name, io.BytesIO(data))
    assert not library.folder.exists() or not any(library.folder.iterdir())


def test_a_bad_validity_date_is_a_query_error_and_writes_nothing(library):
    with pytest.raises(QueryError, match="valid_until"):
        library.add("措施.txt", io.BytesIO(TEXT), valid_until="2025-13-01")
    assert not library.folder.exists() or not any(library.folder.iterdir())


def test_added_document_has_its_sidecar_listed_and_removed(library):
    added = library.add("措施.txt", io.BytesIO(TEXT), valid_until="2026-12-31", validity_basis="文件规定")
    assert added.file == f"{added.doc_id}.txt" and added.source == "措施.txt" and added.chars == len(TEXT.decode())
    side = json.loads((library.folder / f"{added.doc_id}.meta.json").read_text(encoding="utf-8"))
    assert side == {"doc_id": added.doc_id, "source": "措施.txt",
                    "override": {"valid_until": "2026-12-31", "validity_basis": "文件规定"}}
    assert sorted(p.name for p in library.folder.iterdir()) == sorted([f"{added.doc_id}.txt", f"{added.doc_id}.meta.json"])

    [listed] = library.files([{"doc_id": added.doc_id, "title": "索引中的标题"}])
    assert (listed.doc_id, listed.source, listed.title, listed.indexed) == (added.doc_id, "措施.txt", "索引中的标题", True)
    assert not library.files([])[0].indexed

    with pytest.raises(UnknownDocumentError):
        library.remove("upload-nothere")
    library.remove(added.doc_id)
    assert not any(library.folder.iterdir())


def test_a_broken_sidecar_does_not_break_the_listing(library):
    library.folder.mkdir(parents=True)
    (library.folder / "a.txt").write_text("正文", encoding="utf-8")
    (library.folder / "a.meta.json").write_text("{not json", encoding="utf-8")
    [listed] = library.files([])
    assert (listed.doc_id, listed.source, listed.indexed) == ("a", "a.txt", False)


def test_document_and_clause_views(hash_index):
    record = hash_index.documents[0]
    doc_record, clauses = document_view(hash_index, record["doc_id"])
    assert doc_record is record and clauses
    assert [c.ordinal for c in clauses] == sorted(c.ordinal for c in clauses)
    clause, of_doc = clause_view(hash_index, clauses[0].clause_id)
    assert clause == clauses[0] and of_doc is record
    with pytest.raises(UnknownDocumentError):
        document_view(hash_index, "no-such-doc")
    with pytest.raises(UnknownClauseError):
        clause_view(hash_index, "no-such-doc#1")
