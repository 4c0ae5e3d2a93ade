"""The city side's broker connection options (`central serve`, `publish-ledger`, `hotlist`).

TLS with a client certificate (CN `central` in sync/broker/acl.conf) is what the documented broker
accepts; plaintext only to a broker on this machine, or with the loudly named lab option, as on a
device (firmware_config.config.MqttSection)."""

from __future__ import annotations

import argparse

from firmware_config.config import on_this_machine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The same four options on every command that talks to the broker."""
    parser.add_argument("--cafile", metavar="PEM", help="CA for TLS to the broker (default: the system's CAs)")
    parser.add_argument("--certfile", metavar="PEM", help="client certificate (the city's, CN central)")
    parser.add_argument("--keyfile", metavar="PEM", help="its private key")
    parser.add_argument("--insecure-plaintext-lab", action="store_true",
                        help="LAB ONLY: no TLS to a broker on another machine (household data in clear)")


def tls_options(args: argparse.Namespace, host: str) -> dict | None:
    """paho tls_set() keywords, or None for plaintext (loopback, or the lab option); SystemExit if
    plaintext was not asked for explicitly or a certificate lacks its key."""
    if (args.certfile is None) != (args.keyfile is None):
        raise SystemExit("ewarung: --certfile and --keyfile go together")
    if args.insecure_plaintext_lab:
        return None
    if on_this_machine(host) and not (args.cafile or args.certfile):
        return None
    return {"ca_certs": args.cafile, "certfile": args.certfile, "keyfile": args.keyfile}
