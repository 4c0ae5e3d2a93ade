"""Minimal BER-TLV with one-byte tags, as used by the SSN card applet (docs/card-protocol.md).

Lengths: 0..127 in one byte, 0x81 LL, 0x82 LLLL. Parsing is strict: any truncation, trailing
garbage, unknown length form or duplicate tag raises TlvError (the terminal maps it to
CARD_UNREADABLE); nothing here trusts a length from the card.
"""

from __future__ import annotations


class TlvError(ValueError):
    """Malformed TLV from the card; the client maps it to CARD_UNREADABLE."""


def encode(tag: int, value: bytes) -> bytes:
    """One TLV in the length forms the card protocol allows."""
    if not 0 < tag < 0x100:
        raise ValueError(f"tag {tag:#x} must be one byte")
    n = len(value)
    if n < 0x80:
        head = bytes([n])
    elif n < 0x100:
        head = bytes([0x81, n])
    elif n < 0x10000:
        head = bytes([0x82, n >> 8, n & 0xFF])
    else:
        raise ValueError("TLV value too long")
    return bytes([tag]) + head + value


def encode_all(items: list[tuple[int, bytes]]) -> bytes:
    """Several TLVs in order, as one field's value."""
    return b"".join(encode(t, v) for t, v in items)


def parse(data: bytes) -> list[tuple[int, bytes]]:
    """All TLVs at one level, in order. Raises TlvError on anything malformed."""
    out: list[tuple[int, bytes]] = []
    i, end = 0, len(data)
    while i < end:
        tag = data[i]
        if tag in (0x00, 0xFF):
            raise TlvError(f"invalid tag {tag:#04x} at {i}")
        i += 1
        if i >= end:
            raise TlvError("truncated length")
        first = data[i]
        i += 1
        if first < 0x80:
            n = first
        elif first == 0x81:
            if i + 1 > end:
                raise TlvError("truncated length")
            n = data[i]
            i += 1
        elif first == 0x82:
            if i + 2 > end:
                raise TlvError("truncated length")
            n = int.from_bytes(data[i : i + 2], "big")
            i += 2
        else:
            raise TlvError(f"unsupported length form {first:#04x}")
        if i + n > end:
            raise TlvError(f"value of tag {tag:#04x} truncated ({n} announced, {end - i} left)")
        out.append((tag, bytes(data[i : i + n])))
        i += n
    return out


def parse_map(data: bytes, required: tuple[int, ...] = ()) -> dict[int, bytes]:
    """One level as a dict; duplicate tags and missing required tags raise TlvError."""
    result: dict[int, bytes] = {}
    for tag, value in parse(data):
        if tag in result:
            raise TlvError(f"duplicate tag {tag:#04x}")
        result[tag] = value
    missing = [t for t in required if t not in result]
    if missing:
        raise TlvError("missing tag(s) " + ", ".join(f"{t:#04x}" for t in missing))
    return result


def parse_exact(data: bytes, tags: tuple[int, ...]) -> list[bytes]:
    """The values of exactly these tags in exactly this order, nothing missing, repeated or extra:
    the card protocol v2 fixes every field list, so any other shape is a malformed message."""
    items = parse(data)
    if tuple(t for t, _ in items) != tuple(tags):
        raise TlvError("expected tags " + " ".join(f"{t:02X}" for t in tags) + ", got "
                       + " ".join(f"{t:02X}" for t, _ in items))
    return [v for _, v in items]


def parse_one(data: bytes, tag: int) -> bytes:
    """Exactly one TLV with the given tag and nothing after it."""
    items = parse(data)
    if len(items) != 1 or items[0][0] != tag:
        raise TlvError(f"expected exactly one TLV with tag {tag:#04x}")
    return items[0][1]
