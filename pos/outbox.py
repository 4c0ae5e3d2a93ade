"""Writing sequenced, signed messages for the city into the outbox (inside the caller's transaction)."""

from __future__ import annotations

from pos import settings
from pos.db import OutboxMessage
from pos.device import DeviceIdentity
from pos.ids import new_id
from pos.messages import build_envelope, device_topic, sign_envelope
from pos.signing import Signer


def enqueue(
    kind: str, body: dict, *, device: DeviceIdentity, signer: Signer, created_at: str, seq: int | None = None
) -> OutboxMessage:
    """Sign and queue one message. Must run inside a write transaction (it takes a sequence)."""
    if seq is None:
        seq = settings.next_sequence()
    msg_id = new_id()
    envelope = build_envelope(kind, msg_id, device.device_id, seq, created_at, body)
    token = sign_envelope(envelope, signer)
    return OutboxMessage.create(
        seq=seq,
        msg_id=msg_id,
        kind=kind,
        topic=device_topic(device.device_id, kind),
        payload=token,
        created_at=created_at,
    )
