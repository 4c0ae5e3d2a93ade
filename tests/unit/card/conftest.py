"""Card test fixtures."""

from tests.card_fixtures import deck  # noqa: F401
