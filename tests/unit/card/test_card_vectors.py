"""The spec's test vectors (docs/card-protocol.md) hold for the reference applet and terminal."""

from __future__ import annotations

import re
from pathlib import Path

from hardware.card import apdu
from hardware.card.applet import Applet
from tests.unit.card import card_vectors as v

SPEC = Path(__file__).resolve().parents[3] / "docs" / "card-protocol.md"


def _spec() -> tuple[dict[str, str], list[tuple[bytes, bytes]]]:
    block = re.search(r"```vectors\n(.*?)```", SPEC.read_text(), re.S).group(1)
    facts, pairs, command = {}, [], None
    for line in block.splitlines():
        if line.startswith("> "):
            command = bytes.fromhex(line[2:])
        elif line.startswith("< "):
            pairs.append((command, bytes.fromhex(line[2:])))
        else:
            key, _, value = line.partition(": ")
            facts[key] = value
    return facts, pairs


def test_the_spec_block_is_what_the_applet_answers_byte_for_byte():
    facts, pairs = _spec()
    assert int(facts["card private scalar"], 16) == v.CARD_SCALAR
    assert bytes.fromhex(facts["lines digest"]) == v.SALE.lines_digest
    assert v.transcript() == pairs


def test_a_card_with_random_nonces_matches_all_but_the_signatures():
    _, pairs = _spec()
    applet, seen = Applet(v.card().card), []

    def transmit(command: bytes) -> bytes:
        answer = applet.process(command)
        seen.append((command, answer))
        return answer

    v.run(transmit)  # the client verifies every signature it gets
    assert [c for c, _ in seen] == [c for c, _ in pairs]
    assert [v.without_signatures(a) for _, a in seen] == [v.without_signatures(a) for _, a in pairs]
    assert [a for _, a in seen] != [a for _, a in pairs]


def test_the_terminal_sends_the_spec_commands_and_believes_the_spec_answers():
    facts, pairs = _spec()
    script = iter(pairs)

    def transmit(command: bytes) -> bytes:
        expected, answer = next(script)
        assert command == expected
        return answer

    out = v.run(transmit)
    assert next(script, None) is None
    assert out["before"] is None
    proof, after = out["proof"], out["after"]
    assert (proof.op, proof.counter, proof.transaction) == (apdu.OP_SPEND, 1, v.SALE)
    assert proof.digest == bytes.fromhex(facts["transaction digest"])
    assert (after.op, after.digest, after.transaction, after.challenge) == (
        apdu.OP_LAST_TX, proof.digest, v.SALE, bytes(range(64, 80)))
