"""Issuer public keys the terminal trusts, by key id (from config; the DEMO issuer in demo mode)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card.certificate import key_id
from pos.signing import load_public_key


def issuer_public_keys(config) -> dict[str, ec.EllipticCurvePublicKey]:
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for path in config.keys.issuer_public_keys:
        p = config.key_path(path)
        if p.exists():
            pub = load_public_key(p.read_bytes())
            keys[key_id(pub)] = pub
    if config.demo is not None:
        from pos.sample_city import demo_key

        pub = demo_key("issuer").public_key()
        keys[key_id(pub)] = pub
    return keys
