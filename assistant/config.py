"""Configuration: one `Settings` object (environment prefix ASSISTANT_), read only at the edges."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", env_file=".env", extra="ignore")

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    data_dir: Path = Path("data")  # the default SQLite store: sessions, feedback
    database_url: str = ""  # sqlite:///<path> or postgresql://… (replicas); empty: <data_dir>/assistant.db

    # embedding
    embedder: str = "sentence-transformers"  # or "hash" (tests, throwaway indexes)
    model: str = "m3e-small"  # any sentence-transformers name or local path
    hash_dim: int = 256
    embed_batch_size: int = 32
    # How the model runs: ONNX Runtime int8 ("onnx-int8", the default: on 2 cores 2.7x torch's clauses/s,
    # mean cosine .998 to fp32; with the same answer thresholds every Recall@k and answer metric on the
    # seed test set and the outside dev set is within .01 of torch, but seed refusal recall .80 -> .85),
    # ONNX Runtime fp32 ("onnx", torch's vectors) or torch. An int8 index records
    # m3e-small+onnx-int8-v<recipe>, so switching rebuilds.
    # Without onnxruntime, or when the export fails, torch is used (embed.load_embedder).
    embed_backend: Literal["torch", "onnx", "onnx-int8"] = "onnx-int8"

    # chunking
    chunk_max_chars: int = 600
    # Longest time chunking and fact extraction may take for one document (in a worker process);
    # a document over it is skipped and named, the others are indexed. 0 = no guard, in-process.
    document_timeout_s: float = 20.0

    # index
    # Where the index lives: "faiss" (FAISS + bm25s in index_dir, one machine) or "milvus" (one
    # collection in Milvus: milvus_uri is a file path ending in .db for embedded milvus-lite, or
    # http://host:19530 for a Milvus standalone or cluster, with milvus_token if it needs one).
    backend: Literal["faiss", "milvus"] = "faiss"
    milvus_uri: str = ""  # empty: <index_dir>.milvus.db beside the index directory
    milvus_token: str = ""
    milvus_collection: str = "policy_clauses"  # the alias; generations are <alias>__g<time>
    ann_threshold: int = 50_000  # above this many clauses the dense index is approximate (HNSW)
    hnsw_m: int = 32
    hnsw_ef_search: int = 128

    # retrieval
    fetch_k: int = 50  # over-fetch per side before fusion
    rrf_k: int = 60
    # The fusion's dense weight (lexical = 1) and the lexical re-rank weights of the fused head are
    # calibrated per embedding model (assistant/calibration.py, `python -m assistant calibrate`); a
    # value set here (ASSISTANT_DENSE_WEIGHT …) overrides the calibrated one.
    dense_weight: float | None = None
    rerank_clause: float | None = None
    rerank_sentence: float | None = None
    max_k: int = 100
    rerank_depth: int = 20  # how much of the fused list the coverage re-rank reorders
    # The learned re-ranker of the embedding model (assistant/data/reranker.json, `python -m assistant
    # train-reranker`) orders the fused head when there is one; false: the coverage re-rank above.
    learned_rerank: bool = True
    # Questions in colloquial wording get the policy terms it means added before searching
    # (assistant/data/colloquial.tsv, text.expand_query); false: the question as typed.
    expand_query: bool = True

    # answers
    today: str = ""  # ISO date validity is judged against; empty = the real today (tests set it)
    llm_base_url: str = ""  # optional OpenAI-compatible endpoint; empty = off
    llm_model: str = ""
    llm_api_key: str = ""

    # conversation
    session_ttl_s: int = 7 * 24 * 3600
    max_turns: int = 50

    # service
    host: str = "127.0.0.1"
    port: int = 8000
    admin_token: str = ""  # empty: admin routes off (unless admin_tokens names some); its actor is "admin"
    # staff's own tokens, so the audit log names who: "name:token,name2:token2" or the path of a file
    # holding such pairs (one a line or comma-separated)
    admin_tokens: str = ""
    admin_session_s: int = 8 * 3600  # how long a console sign-in lasts
    eval_questions: Path = Path("eval/testset.jsonl")  # the seed test set the console can run
    cors_origins: list[str] = []
    rate_limit: str = "60/minute"
    # Keys the standard doors (/v1 OpenAI-compatible chat, /mcp) accept as `Authorization: Bearer <key>`;
    # ASSISTANT_API_KEYS=key1,key2 (comma-separated). Empty: the doors are open, like /api/chat.
    api_keys: Annotated[list[str], NoDecode] = []
    max_message_chars: int = 1000
    max_upload_bytes: int = 10 * 1024 * 1024
    # What reading one file (an upload, or a corpus file at build) may cost; past any of these it is
    # refused naming the bound (ingest.Limits holds the same defaults). An upload is read, cleaned and
    # chunked in a worker process under document_timeout_s and upload_memory_mb of address space.
    max_unzipped_bytes: int = 64 * 1024 * 1024  # a .docx's members together, as its zip declares them
    max_zip_ratio: int = 100  # per member over 1 MB; a zip bomb expands 200 times and more
    max_zip_entries: int = 2000
    max_pdf_pages: int = 2000
    max_pdf_stream_bytes: int = 16 * 1024 * 1024  # one decompressed PDF stream
    max_html_depth: int = 200
    max_document_chars: int = 1_000_000
    upload_memory_mb: int = 1024

    @field_validator("api_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value
