"""config.txt / cmdline.txt edits stay inside our block and tokens; hand edits survive."""

from __future__ import annotations

import pytest

from firmware_config.boot import BootSettings, apply_cmdline_txt, apply_config_txt
from tests.provision.conftest import PI_CMDLINE_TXT, PI_CONFIG_TXT


def test_block_appended_once_and_idempotent():
    s = BootSettings()
    once = apply_config_txt(PI_CONFIG_TXT, s)
    assert once.startswith(PI_CONFIG_TXT)
    assert apply_config_txt(once, s) == once
    block = once[once.index("# BEGIN ewarung") :]
    assert "dtparam=watchdog=on" in block and block.rstrip().endswith("# END ewarung")
    assert block.splitlines()[1] == "[all]"  # never inside a conditional section above


def test_hand_edits_around_the_block_survive_a_settings_change():
    s = BootSettings()
    text = "# mine\nhdmi_drive=2\n" + apply_config_txt(PI_CONFIG_TXT, s) + "[pi4]\nover_voltage=2\n"
    changed = apply_config_txt(text, BootSettings(display="hdmi", uart=True, rotation=90))
    assert changed.startswith("# mine\nhdmi_drive=2\n" + PI_CONFIG_TXT)
    assert changed.endswith("# END ewarung\n[pi4]\nover_voltage=2\n")
    block = changed[changed.index("# BEGIN ewarung") : changed.index("# END ewarung")]
    assert "hdmi_force_hotplug=1" in block and "enable_uart=1" in block and "vc4-kms-dsi-7inch" not in block
    assert changed.count("# BEGIN ewarung") == 1


def test_edits_inside_the_block_are_replaced():
    s = BootSettings()
    text = apply_config_txt(PI_CONFIG_TXT, s).replace("dtparam=watchdog=on", "dtparam=watchdog=off")
    assert "dtparam=watchdog=on" in apply_config_txt(text, s)


@pytest.mark.parametrize(
    "bad", ["# BEGIN ewarung\nx=1\n", "x=1\n# END ewarung\n", "# BEGIN ewarung\n# END ewarung\n# BEGIN ewarung\n# END ewarung\n"]
)
def test_broken_markers_are_refused(bad):
    with pytest.raises(ValueError, match="marker|unbalanced"):
        apply_config_txt(bad, BootSettings())


def test_cmdline_manages_only_our_tokens():
    s = BootSettings(rotation=180)
    out = apply_cmdline_txt(PI_CMDLINE_TXT.replace("quiet", "quiet consoleblank=600"), s)
    assert out.count("\n") == 1 and out.endswith("\n")
    tokens = out.split()
    assert tokens[:7] == PI_CMDLINE_TXT.split()
    assert "consoleblank=0" in tokens and "consoleblank=600" not in tokens
    assert "video=DSI-1:800x480@60,rotate=180" in tokens
    assert apply_cmdline_txt(out, s) == out
    added = out.strip() + " usbcore.autosuspend=-1\n"
    assert apply_cmdline_txt(added, s) == added


def test_cmdline_unrotated_leaves_the_display_mode_alone():
    out = apply_cmdline_txt(PI_CMDLINE_TXT, BootSettings(display="hdmi"))
    assert "video=" not in out and "consoleblank=0" in out
    rotated = apply_cmdline_txt(out, BootSettings(display="hdmi", rotation=90, width=1024, height=600))
    assert "video=HDMI-A-1:1024x600@60,rotate=90" in rotated.split()
    assert "video=" not in apply_cmdline_txt(rotated, BootSettings(display="hdmi"))


def test_cmdline_frees_the_uart_for_a_serial_printer():
    out = apply_cmdline_txt(PI_CMDLINE_TXT, BootSettings(uart=True))
    assert "console=serial0,115200" not in out and "console=tty1" in out


def test_empty_cmdline_refused():
    with pytest.raises(ValueError, match="empty"):
        apply_cmdline_txt("\n", BootSettings())
