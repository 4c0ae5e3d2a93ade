pytest_plugins = ["tests.printer.printer_fixtures"]
