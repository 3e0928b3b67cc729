"""Sentence embeddings with all-MiniLM-L6-v2, run by onnxruntime from a graph built here.

The model's weights come from a registry wheel through models/manifest.yaml; the package
itself would pull in torch, so the six-layer BERT encoder (attention, GELU, layer norm) is
written here as an ONNX graph over those weights at load time (nlu/onnx_graph.py), and
onnxruntime runs it on one thread: its matrix products with weights packed once at load
were twice as fast as numpy's BLAS on a sentence's few rows. The token and position
embeddings before it and the mean pooling after it are numpy. A short sentence costs a few
milliseconds.
"""

import json
import struct
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits
from tokenizers import Tokenizer

from nlu.model_files import MODELS_DIR, entry_for, require
from nlu.onnx_graph import MICROSOFT, Graph
from nlu.onnx_session import cpu_session

MODEL_FILE = "minilm-l6-v2/model.safetensors"
TOKENIZER_FILE = "minilm-l6-v2/tokenizer.json"
LAYERS = 6
HEADS = 12
EPS = 1e-12
MAX_TOKENS = 128
DTYPES = {"F32": np.float32, "F16": np.float16}

Matrix = NDArray[np.float32]


def load_safetensors(path: Path) -> dict[str, Matrix]:
    """The tensors of a .safetensors file: an 8-byte header length, a JSON header, the data."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    body = memoryview(raw)[8 + length :]
    tensors = {}
    for name, info in header.items():
        if info.get("dtype") not in DTYPES:
            continue  # the header's __metadata__ and the int64 position ids
        start, end = info["data_offsets"]
        array = np.frombuffer(body[start:end], dtype=DTYPES[info["dtype"]])
        tensors[name] = array.reshape(info["shape"]).astype(np.float32)
    return tensors


def encoder_graph(weights: dict[str, Matrix]) -> bytes:
    """BERT's encoder as an ONNX model: `embedded` (batch, tokens, hidden), the token and
    position embeddings summed, and `mask` (batch, tokens), 1 for a token and 0 for padding,
    in; `hidden`, the last layer's token vectors, out.

    A layer's self-attention is onnxruntime's fused Attention operator (Q, K and V in one
    product, every head at once); GELU is the exact x·(1 + erf(x/√2))/2."""
    g = Graph()
    hidden = weights["embeddings.LayerNorm.weight"].shape[0]
    one, half, root_half = (
        g.constant(name, np.array(value, np.float32))
        for name, value in (("one", 1.0), ("half", 0.5), ("root_half", 1 / np.sqrt(2.0)))
    )

    def dense(x: str, prefix: str) -> str:
        weight = g.constant(prefix + ".w", weights[prefix + ".dense.weight"].T)
        product = g.node("MatMul", [x, weight], prefix + ".xw")
        return g.node(
            "Add",
            [product, g.constant(prefix + ".b", weights[prefix + ".dense.bias"])],
            prefix + ".out",
        )

    def norm(x: str, prefix: str) -> str:
        return g.node(
            "LayerNormalization",
            [
                x,
                g.constant(prefix + ".g", weights[prefix + ".LayerNorm.weight"]),
                g.constant(prefix + ".beta", weights[prefix + ".LayerNorm.bias"]),
            ],
            prefix + ".normed",
            axis=-1,
            epsilon=EPS,
        )

    x = norm("embedded", "embeddings")
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        parts = [f"{p}attention.self.{name}" for name in ("query", "key", "value")]
        qkv_weight = np.concatenate([weights[part + ".weight"] for part in parts]).T
        qkv_bias = np.concatenate([weights[part + ".bias"] for part in parts])
        context = g.node(
            "Attention",
            [x, g.constant(p + "qkv.w", qkv_weight), g.constant(p + "qkv.b", qkv_bias), "mask"],
            p + "context",
            domain=MICROSOFT,
            num_heads=HEADS,
        )
        attended = dense(context, p + "attention.output")
        x = norm(g.node("Add", [attended, x], p + "attention.sum"), p + "attention.output")
        inner = dense(x, p + "intermediate")
        erf = g.node("Erf", [g.node("Mul", [inner, root_half], p + "gelu.z")], p + "gelu.erf")
        phi = g.node("Mul", [g.node("Add", [erf, one], p + "gelu.1+erf"), half], p + "gelu.phi")
        out = dense(g.node("Mul", [inner, phi], p + "gelu"), p + "output")
        x = norm(g.node("Add", [out, x], p + "output.sum"), p + "output")
    g.node("Identity", [x], "hidden")
    return g.model(
        inputs={
            "embedded": (np.float32, ["batch", "tokens", hidden]),
            "mask": (np.int32, ["batch", "tokens"]),
        },
        outputs={"hidden": (np.float32, ["batch", "tokens", hidden])},
    )


class SentenceEncoder:
    """Text → a unit-length 384-dimension vector (cosine similarity is a dot product)."""

    def __init__(self, models_dir: Path = MODELS_DIR) -> None:
        # One BLAS thread for the process's numpy (the nearest examples' similarities): its
        # matrices are small, and a second thread made each product 5-10x slower whenever
        # the other core was busy.
        threadpool_limits(limits=1, user_api="blas")
        weights = load_safetensors(require(MODEL_FILE, models_dir))
        self.tokenizer = Tokenizer.from_file(str(require(TOKENIZER_FILE, models_dir)))
        # What the vectors depend on: the weights (by checksum) and the truncation.
        self.fingerprint = f"{entry_for(MODEL_FILE, models_dir).sha256}:{MAX_TOKENS}"
        self.tokenizer.no_padding()  # the file pads to 128; batches are padded here
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.words = weights["embeddings.word_embeddings.weight"]
        # Positions and the one token type, summed once.
        self.positions = (
            weights["embeddings.position_embeddings.weight"]
            + weights["embeddings.token_type_embeddings.weight"][0]
        )
        self.session = cpu_session(encoder_graph(weights))

    def encode(self, texts: list[str]) -> Matrix:
        """One row per text, in order; texts of similar length are batched together."""
        out = np.zeros((len(texts), self.words.shape[1]), np.float32)
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), 32):
            batch = order[start : start + 32]
            lengths = np.array([len(encodings[i].ids) for i in batch])
            ids = np.zeros((len(batch), lengths.max()), np.int64)
            for row, i in enumerate(batch):
                ids[row, : lengths[row]] = encodings[i].ids
            out[batch] = self._forward(ids, lengths)
        return out

    def _forward(self, ids: NDArray[np.int64], lengths: NDArray[np.int64]) -> Matrix:
        width = ids.shape[1]
        mask = (np.arange(width) < lengths[:, None]).astype(np.int32)
        embedded = self.words[ids] + self.positions[:width]
        (hidden,) = self.session.run(["hidden"], {"embedded": embedded, "mask": mask})
        # Mean of the sentence's own tokens, then unit length.
        pooled = (hidden * mask[..., None]).sum(1) / lengths[:, None]
        return np.asarray(pooled / np.linalg.norm(pooled, axis=1, keepdims=True), np.float32)
