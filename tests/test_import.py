"""Bulk import (`assistant import`) and incremental builds: unchanged documents are never re-chunked
or re-embedded; the build says in plain words what it found and did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.corpus import import_documents
from assistant.embed import HashEmbedder
from assistant.backends.local import PolicyIndex
from assistant.index import build_corpus


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def records(seed_docs):
    return [{"doc_id": f"pol-{i}", "title": f"导入标题{i}", "text": d.text} for i, d in enumerate(seed_docs)]


@pytest.fixture
def counting_chunker(monkeypatch):
    """guard.document_clauses wrapped to record which documents are chunked (in-process builds)."""
    from assistant import guard

    chunked: list[str] = []
    real = guard.document_clauses

    def counting(doc, chunk_max_chars=600):
        chunked.append(doc.doc_id)
        return real(doc, chunk_max_chars)

    monkeypatch.setattr(guard, "document_clauses", counting)
    return chunked


def test_import_jsonl_then_reimport_rechunks_and_reembeds_only_the_changed_document(tmp_path, records, counting_chunker):
    corpus, index_dir, emb = tmp_path / "corpus", tmp_path / "index", HashEmbedder(256)
    counts, errors = import_documents(_write_jsonl(tmp_path / "docs.jsonl", records), corpus)
    assert counts == {"added": 5, "changed": 0, "unchanged": 0} and not errors
    side = json.loads((corpus / "pol-0.meta.json").read_text(encoding="utf-8"))
    assert side == {"doc_id": "pol-0", "source": "docs.jsonl", "title": "导入标题0"}
    assert (corpus / "pol-0.txt").read_text(encoding="utf-8") == records[0]["text"]

    reason, first, _ = build_corpus(corpus, index_dir, emb)
    assert reason == "missing" and first.chunked == 5 and first.reused == 0 and first.embedded == first.clauses
    assert sorted(counting_chunker) == [f"pol-{i}" for i in range(5)]
    before = PolicyIndex.load(index_dir)

    records[2]["text"] += "\n（九）对新认定的企业给予二十万元奖励。"
    counting_chunker.clear()
    counts, errors = import_documents(_write_jsonl(tmp_path / "docs.jsonl", records), corpus)
    assert counts == {"added": 0, "changed": 1, "unchanged": 4} and not errors

    reason, second, _ = build_corpus(corpus, index_dir, emb)
    assert reason == "corpus changed"
    assert counting_chunker == ["pol-2"]  # only the changed document was chunked
    assert second.chunked == 1 and second.reused == 4
    assert second.changes == {"added": 0, "changed": 1, "removed": 0}
    after = PolicyIndex.load(index_dir)
    new_hashes = set(after.hashes) - set(before.hashes)
    embedded_docs = {c.doc_id for c, h in zip(after.clauses, after.hashes) if h in new_hashes}
    assert second.embedded == len(new_hashes) >= 1 and embedded_docs == {"pol-2"}  # no other clause re-embedded
    assert any("二十万元" in c.text for c in after.clauses if c.doc_id == "pol-2")
    # reused clauses are the same records as before
    old = {c.clause_id: c for c in before.clauses if c.doc_id != "pol-2"}
    assert all(old[c.clause_id] == c for c in after.clauses if c.doc_id != "pol-2")

    # the same import again changes nothing and builds nothing
    counts, _ = import_documents(_write_jsonl(tmp_path / "docs.jsonl", records), corpus)
    assert counts == {"added": 0, "changed": 0, "unchanged": 5}
    assert build_corpus(corpus, index_dir, emb)[0] is None


def test_a_changed_pipeline_rechunks_everything(tmp_path, records, counting_chunker, monkeypatch):
    from assistant import index as index_mod

    corpus, index_dir, emb = tmp_path / "corpus", tmp_path / "index", HashEmbedder(256)
    import_documents(_write_jsonl(tmp_path / "docs.jsonl", records), corpus)
    build_corpus(corpus, index_dir, emb)
    counting_chunker.clear()
    monkeypatch.setattr(index_mod, "pipeline_hash", lambda: "another-chunker")
    reason, stats, _ = build_corpus(corpus, index_dir, emb)
    assert reason == "chunking or tokenizer code changed" and stats.chunked == 5 and len(counting_chunker) == 5
    assert stats.embedded == 0  # same clause texts: every vector still comes from the previous index


def test_import_folder_reports_bad_files_and_keeps_the_rest(tmp_path, seed_docs):
    src = tmp_path / "incoming"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text(seed_docs[0].text, encoding="gb18030")
    (src / "a.meta.json").write_text(json.dumps({"title": "甲政策"}, ensure_ascii=False), encoding="utf-8")
    (src / "sub" / "b.html").write_text(f"<html><body><article><h1>乙政策</h1><p>{seed_docs[1].text[:2000]}</p></article></body></html>", encoding="utf-8")
    (src / "empty.txt").write_bytes(b"")
    (src / "notes.xyz").write_text("?", encoding="utf-8")
    corpus = tmp_path / "corpus"
    counts, errors = import_documents(src, corpus)
    assert counts["added"] == 2
    messages = sorted(str(e) for e in errors)
    assert len(messages) == 2 and "empty.txt" in messages[0] and "notes.xyz" in messages[1]
    assert (corpus / "a.txt").read_text(encoding="utf-8") == seed_docs[0].text  # GB18030 in, UTF-8 out
    assert json.loads((corpus / "a.meta.json").read_text(encoding="utf-8"))["title"] == "甲政策"
    assert "乙政策" in (corpus / "b.txt").read_text(encoding="utf-8")


def test_import_jsonl_names_bad_lines(tmp_path, records):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps(records[0], ensure_ascii=False) + "\n{not json\n" + json.dumps({"doc_id": "x"}) + "\n"
        + json.dumps({"doc_id": "../../etc/evil", "text": records[1]["text"]}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    corpus = tmp_path / "corpus"
    counts, errors = import_documents(path, corpus)
    assert counts["added"] == 2
    assert [str(e).split(":")[0] + ":" + str(e).split(":")[1] for e in errors] == ["bad.jsonl:2", "bad.jsonl:3"]
    assert all(p.parent == corpus for p in corpus.iterdir())  # an unsafe doc_id never leaves the folder
    evil = json.loads(next(corpus.glob("*evil.meta.json")).read_text(encoding="utf-8"))
    assert evil["doc_id"] == "../../etc/evil"


def test_cli_import_then_build_speaks_plainly(tmp_path, records, capsys):
    jsonl = _write_jsonl(tmp_path / "docs.jsonl", records)
    args = ["--corpus-dir", str(tmp_path / "corpus"), "--index-dir", str(tmp_path / "index"), "--embedder", "hash"]
    assert main(["import", str(jsonl), *args]) == 0
    out, err = capsys.readouterr()
    assert "imported into" in out and "5 added" in out
    assert "index rebuilt: 5 documents" in out and "no index yet" in out

    assert main(["build", "--if-stale", *args]) == 0
    out, err = capsys.readouterr()
    clauses = PolicyIndex.load(tmp_path / "index").manifest["counts"]["clauses"]
    assert out.strip() == f"index is up to date: 5 documents, {clauses} clauses ({tmp_path / 'index'})"
    assert "embedding" not in err and "chunking" not in err  # no empty progress bars

    records[0]["text"] += "\n对新认定的企业给予二十万元奖励。"
    new_policy = "某区关于支持无人机产业发展的若干措施\n一、对新落户的无人机整机制造企业给予八十万元奖励。\n二、对首台套产品给予五十万元补助。\n"
    records.append({"doc_id": "pol-new", "title": "新政策", "text": new_policy})
    _write_jsonl(jsonl, records)
    assert main(["import", str(jsonl), *args]) == 0
    out, err = capsys.readouterr()
    assert "1 added, 1 changed, 4 unchanged" in out
    assert "corpus changed (1 document added, 1 changed)" in out
    assert "chunked 2 documents, reused 4 unchanged" in out

    # a forced build of a current index says so, and redoes nothing
    assert main(["build", *args]) == 0
    out, _ = capsys.readouterr()
    assert "rebuild requested" in out and "chunked 0 documents, reused 6 unchanged; embedded 0 clauses" in out


def test_forced_build_of_a_stale_index_names_the_real_reason(tmp_path, records):
    corpus, index_dir, emb = tmp_path / "corpus", tmp_path / "index", HashEmbedder(256)
    import_documents(_write_jsonl(tmp_path / "docs.jsonl", records[:2]), corpus)
    assert build_corpus(corpus, index_dir, emb, force=True)[0] == "missing"
    import_documents(_write_jsonl(tmp_path / "docs.jsonl", records[:3]), corpus)
    assert build_corpus(corpus, index_dir, emb, force=True)[0] == "corpus changed"
