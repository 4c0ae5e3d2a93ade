"""E-Warung POS: point-of-sale appliance for Samarinda City's SSN food-assistance program."""

from setuptools import find_packages, setup

setup(
    name="ewarung-pos",
    version="0.1.0",
    description="Raspberry Pi point-of-sale appliance for E-Warung shops (SSN food assistance)",
    python_requires=">=3.11",
    packages=find_packages(include=["pos*", "hardware*", "firmware_config*", "sync*"]),
    package_data={"": ["*.json", "*.toml", "*.po", "*.mo", "*.kv", "*.sql"]},
    include_package_data=True,
    # systemd unit templates, rendered by `ewarung provision` (firmware_config.units)
    data_files=[
        ("share/ewarung/systemd", ["systemd/ewarung-sync.service", "systemd/ewarung-counter.service", "systemd/ewarung-central.service"]),
        ("share/ewarung/systemd/system.conf.d", ["systemd/system.conf.d/ewarung-watchdog.conf"]),
    ],
    install_requires=[
        "peewee>=3.17,<5",
        "paho-mqtt>=2.1,<3",
        "pyscard>=2.2,<3",
        "python-escpos>=3.1,<4",
        "pyserial>=3.5",  # escpos Serial backend
        "pyusb>=1.2",  # escpos Usb backend
        "kivy>=2.3,<2.4",
        "cryptography>=42",
        "msgspec>=0.18,<1",
        "pybase64>=1.3,<2",  # base64url of every message the city verifies
        "qrcode>=7.4",
        "pillow>=10",
        "tzdata",
        "jsonschema>=4.20",
        "tqdm>=4.66",
        "psycopg2-binary>=2.9",
    ],
    extras_require={
        "test": ["pytest>=8", "hypothesis>=6.100", "pytest-timeout>=2.3", "ruff>=0.5", "fusepy>=3.0"],
    },
    entry_points={"console_scripts": ["ewarung = pos.cli.main:main"]},
)
