"""Calibration: the grid run is deterministic, its refusal shortcut agrees with compose, and the
service reads the values per embedding model."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from assistant.calibration import DEFAULT, Thresholds, for_model, thresholds_for
from assistant.evaluate import calibrate as cal
from test_evaluate import TINY_DOC  # the nine-clause document the evaluation tests use


QUESTIONS = [
    {"id": "t-001", "question": "首次认定的国家高新技术企业奖励多少？", "gold_quotes": ["对首次认定的国家高新技术企业给予30万元奖励"], "facts": ["30万元"], "refuse": False},
    {"id": "t-002", "question": "在上海证券交易所上市补助多少？", "gold_quotes": ["对在上海证券交易所上市的企业给予500万元补助"], "facts": ["500万元"], "refuse": False},
    {"id": "t-003", "question": "今天天气怎么样？", "gold_quotes": [], "facts": [], "refuse": True},
    {"id": "t-004", "question": "领导小组办公室设在哪里？", "gold_quotes": ["领导小组办公室设在区工信委"], "facts": ["区工信委"], "refuse": False},
]
SPANS = [
    {"id": "s-001", "question": "新三板挂牌的企业有什么补助？", "answer": "给予150万元补助"},
    {"id": "s-002", "question": "重新认定的高新技术企业奖励多少？", "answer": "给予10万元奖励"},
]


@pytest.fixture
def two_sets(tmp_path, monkeypatch):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(json.dumps({"doc_id": "tiny", "title": "支持企业创新的若干措施", "text": TINY_DOC}, ensure_ascii=False) + "\n", encoding="utf-8")
    seed = tmp_path / "seed.jsonl"
    seed.write_text("".join(json.dumps({**q, "relevant": [], "tags": []}, ensure_ascii=False) + "\n" for q in QUESTIONS), encoding="utf-8")
    outside = tmp_path / "outside.jsonl"
    outside.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in SPANS), encoding="utf-8")
    # a small grid keeps the test fast; the method is the same
    monkeypatch.setattr(cal, "RANKING_GRID", {"dense_weight": (0.5, 1.0), "rerank_clause": (0.0, 0.02), "rerank_sentence": (0.02,)})
    monkeypatch.setattr(cal, "ANSWER_GRID", {"min_coverage": (0.1, 0.15, 0.3), "weak_coverage": (0.6,), "min_dense": (0.0, 0.76, 0.99),
                                             "min_quote_coverage": (0.0, 0.1), "focus_weight": (1.0, 2.0)})
    from assistant.config import Settings

    settings = Settings(embedder="hash", hash_dim=256, data_dir=tmp_path / "data", index_dir=tmp_path / "index")
    return settings, [(corpus, seed), (corpus, outside)], tmp_path


def test_a_rerun_reproduces_the_table_and_the_values(two_sets):
    settings, sets, tmp = two_sets
    first = cal.run(settings, sets, folds=2, cache_root=tmp / "cache", progress=False)
    second = cal.run(settings, sets, folds=2, cache_root=tmp / "cache", progress=False)
    assert cal.markdown(first) == cal.markdown(second)
    cal.write(first, tmp / "calibration.md", tmp / "calibration.json")
    cal.write(second, tmp / "calibration.md", tmp / "calibration.json")
    data = json.loads((tmp / "calibration.json").read_text(encoding="utf-8"))
    assert list(data["models"]) == [first["model"]] and data["models"][first["model"]]["values"] == first["chosen"]
    chosen = first["chosen"]
    for name, grid in {**cal.RANKING_GRID, **cal.ANSWER_GRID}.items():
        assert chosen[name] in grid, name
    # every question of this tiny library is answerable by the values chosen, and the weather is refused
    assert first["in_sample"]["seed_all_facts"] == 1.0 and first["in_sample"]["refusal_recall"] == 1.0
    assert first["in_sample"]["outside_contains"] == 1.0
    page = (tmp / "calibration.md").read_text(encoding="utf-8")
    assert "fold 0 held out" in page and "fold 1 held out" in page and "| at defaults |" in page


def test_the_refusal_shortcut_agrees_with_compose(two_sets):
    # The grid decides refusal from each item's evidence instead of composing again: for every item
    # and every threshold point, that decision must be compose's own.
    from assistant.answer import assess, compose
    from assistant.embed import embedder_for
    from assistant.pipeline import Assistant

    settings, sets, tmp = two_sets
    embedder = embedder_for(settings)
    index, items = cal.load_set(*sets[0], settings, embedder, tmp / "cache")
    assistant = Assistant(settings, index=index, embedder=embedder)
    questions = [it.query for it in items] + ["区工信委负责什么？", "高新技术企业", "随便问问"]
    checked = 0
    for question in questions:
        query, hits, pool = assistant.evidence(question)
        for t in cal._grid(cal.ANSWER_GRID):
            t = replace(DEFAULT, **t)
            loose = replace(t, weak_coverage=0.0, min_dense=0.0, min_quote_coverage=0.0)
            kw = dict(regions=assistant.regions(), documents=index.documents, idf=index.idf(), pool=pool, today=assistant.today())
            first = compose(query, hits, thresholds=loose, **kw)
            ev = assess(query, hits, regions=assistant.regions(), documents=index.documents, idf=index.idf(), min_coverage=t.min_coverage,
                        focus_weight=t.focus_weight)
            assert compose(query, hits, thresholds=t, **kw).refused == (first.refused or ev.refuses(t)), (question, t)
            checked += 1
    assert checked == len(questions) * len(cal._grid(cal.ANSWER_GRID))


def test_folds_are_stable_and_spread():
    assert cal.fold_of("jz-001") == cal.fold_of("jz-001")
    folds = {cal.fold_of(f"x-{i:03d}") for i in range(100)}
    assert folds == set(range(cal.FOLDS))


def test_the_service_reads_thresholds_per_model(monkeypatch):
    from assistant import calibration

    monkeypatch.setattr(calibration, "table", lambda: {"some-model": {"values": {"min_dense": 0.5, "dense_weight": 0.7}}})
    values, calibrated = for_model("some-model")
    assert calibrated and values.min_dense == 0.5 and values.dense_weight == 0.7 and values.min_coverage == DEFAULT.min_coverage
    assert for_model("another-model") == (DEFAULT, False)

    class Explicit:
        dense_weight = 1.0
        rerank_clause = None
        rerank_sentence = None

    # a ranking weight set in the settings wins over the calibrated one; unset ones do not
    assert thresholds_for("some-model", Explicit()) == Thresholds(**{**values.to_dict(), "dense_weight": 1.0})


def test_the_committed_calibration_names_the_default_model():
    from assistant.config import Settings
    from assistant.embed import DEFAULT_MODEL, INT8_SUFFIX

    assert Settings().embed_backend == "onnx-int8" and Settings().model == DEFAULT_MODEL
    name = DEFAULT_MODEL + INT8_SUFFIX
    values, calibrated = for_model(name)
    assert calibrated, f"no calibration for the default model {name}: run `python -m assistant calibrate`"
