"""Messages for the city: topic names and the signed envelope (see docs/mqtt-contract.md).

Every message a device sends in sequence (redemption, void, event) is a JWS compact token
whose payload is canonical JSON::

    {"schema": "ewarung.redemption/2", "id": "<uuid7>", "device": "<device id>",
     "seq": <per-device sequence>, "created_at": "<ISO UTC>", "body": {...}}

`id` is the idempotency key; `seq` counts up by one across all of a device's sequenced
messages, so a consumer sees a gap as a missing number.
"""

from __future__ import annotations

from pos.signing import Signer, canonical_json, jws_sign

TOPIC_ROOT = "ewarung/v1"
MESSAGE_TYP = "ewarung-msg+jws"
SCHEMA_VERSION = 1
SCHEMA_VERSIONS = {"redemption": 2}
"""Kinds past version 1: a redemption/2 carries the card's proof (pos.card_proof); /1 is no longer sent."""

SEQUENCED_KINDS = ("redemption", "void", "event")


def device_topic(device_id: str, leaf: str) -> str:
    """Topics a device publishes to (and its own downlink `ack`/`resend`)."""
    if "/" in device_id or "+" in device_id or "#" in device_id:
        raise ValueError(f"device id {device_id!r} must not contain / + or #")
    return f"{TOPIC_ROOT}/devices/{device_id}/{leaf}"


def ledger_topic(city: str, leaf: str) -> str:
    """Ledger broadcasts from the city: snapshot, delta, hotlist."""
    return f"{TOPIC_ROOT}/ledger/{city}/{leaf}"


def schema_name(kind: str) -> str:
    """The versioned schema id every envelope carries, so a
    consumer can reject kinds or versions it does not know."""
    return f"ewarung.{kind}/{SCHEMA_VERSIONS.get(kind, SCHEMA_VERSION)}"


def build_envelope(kind: str, msg_id: str, device_id: str, seq: int, created_at: str, body: dict) -> dict:
    """The payload every sequenced message shares (schema, idempotency id,
    device, sequence, time), so the city can drop duplicates and see gaps."""
    return {
        "schema": schema_name(kind),
        "id": msg_id,
        "device": device_id,
        "seq": seq,
        "created_at": created_at,
        "body": body,
    }


def sign_envelope(envelope: dict, signer: Signer) -> bytes:
    """The envelope as the JWS token that goes into the outbox
    and onto the wire, signed with the device key."""
    return jws_sign(canonical_json(envelope), signer, MESSAGE_TYP)
