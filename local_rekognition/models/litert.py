"""TFLite graphs on ai-edge-litert (Google's LiteRT runtime): one interpreter per thread, one CPU thread each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from ai_edge_litert.interpreter import Interpreter

from local_rekognition.models.threads import PerThread


@dataclass(frozen=True)
class _Bound:
    """One thread's interpreter and its tensor indices, read once (get_*_details builds dicts on every call)."""

    interpreter: Interpreter
    input_index: int
    output_indices: tuple[int, ...]


class TFLiteModel:
    """A single-input TFLite graph, safe to call from several threads (an interpreter keeps its tensors)."""

    def __init__(self, path: Path, *, content: bytes | None = None, input_shape: tuple[int, ...] | None = None) -> None:
        """``content`` replaces the file's bytes (a graph edited in memory); ``input_shape`` resizes the input."""
        self._path = str(path)
        self._content = content
        self._input_shape = input_shape
        self._interpreters: PerThread[_Bound] = PerThread(self._new)

    def _new(self) -> _Bound:
        # One thread per call: the server's pool already runs one request per core.
        if self._content is not None:
            interpreter = Interpreter(model_content=self._content, num_threads=1)
        else:
            interpreter = Interpreter(model_path=self._path, num_threads=1)
        if self._input_shape is not None:
            interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], list(self._input_shape))
        interpreter.allocate_tensors()
        outputs = tuple(int(out["index"]) for out in interpreter.get_output_details())
        return _Bound(interpreter, int(interpreter.get_input_details()[0]["index"]), outputs)

    def run(self, tensor: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        """Feed ``tensor`` to the graph's input and return copies of its outputs, in the graph's order."""
        bound = self._interpreters.get()
        bound.interpreter.set_tensor(bound.input_index, tensor)
        bound.interpreter.invoke()
        return [np.array(bound.interpreter.get_tensor(index), dtype=np.float32) for index in bound.output_indices]
