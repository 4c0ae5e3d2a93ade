"""hardware/printer: thermal receipt printers over python-escpos.

- layout.py   the receipt, void slip and end-of-day layouts, written once against escpos's Escpos API
- backends.py a small factory: the escpos backend (usb, serial, network, file, dummy) from config,
              and DLE EOT real-time status queries with a timeout
- adapter.py  EscposPrinter, the PrinterPort adapter (status check, one write per job, faults)
- decoder.py  a small ESC/POS decoder for exactly what layout.py emits (tests, the virtual printer)
- render.py   decoded receipts to PNG (Pillow + qrcode)
- emulator.py the virtual network printer (`ewarung printer emulate`)
"""
