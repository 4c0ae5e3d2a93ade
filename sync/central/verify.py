"""Verification of device messages as pure functions, so it can run in a worker process.

`Verifier.envelope()` does every check a sequenced message must pass before it may be stored
(JWS form, header typ/kid, ES256 signature by the topic's registered device key, envelope
fields, body shape) and raises BadSignature/ValueError with the reason; `content_problems()`
adds what the content fails on its own (the card's evidence, the arithmetic:
sync/central/evidence_checks.py), reasons to quarantine a message that is still stored.
`verify_batch()` runs both over a batch in a worker process (pyca/cryptography keeps the GIL
during ECDSA verify, so threads barely help; docs/scaling.md has the measurements), phase by
phase (`Verifier.check_batch`). Each check has a quick look for what an honest device sends and
a close one, the only one that words a refusal or a problem, for anything else.
The registry lookup (is the device registered and active?) stays with the caller, which owns
the database; the worker only gets the PEM of the registered key.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from datetime import datetime
from typing import NamedTuple

import msgspec

from pos.messages import MESSAGE_TYP, SEQUENCED_KINDS, schema_name
from pos.signing import (
    MAX_TOKEN_BYTES,
    BadSignature,
    b64url_decode,
    jws_peek,
    load_public_key,
    verify_raw,
)
from sync.central.evidence_checks import (
    EvidenceChecks,
    demo_issuer_keys,
    issuer_keys_from_pems,
    sale_moment,
    signed_verdict,
)

PHASED_JOBS = 256  # messages checked phase by phase together (Verifier.check_batch)


class Checked(NamedTuple):
    """A sequenced message whose device signature and shape verified (it may be stored and acked),
    with what its content failed on its own (card evidence, arithmetic): a message with problems
    is quarantined, never counted in the city's totals."""

    envelope: dict
    problems: tuple[str, ...] = ()
    at: float | None = None  # created_at as POSIX seconds, parsed once here (None: not a time with a zone)


class Verifier:
    """Caches parsed headers (constant per device), loaded public keys (per PEM) and verified card
    certificates; `issuer_keys` (by key id) are the card issuers the city trusts (default: DEMO)."""

    def __init__(self, issuer_keys: dict | None = None) -> None:
        self._headers: dict[bytes, dict] = {}
        self._keys: dict[str, object] = {}
        self.evidence = EvidenceChecks(demo_issuer_keys() if issuer_keys is None else issuer_keys)

    def key_for(self, pem: str):
        """A PEM loaded once: key loading costs more than a verification."""
        key = self._keys.get(pem)
        if key is None:
            if len(self._keys) > 100_000:
                self._keys.clear()
            key = self._keys[pem] = load_public_key(pem.encode("ascii"))
        return key

    def envelope(self, device_id: str, leaf: str, key, token: bytes) -> dict:
        """Every check a sequenced message must pass before it may be stored; raises with the reason to record."""
        return shaped(self.token(device_id, key, token), device_id, leaf)

    def check(self, device_id: str, leaf: str, key, token: bytes) -> Checked:
        """`envelope()` (raises for what may not be stored at all), then the content checks one
        message allows on its own (problems to quarantine it for)."""
        env = self.envelope(device_id, leaf, key, token)
        moment = sale_moment(env["created_at"])  # once, for the checks and for the write path
        return Checked(env, self.evidence.problems(device_id, leaf, env, moment), created_seconds(moment))

    def content_problems(self, device_id: str, leaf: str, env: dict) -> tuple[str, ...]:
        """What this message's content fails, judged from the message alone: the card's evidence of
        a sale or of a charge nothing was sold for, and a sale's arithmetic (evidence_checks)."""
        return self.evidence.problems(device_id, leaf, env, sale_moment(env.get("created_at")))

    def check_batch(self, jobs: list[tuple[str, str, bytes]], pems: dict[str, str]) -> list[tuple[bool, object]]:
        """`check` of each job ((True, Checked) or (False, reason), in order), in phases: every
        token's form, then every device signature one after another, then envelopes and the plain
        card sales' checks, then every card signature, so the signature verifications run back to
        back (faster than interleaved with the parsing). The same checks, calls and verdicts as
        `check`; tests/central/test_plain_card_sale.py compares them. A long batch goes in slices
        of PHASED_JOBS, so what the phases keep stays small."""
        if len(jobs) > PHASED_JOBS:
            return [v for n in range(0, len(jobs), PHASED_JOBS) for v in self.check_batch(jobs[n:n + PHASED_JOBS], pems)]
        out: list[tuple[bool, object]] = [(False, "")] * len(jobs)
        signed = []
        for n, (device_id, _leaf, token) in enumerate(jobs):
            try:
                signed.append((n, self.key_for(pems[device_id]), *self.signed_parts(device_id, token)))
            except (BadSignature, ValueError) as exc:
                out[n] = (False, str(exc))
        genuine = [verify_raw(key, signing_input, signature) for _n, key, signing_input, signature, _ in signed]
        cards = []
        for (n, _key, _input, _signature, payload), verified in zip(signed, genuine, strict=True):
            device_id, leaf, _token = jobs[n]
            try:
                if not verified:
                    raise BadSignature(_forged(device_id))
                env = shaped(envelope_of(payload), device_id, leaf)
            except (BadSignature, ValueError) as exc:
                out[n] = (False, str(exc))
                continue
            moment = sale_moment(env["created_at"])
            ready = self.evidence.plain_sale_ready(device_id, env["body"], moment) if leaf == "redemption" else None
            if type(ready) is tuple:
                cards.append((n, env, moment, ready))
            else:
                found = self.evidence.detailed_problems(device_id, leaf, env, moment) if ready is None else tuple(ready)
                out[n] = (True, Checked(env, found, created_seconds(moment)))
        verdicts = [signed_verdict(ready) for _n, _env, _moment, ready in cards]
        for (n, env, moment, _ready), found in zip(cards, verdicts, strict=True):
            if found is None:
                found = self.evidence.detailed_problems(jobs[n][0], jobs[n][1], env, moment)
            out[n] = (True, Checked(env, tuple(found), created_seconds(moment)))
        return out

    def token(self, device_id: str, key, token: bytes) -> dict:
        """jws_verify's checks on the hot path: the header is parsed once per distinct header and
        cached; the key is the registered key of the topic's device, and the kid must name it."""
        signing_input, signature, payload = self.signed_parts(device_id, token)
        if not verify_raw(key, signing_input, signature):
            raise BadSignature(_forged(device_id))
        return envelope_of(payload)

    def signed_parts(self, device_id: str, token: bytes) -> tuple[bytes, bytes, bytes]:
        """`token`'s checks before the signature (size, form, header, kid): the signing input, the
        signature's bytes and the payload part; raises BadSignature with the reason."""
        if not isinstance(token, bytes) or len(token) > MAX_TOKEN_BYTES:
            raise BadSignature(f"token is not bytes or larger than {MAX_TOKEN_BYTES} bytes")
        parts = token.split(b".")
        if len(parts) != 3 or not all(parts):
            raise BadSignature("not a JWS compact token (three base64url parts joined by dots)")
        header = self._headers.get(parts[0])
        if header is None:
            header = jws_peek(token)
            if header.get("typ") != MESSAGE_TYP:
                raise BadSignature(f"expected a {MESSAGE_TYP} token, got {header.get('typ')!r}")
            if len(self._headers) > 100_000:
                self._headers.clear()
            self._headers[parts[0]] = header
        if header["kid"] != device_id:
            raise BadSignature(f"signed with kid {header['kid']!r}, not by device {device_id}")
        return token[:len(parts[0]) + 1 + len(parts[1])], b64url_decode(parts[2]), parts[1]


