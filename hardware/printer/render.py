"""Draw decoded ESC/POS documents as a thermal receipt PNG (Pillow; QR by `qrcode`).

8 dots/mm like real thermal heads: 58 mm paper prints 384 dots (32 columns of 12x24-dot
characters), 80 mm prints 576 dots (48 columns). Sizes (GS !), bold, alignment, QR and the
cut are drawn as the printer would; a torn edge marks the cut.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from hardware.printer.decoder import QR, Cut, Document, Feed, Line

DOTS = {58: 384, 80: 576}
CHAR_W, CHAR_H = 12, 24
MARGIN = 28
PAPER = (252, 251, 246)
INK = (28, 28, 32)
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu")]


@lru_cache(maxsize=4)
def _font(bold: bool) -> ImageFont.ImageFont:
    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    for d in FONT_DIRS:
        if (d / name).exists():
            return ImageFont.truetype(str(d / name), 20)
    return ImageFont.load_default()


def _line_image(line: Line) -> Image.Image:
    n = max(1, len(line.text))
    img = Image.new("L", (n * CHAR_W, CHAR_H), 255)
    draw = ImageDraw.Draw(img)
    font = _font(line.bold)
    for i, ch in enumerate(line.text):  # a fixed grid, like the print head
        draw.text((i * CHAR_W, 1), ch, font=font, fill=0)
    if line.width != 1 or line.height != 1:
        img = img.resize((img.width * line.width, img.height * line.height), Image.NEAREST)
    return img


def _qr_image(qr: QR) -> Image.Image:
    import qrcode

    level = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M,
             "Q": qrcode.constants.ERROR_CORRECT_Q, "H": qrcode.constants.ERROR_CORRECT_H}.get(qr.ec)
    code = qrcode.QRCode(error_correction=level or qrcode.constants.ERROR_CORRECT_M, box_size=max(1, qr.module), border=0)
    code.add_data(qr.data)
    code.make(fit=True)
    return code.make_image(fill_color="black", back_color="white").get_image().convert("L")


def _x(align: str, width: int, total: int) -> int:
    if align == "center":
        return max(0, (total - width) // 2)
    if align == "right":
        return max(0, total - width)
    return 0


def render(doc: Document, width_mm: int = 58) -> Image.Image:
    """Draw a decoded document as a thermal print would look, for field testers and the gallery."""
    dots = DOTS[width_mm]
    pieces: list[tuple[int, Image.Image | None, int]] = []  # (x, image, height)
    for item in doc.items:
        if isinstance(item, Line):
            img = _line_image(item)
            if not item.text:
                pieces.append((0, None, CHAR_H * item.height))
            else:
                pieces.append((_x(item.align, img.width, dots), img, img.height))
        elif isinstance(item, QR):
            img = _qr_image(item)
            pieces.append((_x(item.align, img.width, dots), img, img.height + 8))
        elif isinstance(item, Feed):
            pieces.append((0, None, CHAR_H * min(item.lines, 3)))
        elif isinstance(item, Cut):
            pieces.append((0, None, 10))
    height = sum(h for _, _, h in pieces) + 2 * MARGIN
    canvas = Image.new("L", (dots + 2 * MARGIN, height), 255)
    y = MARGIN
    for x, img, h in pieces:
        if img is not None:
            canvas.paste(img, (MARGIN + x, y + (4 if h > img.height else 0)))
        y += h
    out = Image.new("RGB", canvas.size, PAPER)
    ink = Image.new("RGB", canvas.size, INK)
    out.paste(ink, mask=Image.eval(canvas, lambda v: 255 - v))
    draw = ImageDraw.Draw(out)
    if doc.cut:  # torn/cut edge at the bottom
        tooth = 8
        pts = [(0, height)]
        for i in range(0, out.width + tooth, tooth):
            pts.append((i, height - (tooth if (i // tooth) % 2 else 0)))
        pts.append((out.width, height))
        draw.polygon(pts, fill=(210, 210, 205))
    return out


def save_png(doc: Document, path: Path, width_mm: int = 58) -> Path:
    """Render a document and save it as a PNG, creating the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    render(doc, width_mm).save(path)
    return path
