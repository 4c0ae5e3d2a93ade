"""A small ESC/POS decoder for exactly what hardware/printer/layout.py emits.

It turns bytes back into lines of text with their style, QR codes and cuts, so tests can
assert every field of a printed receipt and the virtual printer can draw it. It also
recognises DLE EOT n (real-time status) so the virtual printer can answer it in-stream.
Anything else is an error: an unknown command means the layout emitted something this
decoder (and maybe the printer) does not know, and the test should say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ESC, GS, DLE, LF, EOT = 0x1B, 0x1D, 0x10, 0x0A, 0x04


class DecodeError(ValueError):
    """Bytes the layout should never emit (or a truncated job)."""


@dataclass(frozen=True)
class Line:
    """One printed line of text with the style it was printed in."""

    text: str
    align: str = "left"
    bold: bool = False
    width: int = 1
    height: int = 1


@dataclass(frozen=True)
class QR:
    """A printed QR code with its payload, so tests can verify the receipt token."""

    data: str
    module: int
    ec: str
    align: str = "center"


@dataclass(frozen=True)
class Feed:
    """Paper fed without text (ESC d n)."""

    lines: int


@dataclass(frozen=True)
class Cut:
    """The paper cut that ends one printed piece."""

    partial: bool = False


@dataclass(frozen=True)
class StatusQuery:
    """A DLE EOT n in the stream, which the virtual printer answers as a real one does."""

    n: int


@dataclass
class Document:
    """One printed piece of paper: everything up to and including a cut."""

    items: list = field(default_factory=list)
    codepage: int | None = None
    cut: bool = False

    @property
    def lines(self) -> list[Line]:
        """The text lines, in print order, without QR codes, feeds and cuts."""
        return [i for i in self.items if isinstance(i, Line)]

    @property
    def texts(self) -> list[str]:
        """The text of each line, for assertions on what is on paper."""
        return [ln.text for ln in self.lines]

    @property
    def qr_codes(self) -> list[QR]:
        """The QR codes printed, in order."""
        return [i for i in self.items if isinstance(i, QR)]

    def text(self) -> str:
        """The document as it reads on paper, one line per printed line."""
        return "\n".join(self.texts)

    def flat(self) -> str:
        """All text as one line (wrapped sentences read whole again)."""
        return " ".join(t.strip() for t in self.texts if t.strip())

    def joined(self) -> str:
        """All text with no separators (ids wrapped at hyphens read whole again)."""
        return "".join(t.strip() for t in self.texts)

    def find(self, needle: str) -> Line:
        """The first line containing `needle`; fails with the whole
        receipt shown, so a test failure says what was printed."""
        for ln in self.lines:
            if needle in ln.text:
                return ln
        raise AssertionError(f"{needle!r} is not on the receipt:\n" + self.text())


_ALIGN = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}
_EC = {48: "L", 49: "M", 50: "Q", 51: "H"}


class Decoder:
    """Incremental: feed() bytes as they arrive; complete commands are consumed, a partial
    command waits for more. Yields items (Line, QR, Feed, Cut, StatusQuery)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.align = "left"
        self.bold = False
        self.width = 1
        self.height = 1
        self.codepage: int | None = None
        self.text = bytearray()
        self.qr_store: bytes = b""
        self.qr_module = 3
        self.qr_ec = "L"
        self._line_align = None

    def _reset(self) -> None:
        self.align, self.bold, self.width, self.height = "left", False, 1, 1

    def _flush_line(self) -> Line:
        text = self.text.decode("cp437")
        self.text.clear()
        align = self._line_align or self.align
        self._line_align = None
        return Line(text, align, self.bold, self.width, self.height)

    def feed(self, data: bytes) -> list:
        """Take bytes as they arrive and return the items now
        complete; a partial command waits for the next bytes."""
        self.buf += data
        out: list = []
        i = 0
        b = self.buf
        n = len(b)
        while i < n:
            c = b[i]
            if c == LF:
                out.append(self._flush_line())
                i += 1
            elif c == ESC:
                if i + 1 >= n:
                    break
                cmd = b[i + 1]
                if cmd == ord("@"):
                    self._reset()
                    i += 2
                    continue
                if i + 2 >= n:
                    break
                arg = b[i + 2]
                if cmd == ord("t"):
                    self.codepage = arg
                elif cmd == ord("a"):
                    self.align = _ALIGN.get(arg, "left")
                    if not self.text:
                        self._line_align = None
                elif cmd == ord("E"):
                    self.bold = bool(arg & 1)
                elif cmd == ord("!"):
                    self.bold = bool(arg & 0x08)
                    self.height = 2 if arg & 0x10 else 1
                    self.width = 2 if arg & 0x20 else 1
                elif cmd == ord("d"):
                    if self.text:
                        out.append(self._flush_line())
                    out.append(Feed(arg))
                elif cmd == ord("M"):
                    pass  # font A/B: we always use A
                else:
                    raise DecodeError(f"unknown command ESC {chr(cmd)!r} (0x{cmd:02x}) at byte {i}")
                i += 3
            elif c == GS:
                if i + 2 >= n:
                    break
                cmd = b[i + 1]
                if cmd == ord("!"):
                    arg = b[i + 2]
                    self.width = (arg >> 4) + 1
                    self.height = (arg & 0x0F) + 1
                    i += 3
                elif cmd == ord("V"):
                    mode = b[i + 2]
                    if mode in (65, 66):  # GS V m n: feed then cut
                        if i + 3 >= n:
                            break
                        i += 4
                    else:
                        i += 3
                    if self.text:
                        out.append(self._flush_line())
                    out.append(Cut(partial=mode in (1, 49, 66)))
                elif cmd == ord("("):
                    if i + 4 >= n:
                        break
                    fn_kind = b[i + 2]
                    size = b[i + 3] | (b[i + 4] << 8)
                    if i + 5 + size > n:
                        break
                    body = bytes(b[i + 5 : i + 5 + size])
                    if fn_kind != ord("k"):
                        raise DecodeError(f"unknown command GS ( {chr(fn_kind)!r} at byte {i}")
                    item = self._qr(body)
                    if item is not None:
                        out.append(item)
                    i += 5 + size
                else:
                    raise DecodeError(f"unknown command GS {chr(cmd)!r} (0x{cmd:02x}) at byte {i}")
            elif c == DLE:
                if i + 2 >= n:
                    break
                if b[i + 1] != EOT:
                    raise DecodeError(f"unknown real-time command DLE 0x{b[i + 1]:02x} at byte {i}")
                out.append(StatusQuery(b[i + 2]))
                i += 3
            elif c < 0x20:
                raise DecodeError(f"unexpected control byte 0x{c:02x} at byte {i}")
            else:
                if not self.text:
                    self._line_align = self.align
                self.text.append(c)
                i += 1
        del self.buf[:i]
        return out

    def _qr(self, body: bytes):
        cn, fn = body[0], body[1]
        if cn != ord("1"):
            raise DecodeError(f"2D code type {cn} is not QR")
        if fn == 65:  # model
            return None
        if fn == 67:
            self.qr_module = body[2]
            return None
        if fn == 69:
            self.qr_ec = _EC.get(body[2], "?")
            return None
        if fn == 80:  # store: m='0' then data
            self.qr_store = body[3:]
            return None
        if fn == 81:  # print
            return QR(self.qr_store.decode("utf-8"), self.qr_module, self.qr_ec, self.align)
        raise DecodeError(f"unknown QR function {fn}")


def decode(data: bytes) -> list[Document]:
    """All documents in a byte stream; the last one may lack a cut (then `cut` is False)."""
    dec = Decoder()
    items = dec.feed(data)
    if dec.buf:
        raise DecodeError(f"{len(dec.buf)} bytes of an incomplete command at the end")
    if dec.text:
        items.append(dec._flush_line())
    docs: list[Document] = []
    current = Document()
    for item in items:
        if isinstance(item, StatusQuery):
            continue
        current.items.append(item)
        if isinstance(item, Cut):
            current.cut = True
            current.codepage = dec.codepage
            docs.append(current)
            current = Document()
    if current.items:
        current.codepage = dec.codepage
        docs.append(current)
    return docs


def decode_one(data: bytes) -> Document:
    """The one document in a job's bytes; anything else means the
    layout printed more or less than one piece of paper."""
    docs = decode(data)
    if len(docs) != 1:
        raise DecodeError(f"expected one printed document, found {len(docs)}")
    return docs[0]
