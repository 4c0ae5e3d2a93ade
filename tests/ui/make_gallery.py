"""Refresh docs/gallery/ from the UI tests' screenshots (artifacts/screens/), reduced to 128 colours.

    python -m pytest -m ui tests/ui && python -m tests.ui.make_gallery
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
KEEP_PANEL = {"08-done", "08b-receipt-full", "16-done-printer-fault"}  # show the demo printer's receipt beside the screen


def main() -> None:
    src, dst = ROOT / "artifacts" / "screens", ROOT / "docs" / "gallery"
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.png")):
        img = Image.open(path).convert("RGB")
        if path.stem not in KEEP_PANEL:
            img = img.crop((0, 0, 1024, 600) if "1024x600" in path.stem else (0, 0, 800, 480))
        img.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(dst / path.name, optimize=True)
        print(dst / path.name)


if __name__ == "__main__":
    main()
