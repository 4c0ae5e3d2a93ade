"""Every key a process trusts or signs with, loaded from the paths in the device configuration.

One loader for all of them, so a missing or unreadable key always stops the process with the same
kind of message: which file, and the `ewarung` command that installs it.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from firmware_config.config import Config
from hardware.card.certificate import key_id
from pos.roots import SetupError
from pos.signing import EcdsaSigner, load_private_key, load_public_key


def device_signer(config: Config) -> EcdsaSigner:
    """The device key that signs every message and receipt of this appliance."""
    path = config.key_path(config.keys.device_key)
    try:
        key = load_private_key(path.read_bytes())
    except FileNotFoundError:
        raise SetupError(
            f"device key {path} is missing: run `ewarung provision` (or `ewarung demo-data` for the demo)"
        ) from None
    except ValueError as exc:
        raise SetupError(f"device key {path} is not a P-256 private key in PEM: {exc}") from None
    return EcdsaSigner(key, config.device.id)


def _public_key(path: Path, role: str) -> ec.EllipticCurvePublicKey:
    try:
        return load_public_key(path.read_bytes())
    except FileNotFoundError:
        raise SetupError(f"{role} public key {path} is missing: install it with `ewarung provision`") from None
    except ValueError as exc:
        raise SetupError(f"{role} public key {path} is not a P-256 public key: {exc}") from None


def public_keys(config: Config, paths: list[Path], role: str) -> dict[str, ec.EllipticCurvePublicKey]:
    """Trusted public keys by key id, the file name without .pub.pem (how the city names its
    central and ledger keys in what it signs)."""
    keys = {}
    for p in paths:
        path = config.key_path(p)
        keys[path.name.removesuffix(".pem").removesuffix(".pub")] = _public_key(path, role)
    return keys


def issuer_public_keys(config: Config, *, installed_only: bool = False) -> dict[str, ec.EllipticCurvePublicKey]:
    """Card issuer keys by the key id card certificates name; the DEMO issuer too in demo mode.

    A configured key that is not installed stops a production counter: skipping it would refuse
    every card that issuer signed as forged, and report them so. `installed_only` (inspecting a
    card file, the demo) reads what is there.
    """
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for p in config.keys.issuer_public_keys:
        path = config.key_path(p)
        if not path.exists():
            if installed_only or config.demo is not None:
                continue
            raise SetupError(
                f"card issuer public key {path} is missing: cards it signed would be "
                "refused as forged. Install it with `ewarung provision --issuer-key FILE`, or remove it from "
                "keys.issuer_public_keys, then start again"
            )
        pub = _public_key(path, "card issuer")
        keys[key_id(pub)] = pub
    if config.demo is not None:
        from hardware.card.fake import demo_issuer_keys

        keys.update(demo_issuer_keys())
    return keys
