"""A wedge between the reader and the card, as its own process: the attack of issue #16 on the
card's SPEND, played on the real PC/SC stack.

vpcd (inside pcscd) listens for cards on 127.0.0.1:35963+slot. The wedge listens on [::1] at the
same port (vpcd binds IPv4 only), so an unmodified `ewarung card insert CARD --host ::1` connects to
the wedge, and the wedge connects on to vpcd as if it were the card. Every frame is relayed both
ways, except the first SPEND command (80 D6), which the wedge handles as told:

  --swallow command   the card never sees the SPEND (its record stays as it was);
  --swallow answer    the card gets the SPEND and charges itself; its answer goes nowhere;
  --swallow none      the card gets a SPEND whose amount the wedge lowered to Rp 1 (the rest as the
                      terminal sent it) and its answer is relayed: will the terminal take a proof
                      of a cheaper sale than its own?
then
  --then ok           the reader hears a bare 9000, as if the card had said yes;
  --then error        the reader hears 6F00, and later commands are relayed again (the terminal
                      may read the card's last transaction back);
  --then pull         both connections are cut: the card is gone from the reader.

Each action is written as one line to --log, so a test knows the wedge really fired.

    python -m tests.central.card_wedge --slot 0 --swallow answer --then error --log wedge.log
"""

from __future__ import annotations

import argparse
import contextlib
import select
import socket
import struct
import sys
from pathlib import Path

from hardware.card.vpcd import BASE_PORT, CTRL_ATR, _recv_exact

SPEND = (0x80, 0xD6)


def read_frame(sock: socket.socket) -> bytes:
    """One vpcd frame (2-byte big-endian length, then the bytes)."""
    (length,) = struct.unpack(">H", _recv_exact(sock, 2))
    return _recv_exact(sock, length) if length else b""


def send_frame(sock: socket.socket, frame: bytes) -> None:
    """Write one vpcd frame."""
    sock.sendall(struct.pack(">H", len(frame)) + frame)


def answered(frame: bytes) -> bool:
    """Does the card answer this frame? APDUs and the ATR request do; power controls do not."""
    return len(frame) != 1 or frame[0] == CTRL_ATR


class Wedge:
    """Relays one card's frames between vpcd and the card, and strikes once at the first SPEND."""

    def __init__(self, slot: int, swallow: str, then: str, log: Path | None) -> None:
        self.slot, self.swallow, self.then, self.log = slot, swallow, then, log
        self.struck = False

    def note(self, line: str) -> None:
        """Say what the wedge did, for the test that set it up."""
        if self.log is not None:
            with self.log.open("a") as fh:
                fh.write(line + "\n")

    def run(self) -> None:
        """Wait for the card, connect to vpcd as that card, relay until either side closes."""
        server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("::1", BASE_PORT + self.slot))
        server.listen(1)
        self.note("listening")
        card, _ = server.accept()
        server.close()
        reader = socket.create_connection(("127.0.0.1", BASE_PORT + self.slot), timeout=5)
        reader.settimeout(None)
        for s in (card, reader):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.note("relaying")
        try:
            self.relay(reader, card)
        except (ConnectionError, OSError) as exc:
            self.note(f"closed: {exc}")
        finally:
            for s in (card, reader):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def relay(self, reader: socket.socket, card: socket.socket) -> None:
        """vpcd speaks first (it is the reader); the card only ever answers, so the card's side
        becoming readable between commands means it was pulled: the wedge then lets vpcd know."""
        while True:
            ready, _, _ = select.select([reader, card], [], [])
            if card in ready:
                return
            frame = read_frame(reader)
            if not self.struck and len(frame) >= 4 and (frame[0], frame[1]) == SPEND:
                self.struck = True
                if not self.strike(frame, reader, card):
                    return
                continue
            send_frame(card, frame)
            if answered(frame):
                send_frame(reader, read_frame(card))

    def strike(self, frame: bytes, reader: socket.socket, card: socket.socket) -> bool:
        """Handle the SPEND as told; False when the card is to be cut off."""
        if self.swallow == "none":
            send_frame(card, cheaper(frame))
            send_frame(reader, read_frame(card))
            self.note("lowered the SPEND amount to 1 and relayed the card's answer")
            return True
        if self.swallow == "answer":
            send_frame(card, frame)
            answer = read_frame(card)
            self.note(f"swallowed the SPEND answer (status {answer[-2:].hex()})")
        else:
            self.note("swallowed the SPEND command")
        if self.then == "pull":
            self.note("cut the card off")
            return False
        send_frame(reader, bytes.fromhex("9000" if self.then == "ok" else "6F00"))
        self.note(f"answered {'9000' if self.then == 'ok' else '6F00'}")
        return True


def cheaper(command: bytes) -> bytes:
    """The SPEND command with the template's amount (tag D9) set to 1: what the card then signs."""
    from hardware.card import apdu, tlv, transaction

    cmd = apdu.decode_command(command)
    challenge, template = tlv.parse_exact(cmd.data, (apdu.T_CHALLENGE, apdu.T_TX_TEMPLATE))
    fields = tlv.parse(template)
    fields = [(tag, (1).to_bytes(4, "big") if tag == apdu.T_AMOUNT else value) for tag, value in fields]
    transaction.parse_template(tlv.encode_all(fields))  # still a template the card accepts
    data = tlv.encode(apdu.T_CHALLENGE, challenge) + tlv.encode(apdu.T_TX_TEMPLATE, tlv.encode_all(fields))
    return apdu.Command(cmd.cla, cmd.ins, cmd.p1, cmd.p2, data, cmd.le).encode()


def main(argv: list[str] | None = None) -> int:
    """Run one wedge until its card or the reader goes away."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--slot", type=int, default=0, choices=[0, 1])
    p.add_argument("--swallow", choices=["command", "answer", "none"], required=True)
    p.add_argument("--then", choices=["ok", "error", "pull", "relay"], required=True)
    p.add_argument("--log", type=Path)
    args = p.parse_args(argv)
    Wedge(args.slot, args.swallow, args.then, args.log).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
