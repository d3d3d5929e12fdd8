"""The Keras HDF5 → ONNX rewrite computes what Keras computes, layer type by layer type.

A tiny model with every layer type the mask classifier uses is written as Keras 2 writes it (JSON graph in
``model_config``, one weight group per layer), converted, run on onnxruntime and compared with the same network
written out in numpy from Keras' documented semantics (NHWC, TensorFlow's SAME padding, BN epsilon).
"""

from __future__ import annotations

import io
import json
from typing import Any

import h5py
import numpy as np
import onnxruntime as ort
import pytest

from local_rekognition.models.keras_onnx import UnsupportedLayer, convert

SIZE = 8
RNG = np.random.default_rng(23)


def _layer(kind: str, name: str, inbound: list[str], **config: Any) -> dict[str, Any]:
    return {
        "class_name": kind,
        "config": {"name": name, **config},
        "inbound_nodes": [[[source, 0, 0, {}] for source in inbound]] if inbound else [],
    }


LAYERS = [
    _layer("InputLayer", "input_1", [], batch_input_shape=[None, SIZE, SIZE, 3]),
    _layer("ZeroPadding2D", "pad", ["input_1"], padding=[[0, 1], [0, 1]]),
    _layer(
        "Conv2D", "conv", ["pad"], kernel_size=[3, 3], strides=[2, 2], padding="valid", activation="linear",
        use_bias=False,
    ),
    _layer("BatchNormalization", "bn", ["conv"], axis=[3], epsilon=0.001),
    _layer("ReLU", "relu6", ["bn"], max_value=6.0),
    _layer(
        "DepthwiseConv2D", "depthwise", ["relu6"], kernel_size=[3, 3], strides=[1, 1], padding="same",
        activation="linear", use_bias=False, depth_multiplier=1,
    ),
    _layer("Add", "add", ["relu6", "depthwise"]),
    _layer("AveragePooling2D", "pool", ["add"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
    _layer("Flatten", "flatten", ["pool"]),
    _layer("Dense", "dense", ["flatten"], units=5, activation="relu", use_bias=True),
    _layer("Dropout", "dropout", ["dense"], rate=0.5),
    _layer("Dense", "out", ["dropout"], units=2, activation="softmax", use_bias=True),
]  # fmt: skip

WEIGHTS = {
    "conv": {"kernel:0": RNG.normal(size=(3, 3, 3, 4))},
    "bn": {
        "gamma:0": RNG.uniform(0.5, 1.5, 4),
        "beta:0": RNG.normal(size=4),
        "moving_mean:0": RNG.normal(size=4),
        "moving_variance:0": RNG.uniform(0.5, 2.0, 4),
    },
    "depthwise": {"depthwise_kernel:0": RNG.normal(size=(3, 3, 4, 1))},
    "dense": {"kernel:0": RNG.normal(size=(16, 5)), "bias:0": RNG.normal(size=5)},
    "out": {"kernel:0": RNG.normal(size=(5, 2)), "bias:0": RNG.normal(size=2)},
}


def _h5(layers: list[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        file.attrs["model_config"] = json.dumps(
            {
                "class_name": "Model",
                "config": {
                    "name": "tiny",
                    "layers": layers,
                    "input_layers": [["input_1", 0, 0]],
                    "output_layers": [[layers[-1]["config"]["name"], 0, 0]],
                },
            }
        )
        groups = file.create_group("model_weights")
        for name, arrays in WEIGHTS.items():
            group = groups.create_group(name)
            group.attrs["weight_names"] = [f"{name}/{weight}".encode() for weight in arrays]
            for weight, array in arrays.items():
                group.create_dataset(f"{name}/{weight}", data=array.astype(np.float32))
    return buffer.getvalue()


def _conv(x: np.ndarray, kernel: np.ndarray, stride: int, depthwise: bool = False) -> np.ndarray:
    """Valid cross-correlation over NHWC ``x`` (already padded), as Keras computes it."""
    size = kernel.shape[0]
    rows = (x.shape[1] - size) // stride + 1
    cols = (x.shape[2] - size) // stride + 1
    out = np.zeros((1, rows, cols, x.shape[3] if depthwise else kernel.shape[3]))
    for i in range(rows):
        for j in range(cols):
            patch = x[0, i * stride : i * stride + size, j * stride : j * stride + size, :]
            if depthwise:
                out[0, i, j] = np.einsum("hwc,hwc->c", patch, kernel[:, :, :, 0])
            else:
                out[0, i, j] = np.einsum("hwc,hwco->o", patch, kernel)
    return out


def _reference(x: np.ndarray) -> np.ndarray:
    padded = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
    y = _conv(padded, WEIGHTS["conv"]["kernel:0"], 2)
    bn = WEIGHTS["bn"]
    y = bn["gamma:0"] * (y - bn["moving_mean:0"]) / np.sqrt(bn["moving_variance:0"] + 0.001) + bn["beta:0"]
    y = np.clip(y, 0.0, 6.0)
    # SAME for a 3×3 kernel at stride 1: one pixel on every side.
    d = _conv(np.pad(y, ((0, 0), (1, 1), (1, 1), (0, 0))), WEIGHTS["depthwise"]["depthwise_kernel:0"], 1, True)
    y = y + d
    y = y.reshape(1, 2, 2, 2, 2, 4).mean(axis=(2, 4))
    y = y.reshape(1, -1)
    y = np.maximum(y @ WEIGHTS["dense"]["kernel:0"] + WEIGHTS["dense"]["bias:0"], 0.0)
    y = y @ WEIGHTS["out"]["kernel:0"] + WEIGHTS["out"]["bias:0"]
    e = np.exp(y - y.max())
    return e / e.sum()


def test_the_converted_graph_matches_keras_semantics() -> None:
    model = convert(_h5(LAYERS), input_size=SIZE)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])

    for _ in range(3):
        x = RNG.uniform(-1, 1, (1, SIZE, SIZE, 3)).astype(np.float32)
        (got,) = session.run(None, {"input": x})
        assert np.allclose(got, _reference(x.astype(np.float64)), atol=1e-5)


def test_conversion_is_byte_for_byte_repeatable() -> None:
    assert convert(_h5(LAYERS), input_size=SIZE) == convert(_h5(LAYERS), input_size=SIZE)


def test_an_unknown_layer_is_refused_by_name() -> None:
    layers = [*LAYERS[:-1], _layer("LSTM", "lstm", ["dropout"], units=2)]

    with pytest.raises(UnsupportedLayer, match="lstm: layer type LSTM"):
        convert(_h5(layers), input_size=SIZE)


def _head_pooled_whole() -> list[dict[str, Any]]:
    """LAYERS with the pool covering the whole 4×4 map at SIZE (MobileNetV2's 7×7 head at 224 does the same)."""
    pooled = _layer("AveragePooling2D", "pool", ["add"], pool_size=[4, 4], strides=[4, 4], padding="valid")
    return [pooled if layer["config"]["name"] == "pool" else layer for layer in LAYERS]


def _session(model: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


def test_global_pooling_is_the_same_graph_at_the_models_own_size() -> None:
    # The dense layers expect 4 features after a whole-map pool: re-draw them for this head.
    saved = dict(WEIGHTS)
    WEIGHTS["dense"] = {"kernel:0": RNG.normal(size=(4, 5)), "bias:0": RNG.normal(size=5)}
    try:
        fixed = _session(convert(_h5(_head_pooled_whole()), input_size=SIZE))
        pooled = _session(convert(_h5(_head_pooled_whole()), input_size=SIZE, global_pooling=True))
        smaller = _session(convert(_h5(_head_pooled_whole()), input_size=SIZE - 2, global_pooling=True))
        x = RNG.uniform(-1, 1, (1, SIZE, SIZE, 3)).astype(np.float32)

        # Then at the model's own size the whole-map pool is the pool it replaces
        assert np.allclose(fixed.run(None, {"input": x})[0], pooled.run(None, {"input": x})[0], atol=1e-6)
        # And a smaller input (a 3×3 map, which the fixed 4×4 pool could not take) still gives probabilities
        (small,) = smaller.run(None, {"input": x[:, : SIZE - 2, : SIZE - 2]})
        assert small.shape == (1, 2) and np.isclose(small.sum(), 1.0, atol=1e-6)
    finally:
        WEIGHTS.clear()
        WEIGHTS.update(saved)
