"""TFLite graphs on ai-edge-litert (Google's LiteRT runtime): one interpreter per thread, one CPU thread each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from ai_edge_litert.interpreter import Interpreter

from local_rekognition.models.threads import PerThread


class TFLiteModel:
    """A single-input TFLite graph, safe to call from several threads (an interpreter keeps its tensors)."""

    def __init__(self, path: Path) -> None:
        self._path = str(path)
        self._interpreters: PerThread[Interpreter] = PerThread(self._new)

    def _new(self) -> Interpreter:
        # One thread per call: the server's pool already runs one request per core.
        interpreter = Interpreter(model_path=self._path, num_threads=1)
        interpreter.allocate_tensors()
        return interpreter

    def run(self, tensor: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        """Feed ``tensor`` to the graph's input and return copies of its outputs, in the graph's order."""
        interpreter = self._interpreters.get()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor)
        interpreter.invoke()
        outputs = interpreter.get_output_details()
        return [np.array(interpreter.get_tensor(out["index"]), dtype=np.float32) for out in outputs]
