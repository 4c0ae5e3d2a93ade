"""The composition roots: one per process, the only code that knows which adapter serves which port.

- `counter`: `ewarung counter` and `ewarung demo` (the Kivy app, its session, reader and printer);
- `sync`: `ewarung sync` (the store-and-forward daemon);
- `central`: `ewarung central` (the city's consumer and publisher);
- `cli`: the one-shot commands (reprint, print-pending, end-of-day report, the scripted demo).
`appliance` and `keys` are what they share. Each builds from the device configuration. Nothing in
the core, pos/ui, hardware/, sync/ or firmware_config/ imports this package (the layering test
holds it); pos/cli calls it.
"""


class SetupError(RuntimeError):
    """Something the technician must fix before the appliance can run (the message says what)."""
