"""Corpus stage: decoding, boilerplate removal, metadata, per-file errors."""

from __future__ import annotations

import pytest

from assistant.corpus import clean, corpus_hash, extract_metadata, load_corpus, load_file
from assistant.ingest import read_text
from assistant.schema import CorpusError

BOILERPLATE = ["首 页 区县招商", "精确检索", "开始检索", "加盟电话", "来源:", "【政府扶持政策】相关法规", "2024-11-12", "2022-02-24"]


def test_seeds_load_with_metadata(seed_docs):
    by_id = {d.doc_id: d for d in seed_docs}
    assert set(by_id) == {"jizhou-2018", "baodi-2019", "lutai-zjtx", "xiqing-2017", "tianjin-2022"}
    assert by_id["xiqing-2017"].doc_number == "西青政发〔2017〕7号"
    assert by_id["xiqing-2017"].date == "2017-05-22"
    assert by_id["tianjin-2022"].doc_number == "津中小企组〔2022〕2号"
    assert by_id["tianjin-2022"].level == "市"
    assert by_id["jizhou-2018"].title == "2018年蓟州区新一轮中小企业创新转型行动计划"
    assert by_id["jizhou-2018"].region == "天津市蓟州区"
    assert by_id["baodi-2019"].date == "2019-05-20"
    assert by_id["lutai-zjtx"].title_inferred and by_id["lutai-zjtx"].level == "开发区"


def test_metadata_comes_from_text_without_sidecar(tmp_path):
    src = (load_file.__globals__["Path"])(__file__).resolve().parent.parent / "corpus" / "003_bfbcccc9aab06e22.txt"
    meta = extract_metadata(clean(read_text(src)))
    assert meta["doc_number"] == "西青政发〔2017〕7号"
    assert meta["title"] == "西青区工业企业创新驱动发展实施方案"
    assert meta["region"] == "天津市西青区"


@pytest.mark.parametrize("needle", BOILERPLATE)
def test_boilerplate_removed(seed_docs, needle):
    for doc in seed_docs:
        assert needle not in doc.text, f"{needle!r} left in {doc.doc_id}"


def test_text_stays_faithful(seed_docs):
    xiqing = next(d for d in seed_docs if d.doc_id == "xiqing-2017")
    # cited text keeps the source's spacing; normalisation happens only for indexing
    assert "到 2020 年底" in xiqing.text


def test_gb18030_detected(tmp_path):
    p = tmp_path / "gbk.txt"
    p.write_bytes("一、总则\n对首次获批的国家高新技术企业给予奖励。".encode("gb18030"))
    assert "国家高新技术企业" in read_text(p)


def test_bad_files_named_and_others_still_load(tmp_path):
    (tmp_path / "good.txt").write_text("一、目标\n2018年，47家中小企业实现创新转型。", encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02garbage" * 10)
    (tmp_path / "notes.xyz").write_text("x", encoding="utf-8")
    docs, errors = load_corpus(tmp_path)
    assert [d.doc_id for d in docs] == ["good"]
    messages = " | ".join(str(e) for e in errors)
    assert "empty.txt" in messages and "empty" in messages
    assert "binary.txt" in messages
    assert "notes.xyz" in messages and "unsupported" in messages


def test_invalid_encoding_is_clear(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(bytes(range(0x80, 0x100)) * 20)
    with pytest.raises(CorpusError, match="bad.txt"):
        read_text(p)


def test_invalid_sidecar_is_clear(tmp_path):
    (tmp_path / "a.txt").write_text("一、目标\n正文。", encoding="utf-8")
    (tmp_path / "a.meta.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CorpusError, match="a.meta.json"):
        load_file(tmp_path / "a.txt")


def test_corpus_hash_changes_with_content(tmp_path):
    (tmp_path / "a.txt").write_text("一、目标\n正文。", encoding="utf-8")
    h1 = corpus_hash(tmp_path)
    (tmp_path / "a.txt").write_text("一、目标\n正文有变。", encoding="utf-8")
    assert corpus_hash(tmp_path) != h1