def _forged(device_id: str) -> str:
    return f"signature by {device_id!r} does not verify (tampered or forged)"


def shaped(env: dict, device_id: str, leaf: str) -> dict:
    """The envelope of a verified token, if it passes every check a sequenced message must pass
    before it may be stored; raises with the reason to record (`_checked_envelope`'s words)."""
    if _plain_envelope(env, device_id, leaf):
        return env
    return _checked_envelope(env, device_id, leaf)


_decode_json = msgspec.json.Decoder().decode


def envelope_of(payload_part: bytes) -> dict:
    """A JWS payload part (base64url) as the envelope object. The one parser of device messages on
    the city's write path, in the verify workers and the consumer thread alike, so both read exactly
    the same values; strict: invalid UTF-8, NaN, trailing bytes and numbers beyond a double's range
    are refused. Integers keep their exact value; of a repeated key, the last counts (as in json)."""
    try:
        env = _decode_json(b64url_decode(payload_part))
    except msgspec.DecodeError as exc:
        raise BadSignature(f"payload is not JSON: {exc}") from None
    except RecursionError:
        raise BadSignature("payload JSON nested too deep") from None
    if not isinstance(env, dict):
        raise BadSignature("payload is not a JSON object")
    return env


def _plain_envelope(env: dict, device_id: str, leaf: str) -> bool:
    """True when the envelope passes every check of `_checked_envelope` on a quick look (exact types,
    as the parser makes them; a redemption's body in one pass); raises what check_body raises for
    another kind's body. False says only "look closer": `_checked_envelope` then decides, and
    words the refusal."""
    try:  # a missing key: KeyError, and a closer look
        ident, seq, body, schema = env["id"], env["seq"], env["body"], _SCHEMAS[leaf]
        if not (env["device"] == device_id and env["schema"] == schema and type(ident) is str
                and 0 < len(ident) <= 64 and type(seq) is int and seq >= 1 and type(body) is dict
                and type(env["created_at"]) is str):
            return False
        if leaf != "redemption":
            check_body(leaf, body)
            return True
        lines = body["lines"]
        if not (type(body["redemption_id"]) is str and type(body["household"]) is str
                and type(body["period"]) is str and type(body["total"]) is int and type(lines) is list):
            return False
        for ln in lines:
            if type(ln) is not dict or type(ln["item"]) is not str or type(ln["qty"]) is not int:
                return False
    except KeyError:
        return False
    return True


