"""The in-process card reader and printer the unit tests drive (the demo's, from hardware/)."""

from hardware.card.fake import FakeCard, FakeReader
from hardware.printer.fake import FakePrinter

FakeCardReader = FakeReader
"""The session tests' name for it: a reader trusting the DEMO issuer, which signs every FakeCard."""

__all__ = ["FakeCard", "FakeCardReader", "FakePrinter"]
