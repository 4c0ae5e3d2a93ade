"""The city's end-to-end acknowledgements and resend requests: one module for both sides.

The device parses them (`parse_ack`) and the city builds them (`build_ack`, `seq_ranges`), so the
contract's constants and the token's shape exist once.

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
RESEND_TYP = ACK_TYP  # the contract signs resend requests as ack-typed tokens
ACK_SCHEMA = "ewarung.ack/1"
RESEND_SCHEMA = "ewarung.resend/1"
MAX_IDS = 10_000


class AckRefused(ValueError):
    """An ack or resend request the device must not act on; the reason goes to the city as an event."""


@dataclass(frozen=True)
class Ack:
    """A checked ack: the device marks these ids and ranges acknowledged (or requeues them, for a resend)."""

    schema: str
    device: str
    ids: list[str]
    ranges: list[tuple[int, int]]


def parse_ack(token: bytes, keys: dict, device_id: str) -> Ack:
    """Only an ack signed by the city's key, for this device, in a known schema may drop a message
    from the outbox; anything else is refused whole, never half applied."""
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
    """What the city publishes; the reference consumer and the test cities build it here so the
    bytes a device receives are the ones `parse_ack` was written for."""
    payload = {"schema": schema, "device": device_id, "acked_at": acked_at, "ids": list(ids),
               "ranges": [list(r) for r in ranges]}
    return jws_sign(canonical_json(payload), signer, ACK_TYP)


def seq_ranges(seqs: list[int]) -> list[list[int]]:
    """Sequence numbers as the contract's inclusive ranges, [3, 1, 2, 7] -> [[1, 3], [7, 7]]: a
    resend request or an ack stays small however many messages it covers."""
    out: list[list[int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out
