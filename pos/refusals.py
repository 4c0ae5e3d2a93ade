"""Why the counter says no: typed reasons with what the cashier should say and do.

Every refusal, whatever layer raises it, is one of these reasons, so that screens, receipts,
journal entries and events for the city speak the same words.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # card and household status
    CARD_REVOKED = "card_revoked"
    CARD_NOT_YET_VALID = "card_not_yet_valid"
    CARD_EXPIRED = "card_expired"
    CARD_FORGED = "card_forged"
    CARD_CLONED = "card_cloned"
    CARD_UNREADABLE = "card_unreadable"
    CARD_REMOVED = "card_removed"
    PIN_WRONG = "pin_wrong"
    PIN_BLOCKED = "pin_blocked"
    HOUSEHOLD_UNKNOWN = "household_unknown"
    HOUSEHOLD_REVOKED = "household_revoked"
    HOUSEHOLD_NOT_YET_VALID = "household_not_yet_valid"
    HOUSEHOLD_EXPIRED = "household_expired"
    REPRESENTATIVE_UNKNOWN = "representative_unknown"
    # entitlement
    ALLOWANCE_USED_UP = "allowance_used_up"
    OVER_ALLOWANCE = "over_allowance"
    ITEM_NOT_ELIGIBLE = "item_not_eligible"
    QUOTA_EXCEEDED = "quota_exceeded"
    EMPTY_BASKET = "empty_basket"
    # device risk policy
    LEDGER_MISSING = "ledger_missing"
    LEDGER_TOO_OLD = "ledger_too_old"
    LEDGER_EXPIRED = "ledger_expired"
    OFFLINE_CAP_REACHED = "offline_cap_reached"
    OVERRIDE_CAP_REACHED = "override_cap_reached"
    # voids and staff
    VOID_WINDOW_PASSED = "void_window_passed"
    ALREADY_VOIDED = "already_voided"
    REDEMPTION_UNKNOWN = "redemption_unknown"
    CASHIER_UNKNOWN = "cashier_unknown"
    CASHIER_PIN_WRONG = "cashier_pin_wrong"
    NOT_A_SUPERVISOR = "not_a_supervisor"


# (Bahasa Indonesia, English): what happened, then what to do next.
MESSAGES: dict[Reason, tuple[str, str]] = {
    Reason.CARD_REVOKED: (
        "Kartu ini sudah diblokir oleh Dinas Sosial. Tahan kartu; minta penerima menghubungi kelurahan.",
        "This card has been revoked by the city. Keep the card; ask the holder to contact the kelurahan office.",
    ),
    Reason.CARD_NOT_YET_VALID: (
        "Kartu ini belum berlaku. Minta penerima datang lagi pada tanggal berlakunya.",
        "This card is not valid yet. Ask the holder to come back from its start date.",
    ),
    Reason.CARD_EXPIRED: (
        "Masa berlaku kartu sudah habis. Minta penerima mengganti kartu di kelurahan.",
        "This card has expired. Ask the holder to renew it at the kelurahan office.",
    ),
    Reason.CARD_FORGED: (
        "Kartu tidak sah (tanda tangan penerbit salah). Jangan layani; laporkan lewat tombol Lapor.",
        "This card is not genuine (issuer signature invalid). Do not serve; report it with the Report button.",
    ),
    Reason.CARD_CLONED: (
        "Kartu gagal membuktikan keasliannya (kemungkinan kartu salinan). Jangan layani; laporkan.",
        "The card failed to prove it is genuine (possibly a copy). Do not serve; report it.",
    ),
    Reason.CARD_UNREADABLE: (
        "Kartu tidak terbaca. Cabut, bersihkan, lalu masukkan kembali kartu.",
        "The card could not be read. Pull it out, wipe the chip and insert it again.",
    ),
    Reason.CARD_REMOVED: (
        "Kartu dicabut sebelum selesai. Transaksi dibatalkan; masukkan kartu lagi untuk mulai.",
        "The card was pulled out before the end. Nothing was sold; insert the card to start again.",
    ),
    Reason.PIN_WRONG: (
        "PIN salah. Minta penerima mencoba lagi dengan hati-hati.",
        "Wrong PIN. Ask the holder to try again carefully.",
    ),
    Reason.PIN_BLOCKED: (
        "PIN terblokir karena terlalu banyak salah. Minta penerima membuka blokir di kelurahan.",
        "The PIN is blocked after too many wrong tries. The holder must unblock it at the kelurahan office.",
    ),
    Reason.HOUSEHOLD_UNKNOWN: (
        "Keluarga tidak ada di data penerima perangkat ini. Tunggu pembaruan data, atau laporkan masalah data.",
        "The household is not in this device's ledger. Wait for a ledger update, or flag a data problem.",
    ),
    Reason.HOUSEHOLD_REVOKED: (
        "Keluarga ini tidak lagi terdaftar sebagai penerima. Sarankan menghubungi kelurahan.",
        "This household is no longer a beneficiary. Suggest contacting the kelurahan office.",
    ),
    Reason.HOUSEHOLD_NOT_YET_VALID: (
        "Kepesertaan keluarga ini belum mulai. Minta datang lagi pada tanggal mulainya.",
        "This household's entitlement has not started yet. Ask them to come back from its start date.",
    ),
    Reason.HOUSEHOLD_EXPIRED: (
        "Kepesertaan keluarga ini sudah berakhir. Sarankan menghubungi kelurahan.",
        "This household's entitlement has ended. Suggest contacting the kelurahan office.",
    ),
    Reason.REPRESENTATIVE_UNKNOWN: (
        "Pengambil ini bukan wakil terdaftar keluarga. Hanya pemegang kartu atau wakil terdaftar yang boleh mengambil.",
        "This person is not a registered representative. Only the holder or a registered representative may collect.",
    ),
    Reason.ALLOWANCE_USED_UP: (
        "Bantuan bulan ini sudah habis dipakai. Bantuan berikutnya tersedia bulan depan.",
        "This month's allowance is used up. The next allowance is available next month.",
    ),
    Reason.OVER_ALLOWANCE: (
        "Total belanja melebihi sisa bantuan. Kurangi barang di keranjang.",
        "The basket is more than the remaining allowance. Take items out of the basket.",
    ),
    Reason.ITEM_NOT_ELIGIBLE: (
        "Barang ini tidak termasuk bahan pangan bantuan. Hanya barang di katalog yang boleh.",
        "This item is not an eligible staple food. Only catalog items may be given.",
    ),
    Reason.QUOTA_EXCEEDED: (
        "Jumlah barang melebihi jatah bulan ini. Kurangi jumlahnya.",
        "The quantity is over this month's quota for the item. Reduce the quantity.",
    ),
    Reason.EMPTY_BASKET: (
        "Keranjang masih kosong. Tambahkan barang dulu.",
        "The basket is empty. Add items first.",
    ),
    Reason.LEDGER_MISSING: (
        "Data penerima belum dimuat di perangkat. Sambungkan ke internet dan tunggu data selesai dimuat.",
        "No beneficiary ledger on this device yet. Connect to the network and wait for it to load.",
    ),
    Reason.LEDGER_TOO_OLD: (
        "Data penerima terlalu lama tidak diperbarui. Sambungkan perangkat ke internet agar data diperbarui.",
        "The beneficiary ledger is too old. Connect the device to the network so it can update.",
    ),
    Reason.LEDGER_EXPIRED: (
        "Data penerima sudah kedaluwarsa. Sambungkan perangkat ke internet agar data diperbarui.",
        "The beneficiary ledger has expired. Connect the device to the network so it can update.",
    ),
    Reason.OFFLINE_CAP_REACHED: (
        "Batas transaksi tanpa koneksi tercapai. Sambungkan perangkat ke internet untuk mengirim data.",
        "The offline limit is reached. Connect the device to the network so it can send its data.",
    ),
    Reason.OVERRIDE_CAP_REACHED: (
        "Batas layanan tanpa kartu bulan ini tercapai. Minta penerima membawa kartunya.",
        "The limit of card-less services this month is reached. Ask for the card.",
    ),
    Reason.VOID_WINDOW_PASSED: (
        "Transaksi ini sudah terlalu lama untuk dibatalkan. Hubungi petugas Dinas Sosial.",
        "This sale is too old to void at the counter. Contact the city's program office.",
    ),
    Reason.ALREADY_VOIDED: (
        "Transaksi ini sudah dibatalkan sebelumnya.",
        "This sale was already voided.",
    ),
    Reason.REDEMPTION_UNKNOWN: (
        "Transaksi tidak ditemukan di perangkat ini.",
        "No such sale on this device.",
    ),
    Reason.CASHIER_UNKNOWN: (
        "Kasir tidak dikenal. Pilih nama kasir dari daftar.",
        "Unknown cashier. Pick a name from the list.",
    ),
    Reason.CASHIER_PIN_WRONG: (
        "PIN kasir salah. Coba lagi.",
        "Wrong cashier PIN. Try again.",
    ),
    Reason.NOT_A_SUPERVISOR: (
        "Tindakan ini perlu PIN penyelia (supervisor).",
        "This needs a supervisor's PIN.",
    ),
}


def message(reason: Reason, language: str = "id") -> str:
    id_text, en_text = MESSAGES[reason]
    return en_text if language == "en" else id_text


class Refusal(Exception):
    """A rule said no. `detail` is for the journal and the technician, not the beneficiary."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)

    def message(self, language: str = "id") -> str:
        return message(self.reason, language)
