"""Print the demo's photos: portraits that ship inside installed wheels, and the shared set when present."""

from __future__ import annotations

from pathlib import Path


def demo_photos() -> list[Path]:
    """Return public-domain portraits available on this machine without a download."""
    photos: list[Path] = []
    try:
        import matplotlib

        photos.append(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    except ImportError:
        pass
    shared = Path.cwd().parent / "shared" / "images"
    if shared.is_dir():
        photos += sorted(p for p in shared.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [p for p in photos if p.exists()]


if __name__ == "__main__":
    print(" ".join(str(p) for p in demo_photos()))
