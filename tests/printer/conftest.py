"""Printer test fixtures (pytest_plugins is only allowed in the top-level conftest)."""

from tests.printer.printer_fixtures import (  # noqa: F401
    print_service_for,
    quota_sale,
    sale,
    virtual_printer,
)
