"""The city's end-to-end acknowledgements (and resend requests) for this device's messages.

An ack is a JWS compact token (typ ``ewarung-ack+jws``) signed by the central key, published
on ``ewarung/v1/devices/{device}/ack``::

    {"schema": "ewarung.ack/1", "device": "...", "acked_at": "...",
     "ids": ["<msg id>", ...], "ranges": [[first_seq, last_seq], ...]}

A resend request has the same shape with schema ``ewarung.resend/1`` and ``ranges`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

from pos.signing import BadSignature, Signer, canonical_json, jws_sign, jws_verify

ACK_TYP = "ewarung-ack+jws"
ACK_SCHEMA = "ewarung.ack/1"
RESEND_SCHEMA = "ewarung.resend/1"
MAX_IDS = 10_000


class AckRefused(ValueError):
    pass


@dataclass(frozen=True)
class Ack:
    schema: str
    device: str
    ids: list[str]
    ranges: list[tuple[int, int]]


def parse_ack(token: bytes, keys: dict, device_id: str) -> Ack:
    try:
        obj = jws_verify(token, keys, ACK_TYP).json()
    except BadSignature as exc:
        raise AckRefused(f"acknowledgement refused: {exc}") from None
    if obj.get("schema") not in (ACK_SCHEMA, RESEND_SCHEMA):
        raise AckRefused(f"acknowledgement refused: unknown schema {obj.get('schema')!r}")
    if obj.get("device") != device_id:
        raise AckRefused(f"acknowledgement refused: it is for device {obj.get('device')!r}")
    ids, ranges = obj.get("ids", []), obj.get("ranges", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > MAX_IDS:
        raise AckRefused("acknowledgement refused: ids must be a list of strings")
    out = []
    for r in ranges if isinstance(ranges, list) else [None]:
        if not (isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in r)
                and 1 <= r[0] <= r[1]):
            raise AckRefused(f"acknowledgement refused: bad range {r!r}")
        out.append((r[0], r[1]))
    return Ack(obj["schema"], device_id, ids, out)


def build_ack(device_id: str, acked_at: str, signer: Signer, ids: list[str] = (), ranges: list = (),
              schema: str = ACK_SCHEMA) -> bytes:
    """What the city publishes (the test city and the reference consumer use this)."""
    payload = {"schema": schema, "device": device_id, "acked_at": acked_at, "ids": list(ids),
               "ranges": [list(r) for r in ranges]}
    return jws_sign(canonical_json(payload), signer, ACK_TYP)
