"""Just enough of the ONNX file format to hand onnxruntime a graph built in code.

The `onnx` package is not a dependency, so a graph is written here as the protobuf
messages of onnx.proto (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto,
AttributeProto), field by field: a varint tag, then a varint or a length-prefixed value.
"""

import struct
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

IR_VERSION = 8
OPSET = 17  # LayerNormalization's first opset
MICROSOFT = "com.microsoft"
ELEMENT_TYPES = {np.dtype(np.float32): 1, np.dtype(np.int32): 6, np.dtype(np.int64): 7}
# An input or output: its element type and its dimensions (a str one is named and free).
Signature = tuple[type[np.generic], list[int | str]]
Attribute = int | float | list[int]


def _varint(number: int) -> bytes:
    number &= (1 << 64) - 1  # a negative int64 is its two's complement, in ten bytes
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _field(number: int, value: int | str | bytes) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _attribute(name: str, value: Attribute) -> bytes:
    if isinstance(value, float):  # FLOAT: field 2, fixed 32-bit
        return _field(1, name) + _varint(2 << 3 | 5) + struct.pack("<f", value) + _field(20, 1)
    if isinstance(value, int):  # INT
        return _field(1, name) + _field(3, value) + _field(20, 2)
    return _field(1, name) + b"".join(_field(8, item) for item in value) + _field(20, 7)


def _value_info(name: str, signature: Signature) -> bytes:
    kind, dims = signature
    shape = b"".join(
        _field(1, _field(2, dim) if isinstance(dim, str) else _field(1, dim)) for dim in dims
    )
    return _field(1, name) + _field(
        2, _field(1, _field(1, ELEMENT_TYPES[np.dtype(kind)]) + _field(2, shape))
    )


@dataclass
class Graph:
    """Nodes and constants added in order; `model()` is the serialised ModelProto."""

    nodes: list[bytes] = field(default_factory=list)
    constants: list[bytes] = field(default_factory=list)

    def constant(self, name: str, array: NDArray[np.float32] | NDArray[np.int64]) -> str:
        self.constants.append(
            b"".join(_field(1, dim) for dim in array.shape)  # none: a scalar
            + _field(2, ELEMENT_TYPES[array.dtype])
            + _field(8, name)
            + _field(9, array.tobytes())  # C order, whatever the array's layout
        )
        return name

    def node(
        self, op: str, inputs: list[str], output: str, domain: str = "", **attributes: Attribute
    ) -> str:
        """`domain` "com.microsoft" is onnxruntime's own operators (Attention)."""
        self.nodes.append(
            b"".join(_field(1, name) for name in inputs)
            + _field(2, output)
            + _field(3, output)  # named after its output, for onnxruntime's messages
            + _field(4, op)
            + b"".join(_field(5, _attribute(key, value)) for key, value in attributes.items())
            + _field(7, domain)
        )
        return output

    def model(self, inputs: dict[str, Signature], outputs: dict[str, Signature]) -> bytes:
        graph = (
            b"".join(_field(1, node) for node in self.nodes)
            + _field(2, "graph")
            + b"".join(_field(5, constant) for constant in self.constants)
            + b"".join(_field(11, _value_info(name, kind)) for name, kind in inputs.items())
            + b"".join(_field(12, _value_info(name, kind)) for name, kind in outputs.items())
        )
        opsets = _field(8, _field(2, OPSET)) + _field(8, _field(1, MICROSOFT) + _field(2, 1))
        return _field(1, IR_VERSION) + _field(7, graph) + opsets
