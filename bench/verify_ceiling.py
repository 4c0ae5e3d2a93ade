"""The central consumer's irreducible cost: the rate at which ALL of this machine's cores verify the
signatures of the same redemption messages, and nothing else.

Per message, two ECDSA P-256 verifications: the device's ES256 signature over the JWS
header.payload (pos.signing.verify_raw) and the card's signature over the transaction the message
describes (the bytes hardware.card.evidence.signed_message rebuilds); per card certificate, once
per process as the consumer's CertificateCache does, the issuer's signature. Everything else
(base64, JSON, rebuilding the card's signed bytes, loading keys) is done before the clock starts.
One process per core, released together by a barrier; the rate is all messages over the span from
the first process's start to the last one's end.
"""

from __future__ import annotations

import multiprocessing
import os
import time

Job = tuple[str, bytes, bytes, bytes, bytes, bytes]  # device, signing input, raw r||s, certificate, card msg, DER


def signature_jobs(messages: list[tuple[str, bytes]]) -> list[Job]:
    """What each message's two signatures cover, taken apart before any clock starts."""
    import json

    from hardware.card.evidence import signed_message
    from pos.card_proof import redemption_evidence
    from pos.signing import b64url_decode

    jobs = []
    for topic, token in messages:
        header, payload, sig = token.split(b".")
        device = topic.split("/")[3]
        env = json.loads(b64url_decode(payload.decode("ascii")))
        ev = redemption_evidence(device, env["body"])
        jobs.append((device, header + b"." + payload, b64url_decode(sig.decode("ascii")), ev.certificate,
                     signed_message(ev), ev.signature))
    return jobs


def _worker(jobs: list[Job], pems: dict[str, bytes], issuer_pems: dict[str, bytes], barrier, out) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from hardware.card import certificate
    from pos.signing import load_public_key, verify_raw

    device_keys = {d: load_public_key(pem) for d, pem in pems.items()}
    issuers = {k: load_public_key(pem) for k, pem in issuer_pems.items()}
    parsed = {cert: certificate.parse(cert) for cert in {j[3] for j in jobs}}
    work = [(device_keys[d], data, sig, parsed[cert].card_public_key, card_msg, card_sig)
            for d, data, sig, cert, card_msg, card_sig in jobs]
    algorithm = ec.ECDSA(hashes.SHA256())
    barrier.wait()
    t0, cpu0 = time.perf_counter(), time.process_time()
    ok = all(certificate.verify(p, issuers[p.info.issuer_key_id]) for p in parsed.values())
    for key, data, sig, card_key, card_msg, card_sig in work:
        ok &= verify_raw(key, data, sig)
        card_key.verify(card_sig, card_msg, algorithm)  # raises on a bad signature
    out.put((t0, time.perf_counter(), ok, len(work), time.process_time() - cpu0))


def all_cores_rate(messages: list[tuple[str, bytes]], device_keys: list[tuple[str, str]], issuer_keys: dict,
                   processes: int | None = None) -> tuple[float, int, float]:
    """(messages per second with both signatures verified, processes used, CPU seconds per
    message): one process per core."""
    from pos.signing import public_pem

    processes = processes or os.cpu_count() or 1
    jobs = signature_jobs(messages)
    pems = {d: pem.encode("ascii") if isinstance(pem, str) else pem for d, pem in device_keys}
    issuer_pems = {k: public_pem(key) for k, key in issuer_keys.items()}
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    share = -(-len(jobs) // processes)
    procs = [ctx.Process(target=_worker, args=(jobs[i * share:(i + 1) * share], pems, issuer_pems, barrier, out))
             for i in range(processes)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(30)
    if not all(r[2] for r in results) or sum(r[3] for r in results) != len(jobs):
        raise RuntimeError("a signature of the benchmark's own messages did not verify: the messages are wrong")
    span = max(r[1] for r in results) - min(r[0] for r in results)
    return len(jobs) / span, processes, sum(r[4] for r in results) / len(jobs)
