"""The city's composition root (`ewarung central`): its signing keys and the consumer on the broker.

The city runs no device configuration: what it needs comes from the command line, so these take
plain values (pos/cli/central_cmd.py parses them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pos.clock import SystemClock
from pos.signing import EcdsaSigner, load_private_key, load_public_key

if TYPE_CHECKING:  # pragma: no cover
    from sync.central.consumer import MqttRunner


def signer(path: str | Path | None, role: str) -> EcdsaSigner:
    """The city's `role` key (central: acks; ledger: updates) from PEM, else the DEMO key, said
    loudly: a city that forgot --key must not sign real updates with a public key."""
    from pos.sample_city import demo_key

    if path:
        try:
            return EcdsaSigner(load_private_key(Path(path).read_bytes()), role)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"ewarung: cannot load the {role} key {path}: {exc}") from None
    print(f"ewarung: WARNING: signing with the DEMO {role} key (pass --key for a real city)", file=sys.stderr)
    return EcdsaSigner(demo_key(role), role)


def issuer_keys(paths: Sequence[str | Path] | None) -> dict:
    """The card issuers' public keys (PEM files) by the key id their certificates name, else the
    DEMO issuer's, said loudly: a city that forgot --issuer-key would believe cards anyone can make."""
    from hardware.card.certificate import key_id
    from hardware.card.fake import demo_issuer_keys

    if not paths:
        print("ewarung: WARNING: believing cards of the DEMO issuer (pass --issuer-key for a real city)",
              file=sys.stderr)
        return demo_issuer_keys()
    keys = {}
    for path in paths:
        try:
            key = load_public_key(Path(path).read_bytes())
        except (OSError, ValueError) as exc:
            raise SystemExit(f"ewarung: cannot load the issuer key {path}: {exc}") from None
        keys[key_id(key)] = key
    return keys


def consumer_runner(key: str | None, host: str, port: int, *, client_id: str, group: str | None, batch_max: int,
                    gap_retry: timedelta, on_batch: Callable, tls: dict | None, username: str | None,
                    password: str | None, city: str, ledger_key: str | None = None,
                    issuer_key_files: Sequence[str | Path] | None = None) -> MqttRunner:
    """The reference consumer, signing acks with the central key and the snapshots and confirmed-spending
    deltas it publishes with the ledger key, believing cards of the given issuers, on its MQTT
    runner (paho loads here)."""
    from sync.central.consumer import CentralConsumer, MqttRunner
    from sync.central.verify_pool import calm_collector

    calm_collector()  # this process is the consumer's: its collector stays out of the batches
    consumer = CentralConsumer(signer(key, "central"), SystemClock(), issuer_keys=issuer_keys(issuer_key_files))
    return MqttRunner(consumer, host, port, client_id=client_id, group=group, batch_max=batch_max,
                      gap_retry=gap_retry, on_batch=on_batch, tls=tls, username=username, password=password,
                      city=city, ledger_signer=signer(ledger_key, "ledger"))
