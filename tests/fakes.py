"""Test fakes for the card reader and printer ports (shared with the demo mode's devices)."""

from pos.ui.demo_devices import FakeCard, FakeCardReader, FakeCardSession, FakePrinter, demo_deck

__all__ = ["FakeCard", "FakeCardReader", "FakeCardSession", "FakePrinter", "demo_deck"]
