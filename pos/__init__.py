"""E-Warung POS domain core.

Everything directly in this package is the domain core: pure Python, no kivy, pyscard,
escpos or paho imports (a test enforces it). The outer layers live in `pos.ui` (Kivy
screens), `pos.cli` (the `ewarung` command) and `pos.roots` (the composition roots, one per process).
"""

__version__ = "0.1.0"
