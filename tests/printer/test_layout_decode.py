"""Unit: receipts rendered through escpos Dummy, decoded back, every field checked."""

from __future__ import annotations

import pytest

from hardware.printer import layout
from hardware.printer.adapter import receipt_bytes
from hardware.printer.decoder import Cut, DecodeError, decode, decode_one
from pos.db import Cashier, Redemption
from pos.money import format_rupiah as rp
from pos.receipt import RECEIPT_TYP, build_receipt
from pos.signing import jws_verify
from pos.wording import say


def _receipt(sale, device, signer, **kw):
    return build_receipt(sale.redemption_id, device=device, signer=signer, **kw)


@pytest.mark.parametrize("width", [58, 80])
def test_sale_receipt_every_field(sale, device, signer, width):
    from pos.printing import quotas_at  # noqa: F401

    r = _receipt(sale, device, signer)
    doc = decode_one(receipt_bytes(r, width_mm=width, job_id="job-123"))
    cols = layout.COLUMNS[width]
    assert doc.cut and doc.codepage == 0
    assert all(len(t) * ln.width <= cols for t, ln in zip(doc.texts, doc.lines, strict=True))
    red = Redemption.get_by_id(sale.redemption_id)
    name = doc.find(device.shop_name)
    assert name.bold and name.align == "center" and name.height == 2
    assert doc.find("Jl. Uji 1").align == "center"
    assert doc.find("STRUK BANTUAN PANGAN").bold
    no = doc.find(f"No {red.seq:06d}")
    assert "15-11-2026 10:00 WITA" in no.text  # 02:00 UTC is 10:00 WITA
    assert device.device_id in doc.find("Perangkat").text
    assert Cashier.get_by_id("kasir1").name in doc.find("Kasir").text
    card = doc.find("Kartu").text
    assert card.endswith("****" + red.card_id[-4:]) and red.card_id not in card
    assert red.household in doc.find("Keluarga").text
    assert f"Diambil oleh: {red.collector_name} (wakil terdaftar)" in doc.flat()
    assert "2026-11" in doc.find("Periode").text
    for ln in red.lines:  # quantity x unit price = amount, each under the item name
        idx = doc.texts.index(doc.find(ln.item_name).text)
        assert doc.texts[idx + 1].strip().startswith(f"{ln.qty} x {rp(ln.unit_price)}")
        assert doc.texts[idx + 1].endswith(rp(ln.amount))
    assert len(red.lines) == 3
    total = [ln for ln in doc.lines if ln.text.strip() == rp(red.total) or ln.text.startswith("TOTAL")]
    assert len(total) >= 1 and all(ln.bold for ln in total) and rp(red.total) in doc.text()
    assert f"Rp {sale.remaining_after:,}".replace(",", ".") in doc.find("Sisa bantuan").text
    assert say("no_cash", "id") in doc.flat()
    assert device.hotline in doc.text()
    assert "SALINAN" not in doc.text()
    (qr,) = doc.qr_codes
    assert qr.data == r.qr_token and qr.ec == "M" and qr.module == layout.QR_MODULE_DOTS[width]
    from pos.sample_city import demo_key

    claims = jws_verify(qr.data, {"EW-TEST-0001": demo_key("device").public_key()}, RECEIPT_TYP).json()
    assert claims["r"] == red.id and claims["n"] == red.seq and claims["t"] == red.total
    assert doc.find("Cetak job-123").align == "center"
    assert red.id in doc.joined()


def test_copy_void_and_english(sale, service, device, signer, artifacts):
    copy = decode_one(receipt_bytes(_receipt(sale, device, signer, copy=True)))
    assert copy.find("*** SALINAN ***").bold
    service.void(sale.redemption_id, "wrong_items", "kasir1", "spv1")
    void = decode_one(receipt_bytes(_receipt(sale, device, signer, void=True, language="en")))
    assert void.find("SALE VOIDED").bold
    assert void.find("Reason").text == "Reason: Wrong items"  # the code, worded in the slip's language
    assert void.find("-" + rp(sale.total)).bold
    assert say("no_cash", "en") in void.flat()
    assert void.find("Voids receipt No").text.endswith("000001")
    assert void.find("Void no").text.endswith("000002")
    from hardware.printer.render import save_png

    save_png(void, artifacts / "receipts" / "void-slip-en-58mm.png")
    save_png(copy, artifacts / "receipts" / "copy-salinan-58mm.png")


def test_quotas_printed(quota_sale, db, device, signer, print_service_for):
    from pos.db import PrintJob

    svc = print_service_for(None)
    job = PrintJob.get_by_id(quota_sale.print_job_id)
    doc = decode_one(receipt_bytes(svc.receipt_for(job)))
    quota_lines = [t for t in doc.texts if t.startswith("Sisa jatah")]
    assert quota_lines, doc.text()
    assert any("Beras" in t for t in quota_lines)


def test_transliteration_keeps_ascii():
    assert layout.to_ascii("Sité Ñoño – “ok” ✓") == 'Site Nono - "ok" ?'


def test_decoder_refuses_unknown_commands():
    with pytest.raises(DecodeError, match="unknown command ESC"):
        decode(b"\x1b@\x1bZ\x01")
    with pytest.raises(DecodeError, match="incomplete"):
        decode(b"\x1b@\x1d(k\x10\x00")


def test_decoder_is_incremental():
    from hardware.printer.decoder import Decoder, Line

    data = b"\x1b@\x1bE\x01Hello\n\x1dV\x00"
    dec = Decoder()
    items = []
    for i in range(len(data)):
        items += dec.feed(data[i : i + 1])
    assert items == [Line("Hello", bold=True), Cut()]



def test_non_ascii_names_are_transliterated_on_paper(sale, signer):
    from pos.device import DeviceIdentity

    dev = DeviceIdentity("EW-TEST-0001", "S", "Warung Bu Sité – Ñusa", "Jl. Ahmad Yani “Blok B”", hotline="Pengaduan ☎ 0541")
    data = receipt_bytes(build_receipt(sale.redemption_id, device=dev, signer=signer))
    doc = decode_one(data)
    assert doc.codepage == 0  # ESC t 0: CP437
    assert "Warung Bu Site - Nusa" in doc.text() and 'Jl. Ahmad Yani "Blok B"' in doc.text()
    assert "Pengaduan ? 0541" in doc.text()
    assert all(ch.isascii() for ch in doc.text())
