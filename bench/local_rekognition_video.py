"""Benchmark: frames analysed per second on local_rekognition's stored-video path, beside cutting frames by hand.

The clip is made in the run: a pan and zoom over a photo (the shared two_people.jpg when present, else Grace Hopper
from matplotlib's wheel), H.264 in MP4, written with PyAV. Both paths analyse the same sampled frames (5 per second
of video) with the same engine call (detection, landmarks, pose, quality and an embedding per face):

  video path   what StartFaceDetection runs per frame: FFmpeg decodes the H.264 stream (skipped frames grabbed,
               not converted), the engine analyses the sample, the tracker follows the faces.
  baseline     what a user without a video API does: each sampled frame saved as a JPEG, then decoded and
               analysed as one DetectFaces image (local_rekognition's image path), no tracking.

    python bench/local_rekognition_video.py [--seconds S] [--size WxH] [--fps F] [--repeat R]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local_rekognition.images import decode  # noqa: E402 - needs ROOT on sys.path first
from local_rekognition.models import load_engine  # noqa: E402
from local_rekognition.video.decode import FrameSampler  # noqa: E402
from local_rekognition.video.tracker import FaceTracker  # noqa: E402
from testmedia import clips  # noqa: E402

SHARED_PHOTO = ROOT.parent / "shared" / "images" / "two_people.jpg"


def main() -> None:
    """Make the clip, time both paths ``repeat`` times, print frames/s for each and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.split("x"))
    photo = SHARED_PHOTO if SHARED_PHOTO.exists() else None
    if photo is None:
        from testmedia.photos import grace_hopper

        photo = grace_hopper()
    frames = clips.frames(photo, clips.drift, seconds=args.seconds, fps=args.fps, size=(width, height))
    data = clips.h264(frames, args.fps)
    engine = load_engine()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "clip.mp4"
        path.write_bytes(data)
        # The baseline's JPEGs: the frames the video path samples, cut in advance (cutting is not timed).
        sampler = FrameSampler(path)
        jpegs = []
        for _, pixels in sampler.frames():
            out = io.BytesIO()
            Image.fromarray(pixels).save(out, "JPEG", quality=90)
            jpegs.append(out.getvalue())
        sampler.close()
        print(
            f"clip: {photo.name}, {args.seconds:g} s at {args.fps} fps, {width}x{height}, {len(data)} bytes H.264; "
            f"{len(jpegs)} frames sampled (5/s); one thread"
        )
        engine.analyze(decode(jpegs[0], max_pixels=50_000_000).pixels, want_embeddings=True)  # warm up
        for run in range(args.repeat):
            started = time.perf_counter()
            sampler, tracker, faces_seen, tracks = FrameSampler(path), FaceTracker(), 0, set()
            analysed = 0
            while (frame := sampler.next_frame()) is not None:
                timestamp_ms, pixels = frame
                faces = engine.analyze(pixels, want_embeddings=True)
                tracks.update(tracker.update(timestamp_ms, faces))
                faces_seen += len(faces)
                analysed += 1
            sampler.close()
            video_fps = analysed / (time.perf_counter() - started)
            started = time.perf_counter()
            for jpeg in jpegs:
                engine.analyze(decode(jpeg, max_pixels=50_000_000).pixels, want_embeddings=True)
            baseline_fps = len(jpegs) / (time.perf_counter() - started)
            print(
                f"run {run + 1}: video path {video_fps:6.1f} frames/s ({faces_seen} faces, {len(tracks)} tracks) | "
                f"baseline JPEG per frame {baseline_fps:6.1f} frames/s | ratio {video_fps / baseline_fps:.2f}x"
            )


if __name__ == "__main__":
    main()
