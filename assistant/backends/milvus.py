"""Milvus index backend: one collection per index generation, reached through an alias.

Each clause is one row: its row number (primary key), clause id, document id, region, department
and document date (scalar fields filters run on), the text for BM25 (analysed by Milvus with the
jieba tokenizer and the project's domain dictionary; a Milvus function turns it into the sparse
field), the dense vector, the text hash, and the clause record (path, facts) as JSON. The documents,
the manifest and the token document frequencies (for the answer stage's idf) sit beside it in a
`<generation>_meta` collection, so a service needs nothing but the URI.

A build writes a new generation, points the alias at it (`alter_alias`, atomic for every client)
and drops the old generation. A process still holding the old one gets IndexSwappedError on its
next search and reloads (pipeline.Assistant does this), so several replicas follow a re-index.

The URI is a file path ending in .db (milvus-lite, embedded, the same client API) or
http://host:19530 (a Milvus standalone or cluster, with an optional token). pymilvus is imported
here only, lazily.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import numpy as np

from assistant.backends import Idf, StoredClauses, current_doc_ids, idf_from_df, weight_ratio
from assistant.manifest import readable
from assistant.schema import BackendError, Clause, Filters, IndexMissingError, IndexSwappedError

_VARCHAR_MAX = 65_535  # bytes, Milvus' limit for one VARCHAR value
_BLOB_CHARS = 16_000  # characters per meta row: at most 3 bytes each in UTF-8, under the limit
_PAGE = 2_000  # rows per read when loading clause records
_META_DIM = 2  # Milvus wants a vector field in every collection; the meta rows carry a dummy one
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def _pymilvus():
    import logging

    import pymilvus

    # pymilvus logs every failed call with a traceback; each is raised here as a named error with
    # its message (a swapped generation is routine during a re-index), so its own log stays quiet
    logging.getLogger("pymilvus.decorators").setLevel(logging.CRITICAL)
    return pymilvus


def lexical_text(text: str) -> str:
    """The form of a text Milvus analyses for BM25, the same for clauses and questions: normalised,
    abbreviations expanded (高企 → 高新技术企业), lower case, punctuation turned into spaces (the
    jieba tokenizer would otherwise index every 、and ，)."""
    from assistant.text import expand_aliases, normalize

    return _NON_WORD.sub(" ", expand_aliases(normalize(text)).lower()).strip()


def analyzer_params() -> dict:
    """Milvus' jieba analyzer with the project's domain dictionary and stop words."""
    from assistant.text import STOPWORDS
    from assistant.vocab import read_lines

    words = [line.split()[0] for line in read_lines("userdict.txt") if line.split()]
    return {
        "tokenizer": {"type": "jieba", "dict": ["_default_", *words], "mode": "exact"},
        "filter": ["lowercase", {"type": "stop", "stop_words": sorted(STOPWORDS)}],
    }


def _quote(value: str) -> str:
    # a value inside a Milvus expression string: no quotes, backslashes or LIKE wildcards
    return re.sub(r'["\\%_]', "", str(value)).strip()


def expression(filters: Filters | None, documents: list[dict]) -> str:
    """The Milvus filter expression for Filters ("" when none is set)."""
    if filters is None or not filters.active():
        return ""
    parts = []
    if filters.region:
        region = f'region like "%{_quote(filters.region)}%"'
        parts.append(f'({region} or region == "")' if filters.unknown_region else region)
    if filters.doc_id:
        parts.append(f'doc_id == "{_quote(filters.doc_id)}"')
    if filters.department:
        parts.append(f'department like "%{_quote(filters.department)}%"')
    if filters.current_on is not None:
        current = sorted(i for i in current_doc_ids(documents, filters.current_on) if i)
        parts.append(f"doc_id in {json.dumps([_quote(i) for i in current], ensure_ascii=False)}")
    return " and ".join(parts)




def _translated(exc: Exception, generation: str, doing: str) -> Exception:
    """A client error as a named one: the generation gone (a re-index dropped it) or the backend failing."""
    if isinstance(exc, (BackendError, IndexMissingError)):
        return exc
    text = str(exc).lower()
    if "not found" in text or "not exist" in text or "doesn't exist" in text or "can't find" in text:
        return IndexSwappedError(f"index generation {generation} was replaced")
    return BackendError(f"{doing} failed: {exc}")


def _pages(client, generation: str, n: int, fields: list[str]):
    """Every row of a generation with `fields`, read by primary-key range, in row order."""
    for start in range(0, n, _PAGE):
        rows = client.query(generation, filter=f"row >= {start} and row < {start + _PAGE}",
                            output_fields=["row", *fields], limit=_PAGE)
        yield from sorted(rows, key=lambda r: r["row"])


class MilvusTarget:
    """A Milvus (or milvus-lite) database and the alias an index is reached by."""

    kind = "milvus"

    def __init__(self, uri: str, token: str = "", alias: str = "policy_clauses", ann_threshold: int = 50_000):
        if not uri:
            raise BackendError("ASSISTANT_MILVUS_URI is empty: give a file path ending in .db or http://host:19530")
        if "://" not in uri and not uri.endswith(".db"):
            raise BackendError(f"ASSISTANT_MILVUS_URI {uri!r}: a milvus-lite file must end in .db (or give http://host:19530)")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,200}", alias):
            raise BackendError(f"Milvus collection name {alias!r}: letters, digits and _ only, not starting with a digit")
        self.uri = uri
        self.token = token
        self.alias = alias
        self.ann_threshold = ann_threshold
        self._client = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> "MilvusTarget":
        uri = settings.milvus_uri or str(Path(settings.index_dir).with_name(Path(settings.index_dir).name + ".milvus.db"))
        return cls(uri, settings.milvus_token, settings.milvus_collection, settings.ann_threshold)

    def describe(self) -> str:
        return f"Milvus {self.uri} (collection alias {self.alias})"

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                if "://" not in self.uri:
                    import logging

                    Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
                    # milvus-lite's in-process server logs an ERROR for every call it does not implement
                    # (AllocTimestamp, which the client only uses to wait for index creation)
                    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
                try:
                    self._client = _pymilvus().MilvusClient(uri=self.uri, token=self.token or "")
                except Exception as exc:  # the client raises several types for an unreachable server
                    raise BackendError(f"cannot connect to Milvus at {self.uri}: {exc}") from exc
            return self._client

    # -- generations -----------------------------------------------------------------------------
    def generation(self) -> str | None:
        """The collection the alias points at now, or None when there is no index yet."""
        try:
            if self.alias not in self.client.list_aliases().get("aliases", []):
                return None
            return self.client.describe_alias(self.alias).get("collection_name") or None
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"Milvus at {self.uri} did not answer: {exc}") from exc

    def _generations(self) -> list[str]:
        prefix = f"{self.alias}__g"
        return [c for c in self.client.list_collections() if c.startswith(prefix) and not c.endswith("_meta")]

    def loaded(self, gen: str) -> None:
        """Load a generation and its meta into memory for queries. Milvus keeps collections released
        after a restart (milvus-lite after every new process) until someone loads them."""
        for name in (gen, gen + "_meta"):
            state = str(self.client.get_load_state(name).get("state", ""))
            if not state.endswith("Loaded"):
                self.client.load_collection(name)

    def read_manifest(self) -> dict | None:
        gen = self.generation()
        if gen is None:
            return None
        try:
            self.loaded(gen)
            manifest = _read_blob(self.client, gen + "_meta", "manifest")
        except Exception:
            return None
        return readable(manifest)

    def load(self) -> "MilvusIndex":
        gen = self.generation()
        if gen is None:
            raise IndexMissingError(f"no index in {self.describe()} (run `python -m assistant build`)")
        return MilvusIndex.open(self, gen)

    def write(self, clauses, documents, vectors, hashes, manifest, stop=None, texts=None, **options) -> "MilvusIndex":
        """Write a new generation, point the alias at it, drop the old one. Until the alias moves,
        every search goes to the old generation, which is complete; a failed or stopped write drops
        its half-written collection and leaves the old one in place."""
        from assistant.guard import check_stop

        client = self.client
        clauses = list(clauses)
        documents = list(documents)
        dim = int(manifest.get("dim") or (vectors.shape[1] if len(vectors) else 0))
        gen = f"{self.alias}__g{time.strftime('%Y%m%d%H%M%S')}_{time.time_ns() % 1_000_000:06d}"
        kind = "hnsw" if len(clauses) > self.ann_threshold else "flat"
        manifest = {**manifest, "dense_index": kind, "backend": "milvus", "collection": gen}
        dates = {d.get("doc_id"): d.get("issued") or d.get("date") for d in documents}
        old = self.generation()
        try:
            self._create(gen, dim, kind, options)
            rows = []
            for i, c in enumerate(clauses):
                record = json.dumps(c.to_dict(), ensure_ascii=False)
                if len(record.encode("utf-8")) > _VARCHAR_MAX:
                    raise BackendError(f"clause {c.clause_id} is too long for one Milvus row ({len(record)} characters)")
                rows.append({
                    "row": i,
                    "clause_id": c.clause_id[:512],
                    "doc_id": c.doc_id[:512],
                    "region": c.region[:512],
                    "department": c.department[:512],
                    "date": str(dates.get(c.doc_id) or "")[:32],
                    "text": lexical_text(texts[i] if texts else c.index_text())[:20_000],
                    "vector": np.asarray(vectors[i], dtype=np.float32).tolist(),
                    "hash": hashes[i],
                    "record": record,
                })
                if len(rows) >= 500:
                    check_stop(stop)
                    client.insert(gen, rows)
                    rows = []
            if rows:
                client.insert(gen, rows)
            df = _document_frequencies(texts or [c.index_text() for c in clauses])
            _write_blobs(client, gen + "_meta", {"manifest": manifest, "documents": documents, "df": df})
            check_stop(stop)
            client.flush(gen)
            if old is None:
                client.create_alias(gen, self.alias)
            else:
                client.alter_alias(gen, self.alias)
        except BaseException:
            self._drop(gen)
            raise
        for stale in self._generations():
            if stale != gen:
                self._drop(stale)
        return MilvusIndex(self, gen, clauses, documents, manifest, list(hashes), df)

    def _create(self, gen: str, dim: int, kind: str, options: dict) -> None:
        pm = _pymilvus()
        DataType = pm.DataType
        client = self.client
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("row", DataType.INT64, is_primary=True)
        for name, length in (("clause_id", 512), ("doc_id", 512), ("region", 512), ("department", 512), ("date", 32), ("hash", 64)):
            schema.add_field(name, DataType.VARCHAR, max_length=length)
        schema.add_field("text", DataType.VARCHAR, max_length=_VARCHAR_MAX, enable_analyzer=True, analyzer_params=analyzer_params())
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("record", DataType.VARCHAR, max_length=_VARCHAR_MAX)
        schema.add_function(pm.Function(name="text_bm25", function_type=pm.FunctionType.BM25,
                                        input_field_names=["text"], output_field_names=["sparse"]))
        params = client.prepare_index_params()
        if kind == "hnsw":
            params.add_index("vector", index_type="HNSW", metric_type="IP",
                             params={"M": options.get("hnsw_m", 32), "efConstruction": 80})
        else:
            params.add_index("vector", index_type="FLAT", metric_type="IP")
        params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection(gen, schema=schema, index_params=params)

        meta = client.create_schema(auto_id=False, enable_dynamic_field=False)
        meta.add_field("id", DataType.INT64, is_primary=True)
        meta.add_field("kind", DataType.VARCHAR, max_length=32)
        meta.add_field("body", DataType.VARCHAR, max_length=_VARCHAR_MAX)
        meta.add_field("v", DataType.FLOAT_VECTOR, dim=_META_DIM)
        mparams = client.prepare_index_params()
        mparams.add_index("v", index_type="FLAT", metric_type="L2")
        client.create_collection(gen + "_meta", schema=meta, index_params=mparams)

    def _drop(self, gen: str) -> None:
        for name in (gen, gen + "_meta"):
            try:
                if self.client.has_collection(name):
                    self.client.drop_collection(name)
            except Exception:  # dropping is cleanup; a failure must not hide the real error
                pass


def _document_frequencies(texts: list[str]) -> dict[str, int]:
    # idf for the answer stage comes from the project's own tokenizer, as with the local backend
    from assistant.text import tokenize

    df: dict[str, int] = {}
    for text in texts:
        for token in set(tokenize(text)):
            df[token] = df.get(token, 0) + 1
    return df


def _write_blobs(client, collection: str, blobs: dict) -> None:
    rows, i = [], 0
    for kind, value in blobs.items():
        text = json.dumps(value, ensure_ascii=False)
        for s in range(0, max(len(text), 1), _BLOB_CHARS):
            rows.append({"id": i, "kind": kind, "body": text[s : s + _BLOB_CHARS], "v": [0.0] * _META_DIM})
            i += 1
    for s in range(0, len(rows), 200):
        client.insert(collection, rows[s : s + 200])
    client.flush(collection)


def _read_blob(client, collection: str, kind: str):
    rows = client.query(collection, filter=f'kind == "{kind}"', output_fields=["id", "body"], limit=16_000)
    if not rows:
        raise IndexMissingError(f"{collection} has no {kind}")
    return json.loads("".join(r["body"] for r in sorted(rows, key=lambda r: r["id"])))


class MilvusIndex(StoredClauses):
    """One generation of the index in Milvus; clause records are read once into memory (the answer
    stage reads paths and facts of many clauses per question), vectors and postings stay in Milvus."""

    backend = "milvus"

    def __init__(self, target: MilvusTarget, generation: str, clauses: list[Clause], documents: list[dict],
                 manifest: dict, hashes: list[str], df: dict[str, int]):
        super().__init__(clauses, documents, manifest, hashes)
        self.target = target
        self.generation = generation
        self._df = df

    @classmethod
    def open(cls, target: MilvusTarget, generation: str) -> "MilvusIndex":
        client = target.client
        try:
            target.loaded(generation)
            manifest = _read_blob(client, generation + "_meta", "manifest")
            documents = _read_blob(client, generation + "_meta", "documents")
            df = _read_blob(client, generation + "_meta", "df")
            n = int(manifest.get("counts", {}).get("clauses", 0))
            rows = list(_pages(client, generation, n, ["record", "hash"]))
        except Exception as exc:
            raise _translated(exc, generation, f"reading the index from {target.describe()}") from exc
        clauses = [Clause.from_dict(json.loads(r["record"])) for r in rows]
        hashes = [r["hash"] for r in rows]
        if len(clauses) != n:
            raise IndexMissingError(f"index in {target.describe()} is inconsistent ({len(clauses)} of {n} clauses); rebuild it")
        return cls(target, generation, clauses, documents, manifest, hashes, df)

    def count(self) -> int:
        """Rows in the collection, as Milvus counts them."""
        rows = self._call(lambda c: c.query(self.generation, filter="", output_fields=["count(*)"]))
        return int(rows[0]["count(*)"]) if rows else 0

    def _call(self, fn):
        try:
            return fn(self.target.client)
        except Exception as exc:
            raise _translated(exc, self.generation, "Milvus search") from exc

    @staticmethod
    def _rows(result, lexical: bool = False) -> list[tuple[int, float]]:
        hits = result[0] if result else []
        # BM25 distances come back as scores (Milvus) or negated scores (milvus-lite); order is the engine's
        return [(int(h["id"] if "id" in h else h["row"]), abs(float(h["distance"])) if lexical else float(h["distance"])) for h in hits]

    def dense_search(self, vector, k: int, filters=None) -> list[tuple[int, float]]:
        if k <= 0 or not self.clauses or vector is None:
            return []
        expr = expression(filters, self.documents)
        k = min(k, len(self.clauses))
        result = self._call(lambda c: c.search(self.generation, data=[np.asarray(vector, dtype=np.float32).tolist()],
                                               anns_field="vector", limit=k, filter=expr, output_fields=["row"],
                                               search_params={"metric_type": "IP"}))
        return self._rows(result)

    def lexical_search(self, query: str, k: int, filters=None, tokens: list[str] | None = None) -> list[tuple[int, float]]:
        text = lexical_text(query)
        if k <= 0 or not self.clauses or not text or tokens == []:
            return []
        expr = expression(filters, self.documents)
        result = self._call(lambda c: c.search(self.generation, data=[text], anns_field="sparse", limit=min(k, len(self.clauses)),
                                               filter=expr, output_fields=["row"], search_params={"metric_type": "BM25"}))
        return [(row, score) for row, score in self._rows(result, lexical=True) if score > 0]

    def hybrid_search(self, vector, query: str, tokens: list[str], fetch: int, filters=None,
                      dense_weight: float = 0.5, rrf_k: int = 60):
        """Milvus hybrid_search with RRF. Its RRF takes no weights, so the dense and the lexical
        request are repeated p and q times (p:q = dense_weight:1, see weight_ratio) and the fused
        scores scaled by 1/q: the same scores, hence order, as the local weighted fusion."""
        pm = _pymilvus()
        text = lexical_text(query)
        expr = expression(filters, self.documents)
        fetch = min(fetch, len(self.clauses))
        if fetch <= 0:
            return [], [], []
        p, q = weight_ratio(dense_weight)
        with_lexical = bool(text and tokens and q)
        requests = []
        if vector is not None and p:
            dense = pm.AnnSearchRequest(data=[np.asarray(vector, dtype=np.float32).tolist()], anns_field="vector",
                                        param={"metric_type": "IP"}, limit=fetch, expr=expr or None)
            requests += [dense] * p
        if with_lexical:
            lexical = pm.AnnSearchRequest(data=[text], anns_field="sparse", param={"metric_type": "BM25"},
                                          limit=fetch, expr=expr or None)
            requests += [lexical] * q
        if not requests:
            return [], [], []
        # lexical weight 1 rides on q copies; alone, the dense side's weight rides on p copies
        scale = 1.0 / q if with_lexical else dense_weight / p
        result = self._call(lambda c: c.hybrid_search(self.generation, requests, ranker=pm.RRFRanker(rrf_k),
                                                      limit=min(2 * fetch, len(self.clauses)), output_fields=["row"]))
        fused = [(row, score * scale) for row, score in self._rows(result)]
        return fused, [], []

    def dense_scores(self, vector, rows: list[int]) -> dict[int, float]:
        """The cosine of the query to each of a few rows (their vectors fetched by primary key)."""
        if not rows:
            return {}
        found = self._call(lambda c: c.get(self.generation, ids=[int(r) for r in rows], output_fields=["row", "vector"]))
        q = np.asarray(vector, dtype=np.float32)
        return {int(r["row"]): float(np.dot(np.asarray(r["vector"], dtype=np.float32), q)) for r in found}

    def idf(self) -> Idf:
        if self._idf is None:
            self._idf = idf_from_df(self._df, len(self.clauses))
        return self._idf

    def vectors(self) -> np.ndarray:
        """Every clause's vector in row order (read page by page)."""
        dim = int(self.manifest.get("dim") or 0)
        out = np.zeros((len(self.clauses), dim), dtype=np.float32)
        for r in self._call(lambda c: list(_pages(c, self.generation, len(self.clauses), ["vector"]))):
            out[int(r["row"])] = r["vector"]
        return out