_SCHEMAS = {leaf: schema_name(leaf) for leaf in SEQUENCED_KINDS}
"""The schema of each sequenced kind (schema_name's, computed once) for the quick look; any other
leaf is looked at closely."""


def _checked_envelope(env: dict, device_id: str, leaf: str) -> dict:
    """Every check a sequenced message must pass before it may be stored, one by one; raises with
    the reason to record."""
    if env.get("device") != device_id:
        raise ValueError(f"envelope device {env.get('device')!r} does not match topic device {device_id}")
    if env.get("schema") != schema_name(leaf):
        raise ValueError(_wrong_schema(leaf, env.get("schema")))
    if not isinstance(env.get("id"), str) or not env["id"] or len(env["id"]) > 64:
        raise ValueError("envelope id must be a non-empty string")
    if not isinstance(env.get("seq"), int) or isinstance(env["seq"], bool) or env["seq"] < 1:
        raise ValueError("envelope seq must be a positive integer")
    if not isinstance(env.get("body"), dict) or not isinstance(env.get("created_at"), str):
        raise ValueError("envelope needs a body object and created_at")
    check_body(leaf, env["body"])
    return env


def created_seconds(moment: datetime | None) -> float | None:
    """A message's created_at (parsed by sale_moment) as POSIX seconds, None for no time: parsed
    once, in the verify worker, so the write path compares numbers instead of parsing text again."""
    try:
        return moment.timestamp() if moment is not None else None
    except (OverflowError, ValueError):
        return None


def _wrong_schema(leaf: str, schema: object) -> str:
    """Why an envelope's schema is refused, with what to do about it."""
    if leaf == "redemption" and schema == "ewarung.redemption/1":
        return ("schema ewarung.redemption/1 carries no card proof and is no longer accepted: update the "
                "device's software (it must send ewarung.redemption/2); the device resends it once updated")
    return f"schema {schema!r} on a {leaf} topic; expected {schema_name(leaf)}"


def check_body(kind: str, body: dict) -> None:
    """The body fields the storage reads must be there and typed, so a signed but malformed message is
    refused, not half stored."""
    if kind == "redemption":
        _need(kind, body, _REDEMPTION_FIELDS)
        lines = body.get("lines")
        if type(lines) is not list or not all(
            type(ln) is dict and type(ln.get("item")) is str and isinstance(ln.get("qty"), int) for ln in lines
        ):
            raise ValueError("redemption body needs lines [{item, qty, ...}]")
    elif kind == "void":
        _need(kind, body, _VOID_FIELDS)


_REDEMPTION_FIELDS = (("redemption_id", str), ("household", str), ("period", str), ("total", int))
_VOID_FIELDS = (("void_id", str), ("redemption_id", str))


def _need(kind: str, body: dict, fields: tuple[tuple[str, type], ...]) -> None:
    """Each field present with exactly its JSON type (a bool is not an int; the parser makes no
    subclasses, so the exact type is the test)."""
    for name, typ in fields:
        if type(body.get(name)) is not typ:
            raise ValueError(f"{kind} body needs {name} ({typ.__name__})")


_worker: Verifier | None = None
_worker_issuers: tuple[str, ...] | None = None
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_CHECK_S = 1.0


def die_with_parent(parent_pid: int) -> None:
    """A worker's initializer: end this worker when the consumer that started it ends, however it
    ends. A worker waits on a queue whose writing end it holds itself, so a SIGKILLed consumer
    would otherwise leave it running forever (with or without systemd). On Linux the kernel sends
    SIGKILL when the parent goes; everywhere a thread also checks the parent pid, which also covers
    a parent that died before this ran."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watcher below still ends it
    if os.getppid() != parent_pid:
        os._exit(0)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def verify_batch(jobs: list[tuple[str, str, bytes]], pems: dict[str, str],
                 issuers: tuple[str, ...] | None = None) -> list[tuple[bool, object]]:
    """In a worker process: [(device, leaf, token)] -> [(True, Checked) | (False, reason)], in order.
    `pems` holds the registered key of every device in `jobs` (the caller checked the registry);
    `issuers` the PEMs of the card issuer keys the city trusts (None: the DEMO issuer). The worker's
    Verifier, with its caches, lives as long as the issuers stay the same."""
    global _worker, _worker_issuers
    if _worker is None or issuers != _worker_issuers:
        _worker = Verifier(None if issuers is None else issuer_keys_from_pems(issuers))
        _worker_issuers = issuers
    return _worker.check_batch(jobs, pems)
