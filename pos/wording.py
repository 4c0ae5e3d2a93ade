"""What the counter says, in one catalog: every code the core stores, worded in Bahasa Indonesia first
and English beside.

The core never stores a sentence: a refusal keeps its reason, a device fault its kind, the session's
notice a code and its arguments. Whoever shows it (the screens, the CLI, a receipt) words it here, in
the language of that moment, so a language switch rewords what is already on screen and a wording
change is one line in one file. Screen labels and buttons, which the core never names, stay in the
screens' gettext catalog (pos/ui/locale).
"""

from __future__ import annotations

from string import Formatter
from typing import Any

LANGUAGES = ("id", "en")

# Why the counter said no (keys: pos.refusals.Reason values): what happened, then what to do next.
REFUSALS: dict[str, tuple[str, str]] = {
    "card_revoked": (
        "Kartu ini sudah diblokir oleh Dinas Sosial. Tahan kartu; minta penerima ke kelurahan. "
        "Dinas sudah diberi tahu otomatis.",
        "This card has been blocked by the city. Keep the card; ask the holder to go to the kelurahan office. "
        "The city has been told automatically.",
    ),
    "card_not_yet_valid": (
        "Kartu ini belum berlaku. Minta penerima datang lagi pada tanggal berlakunya.",
        "This card is not valid yet. Ask the holder to come back from its start date.",
    ),
    "card_expired": (
        "Masa berlaku kartu sudah habis. Minta penerima mengganti kartu di kelurahan.",
        "This card has expired. Ask the holder to renew it at the kelurahan office.",
    ),
    "card_forged": (
        "Kartu tidak sah: kartu ini tidak dibuat oleh Dinas. Jangan layani; tahan kartu. "
        "Dinas sudah diberi tahu otomatis.",
        "This card is not genuine: the city did not make it. Do not serve; keep the card. "
        "The city has been told automatically.",
    ),
    "card_cloned": (
        "Kartu ini kemungkinan tiruan. Jangan layani; tahan kartu. Dinas sudah diberi tahu otomatis.",
        "This card is probably a copy. Do not serve; keep the card. The city has been told automatically.",
    ),
    "card_unreadable": (
        "Kartu tidak terbaca. Cabut, bersihkan, lalu masukkan kembali kartu.",
        "The card could not be read. Pull it out, wipe the chip and insert it again.",
    ),
    "card_removed": (
        "Kartu dicabut sebelum selesai. Transaksi dibatalkan; masukkan kartu lagi untuk mulai.",
        "The card was pulled out before the end. Nothing was sold; insert the card to start again.",
    ),
    "card_period_future": (
        "Kartu ini mencatat belanja pada bulan yang belum tiba. Jangan layani; minta penerima membawa kartu ke kelurahan.",
        "This card records spending in a month that has not come yet. Do not serve; ask the holder to take the card to the kelurahan office.",
    ),
    "pin_wrong": (
        "PIN salah. Minta penerima mencoba lagi dengan hati-hati.",
        "Wrong PIN. Ask the holder to try again carefully.",
    ),
    "pin_blocked": (
        "PIN terkunci karena terlalu sering salah. Minta penerima membuka kuncinya di kelurahan.",
        "The PIN is locked after too many wrong tries. The holder must unlock it at the kelurahan office.",
    ),
    "household_unknown": (
        "Keluarga ini tidak ada di daftar penerima perangkat ini. Tunggu daftar diperbarui, atau laporkan ke Dinas.",
        "This household is not on this device's list. Wait for the list to update, or report it to the city.",
    ),
    "household_revoked": (
        "Keluarga ini tidak lagi terdaftar sebagai penerima. Sarankan menghubungi kelurahan.",
        "This household is no longer a beneficiary. Suggest contacting the kelurahan office.",
    ),
    "household_not_yet_valid": (
        "Kepesertaan keluarga ini belum mulai. Minta datang lagi pada tanggal mulainya.",
        "This household's entitlement has not started yet. Ask them to come back from its start date.",
    ),
    "household_expired": (
        "Kepesertaan keluarga ini sudah berakhir. Sarankan menghubungi kelurahan.",
        "This household's entitlement has ended. Suggest contacting the kelurahan office.",
    ),
    "representative_unknown": (
        "Pengambil ini bukan wakil terdaftar keluarga. Hanya pemegang kartu atau wakil terdaftar yang boleh mengambil.",
        "This person is not a registered representative. Only the holder or a registered representative may collect.",
    ),
    "allowance_used_up": (
        "Bantuan bulan ini sudah habis dipakai. Bantuan berikutnya tersedia bulan depan.",
        "This month's allowance is used up. The next allowance is available next month.",
    ),
    "over_allowance": (
        "Total belanja melebihi sisa bantuan. Kurangi barang di keranjang.",
        "The basket is more than the remaining allowance. Take items out of the basket.",
    ),
    "item_not_eligible": (
        "Barang ini tidak termasuk bahan pangan bantuan. Hanya barang di katalog yang boleh.",
        "This item is not an eligible staple food. Only catalog items may be given.",
    ),
    "quota_exceeded": (
        "Jumlah barang melebihi jatah bulan ini. Kurangi jumlahnya.",
        "The quantity is over this month's quota for the item. Reduce the quantity.",
    ),
    "empty_basket": (
        "Keranjang masih kosong. Tambahkan barang dulu.",
        "The basket is empty. Add items first.",
    ),
    "ledger_missing": (
        "Daftar penerima belum ada di perangkat. Sambungkan ke internet dan tunggu daftar selesai dimuat.",
        "The list of households is not on this device yet. Connect to the internet and wait for it to load.",
    ),
    "ledger_too_old": (
        "Daftar penerima terlalu lama tidak diperbarui. Sambungkan perangkat ke internet agar daftar diperbarui.",
        "The list of households is too old. Connect the device to the internet so it can update.",
    ),
    "ledger_expired": (
        "Daftar penerima sudah kedaluwarsa. Sambungkan perangkat ke internet agar daftar diperbarui.",
        "The list of households has expired. Connect the device to the internet so it can update.",
    ),
    "offline_cap_reached": (
        "Batas transaksi tanpa koneksi tercapai. Sambungkan perangkat ke internet untuk mengirim data.",
        "The offline limit is reached. Connect the device to the network so it can send its data.",
    ),
    "override_cap_reached": (
        "Batas layanan tanpa kartu bulan ini tercapai. Minta penerima membawa kartunya.",
        "The limit of card-less services this month is reached. Ask for the card.",
    ),
    "void_window_passed": (
        "Transaksi ini sudah terlalu lama untuk dibatalkan. Hubungi petugas Dinas Sosial.",
        "This sale is too old to void at the counter. Contact the city's program office.",
    ),
    "already_voided": (
        "Transaksi ini sudah dibatalkan sebelumnya.",
        "This sale was already voided.",
    ),
    "redemption_unknown": (
        "Transaksi tidak ditemukan di perangkat ini.",
        "No such sale on this device.",
    ),
    "cashier_unknown": (
        "Kasir tidak dikenal. Pilih nama kasir dari daftar.",
        "Unknown cashier. Pick a name from the list.",
    ),
    "cashier_pin_wrong": (
        "PIN kasir salah. Coba lagi.",
        "Wrong cashier PIN. Try again.",
    ),
    "not_a_supervisor": (
        "Tindakan ini perlu PIN penyelia (supervisor).",
        "This needs a supervisor's PIN.",
    ),
    "not_at_counter": (
        "Nama ini tidak untuk berjualan di kasir. Pilih nama kasir dari daftar.",
        "This name does not sell at the counter. Pick a cashier's name from the list.",
    ),
    "staff_pin_wait": (
        "PIN salah terlalu sering. Coba lagi dalam {seconds} detik.",
        "Too many wrong PINs. Try again in {seconds} s.",
    ),
    "staff_locked": (
        "{name} terkunci karena PIN salah berkali-kali. Membuka kunci: di layar masuk pilih {name}, lalu "
        "seorang penyelia memilih namanya sendiri dan mengetik PIN-nya; atau teknisi: ewarung cashier unlock {id}.",
        "{name} is locked after too many wrong PINs. To unlock: on the sign-in screen pick {name}, then "
        "a supervisor picks their own name and types their PIN; or a technician: ewarung cashier unlock {id}.",
    ),
    "supervisor_pin_wrong": (
        "PIN penyelia salah. Alasan dan penyelia tetap terpilih: ketik PIN lagi.",
        "Wrong supervisor PIN. The reason and supervisor stay picked: type the PIN again.",
    ),
}

# Device faults (keys: the fault kind; printer kinds are pos.ports.PrinterFault kinds): what
# happened and what to do, the same words on the screen, in the CLI and in the log.
FAULTS: dict[str, tuple[str, str]] = {
    "reader_lost": (
        "Pembaca kartu tidak terhubung. Periksa kabel USB pembaca kartu; layar kembali sendiri setelah tersambung.",
        "The card reader is disconnected. Check the reader's USB cable; the screen comes back by itself once it "
        "is connected.",
    ),
    "card_not_answering": (
        "Kartu berhenti menjawab. Transaksi dibatalkan, tidak ada yang terjual. Cabut kartu, lalu masukkan kembali. "
        "Jika terjadi lagi, layani dengan Tanpa kartu (izin penyelia), alasan Kartu rusak.",
        "The card stopped answering. The sale is cancelled, nothing was sold. Pull the card out and insert it "
        "again. If it happens again, serve with No card (supervisor override), reason Card damaged.",
    ),
    "card_not_charged": (
        "Kartu tidak terpotong; tidak ada yang terjual. Jangan serahkan barang. Cabut kartu, lalu masukkan lagi "
        "untuk mulai dari awal.",
        "The card was not charged; nothing was sold. Do not hand over the goods. Take the card out and insert it "
        "again to start over.",
    ),
    "card_charge_unknown": (
        "Kartu lepas atau berhenti menjawab sebelum penjualan tersimpan; tidak ada yang terjual. Jangan serahkan "
        "barang. Masukkan kartu lagi: jika kartu sempat terpotong, perangkat melaporkannya ke Dinas, yang akan "
        "mengembalikannya.",
        "The card left or stopped answering before the sale was saved; nothing was sold. Do not hand over the "
        "goods. Insert the card again: if it was charged, the device reports it to the city, which credits it back.",
    ),
    "card_charged_not_sold": (
        "Kartu sudah terpotong, tetapi penjualan tidak tersimpan: tidak ada yang terjual. Jangan serahkan barang. "
        "Dinas akan mengembalikan jumlahnya kepada keluarga ini. Hentikan pelayanan dan hubungi teknisi.",
        "The card was charged but the sale could not be saved: nothing was sold. Do not hand over the goods. "
        "The city will credit the amount back to this household. Stop serving and call the technician.",
    ),
    "offline": (
        "Printer mati atau tidak tersambung. Nyalakan printer dan periksa kabelnya, lalu tekan Cetak Ulang.",
        "The printer is off or not connected. Switch it on, check its cable, then press Reprint.",
    ),
    "paper_out": (
        "Kertas printer habis. Pasang gulungan kertas baru, lalu tekan Cetak Ulang.",
        "The printer is out of paper. Load a new roll, then press Reprint.",
    ),
    "cover_open": (
        "Tutup printer terbuka. Tutup rapat, lalu tekan Cetak Ulang.",
        "The printer cover is open. Close it, then press Reprint.",
    ),
    "error": (
        "Printer bermasalah. Matikan dan nyalakan lagi printer, lalu tekan Cetak Ulang.",
        "The printer reported an error. Switch it off and on again, then press Reprint.",
    ),
    "storage": (
        "Penyimpanan perangkat bermasalah (kartu SD penuh, rusak atau hanya-baca). Tidak ada transaksi yang "
        "tercatat. Jangan lanjut melayani; hubungi teknisi.",
        "The device's storage failed (SD card full, failing or read-only). Nothing was sold. "
        "Stop serving and call the technician.",
    ),
    "internal": (
        "Terjadi kesalahan pada perangkat. Tidak ada transaksi yang tercatat. Coba lagi; jika berulang, "
        "hubungi teknisi.",
        "The device hit an internal error. Nothing was sold. Try again; if it happens again, call the technician.",
    ),
}

# What the cashier tried that the screen on display does not allow (the `action` of "not_possible_now").
ACTIONS: dict[str, tuple[str, str]] = {
    "action.sign_in": ("Masuk", "Signing in"),
    "action.sign_out": ("Keluar", "Signing out"),
    "action.choose_collector": ("Memilih pengambil", "Choosing who collects"),
    "action.submit_pin": ("Memeriksa PIN", "Checking the PIN"),
    "action.add": ("Menambah barang", "Adding an item"),
    "action.remove": ("Mengurangi barang", "Removing an item"),
    "action.to_confirm": ("Lanjut ke konfirmasi", "Going to confirm"),
    "action.back": ("Kembali", "Going back"),
    "action.cancel": ("Membatalkan", "Cancelling"),
    "action.confirm": ("Menyimpan", "Confirming"),
    "action.reprint": ("Mencetak ulang", "Reprinting"),
    "action.finish": ("Menyelesaikan", "Finishing"),
    "action.acknowledge": ("Menutup pesan", "Closing the message"),
    "action.open_history": ("Membuka riwayat", "Opening the history"),
    "action.void": ("Membatalkan transaksi", "Voiding"),
    "action.open_end_of_day": ("Membuka tutup hari", "Opening the end of day"),
    "action.print_end_of_day": ("Mencetak laporan tutup hari", "Printing the end of day"),
    "action.open_flag": ("Melaporkan masalah data", "Reporting a data problem"),
    "action.flag_problem": ("Melaporkan masalah data", "Reporting a data problem"),
    "action.open_override": ("Melayani tanpa kartu", "Serving without a card"),
    "action.start_override": ("Melayani tanpa kartu", "Serving without a card"),
    "action.open_technician": ("Membuka layar teknisi", "Opening the technician screen"),
    "action.close_technician": ("Menutup layar teknisi", "Closing the technician screen"),
    "action.test_printer": ("Tes printer", "Testing the printer"),
    "action.test_reader": ("Tes pembaca kartu", "Testing the reader"),
}

# The session's notices: one line under the screen saying what just happened or what to do.
NOTICES: dict[str, tuple[str, str]] = {
    "not_possible_now": ("{action} tidak bisa dilakukan sekarang.", "{action} is not possible now."),
    "internal_error": (
        "Terjadi kesalahan pada perangkat. Coba lagi; jika berulang, panggil teknisi.",
        "The device hit an internal error. Try again; if it happens again, call the technician.",
    ),
    "pick_name": ("Pilih nama Anda dulu.", "Pick your name first."),
    "pick_shift": ("Pilih giliran kerja.", "Pick a shift."),
    "sign_in_first": ("Masuk (login) dulu, lalu masukkan kartu.", "Sign in first, then insert the card."),
    "finish_screen_first": (
        "Selesaikan atau batalkan layar ini dulu, lalu masukkan kartu lagi.",
        "Finish or cancel what is on screen first, then insert the card again.",
    ),
    "card_pulled": (
        "Kartu dicabut: keranjang dikosongkan, tidak ada penjualan.",
        "The card was pulled out: the basket is emptied, nothing was sold.",
    ),
    "take_card_out": ("Cabut kartu dari pembaca.", "Take the card out of the reader."),
    "connect_reader_first": ("Sambungkan pembaca kartu dulu.", "Connect the card reader first."),
    "pin_format": ("PIN terdiri dari 4 sampai 8 angka.", "The PIN has 4 to 8 digits."),
    "charge_reported": (
        "Kartu ini pernah terpotong {amount} di perangkat ini tanpa penjualan tersimpan. Sudah dilaporkan ke "
        "Dinas (pesan no. {seq}); Dinas akan mengembalikannya kepada keluarga ini.",
        "This card was once charged {amount} at this counter with no sale saved. Reported to the city "
        "(message no. {seq}); the city will credit it back to this household.",
    ),
    "receipt_printed": ("Struk tercetak.", "Receipt printed."),
    "end_of_day_printed": ("Laporan tutup hari sudah dicetak.", "End-of-day report printed."),
    "void_needs_reason": ("Pilih alasan pembatalan.", "Give a reason for the void."),
    "sale_voided": (
        "Struk no. {no} dibatalkan. Kartu tetap mencatat {amount}; Dinas memutuskan penggantiannya.",
        "Receipt no. {no} is voided. The card still counts {amount}; the city decides on a refund.",
    ),
    "pick_problem": ("Pilih masalahnya.", "Pick what is wrong."),
    "type_household": (
        "Ketik nomor keluarga (di kartu atau surat keluarga).",
        "Type the household number (on the card or the family's letter).",
    ),
    "reported_to_city": (
        "Dilaporkan ke Dinas Sosial (pesan no. {seq}). Terima kasih.",
        "Reported to the city (message no. {seq}). Thank you.",
    ),
    "pick_override_reason": ("Pilih alasan tanpa kartu.", "Pick why there is no card."),
    "type_household_and_reason": (
        "Ketik nomor keluarga dan pilih alasan.",
        "Type the household number and pick a reason.",
    ),
    "staff_unlocked": (
        "Kunci {name} sudah dibuka. {name} bisa masuk lagi dengan PIN-nya.",
        "{name} is unlocked and can sign in again with their PIN.",
    ),
}

# Why a sale was voided (keys: `void.<reason>`, the reason code the void record keeps).
VOID_REASONS: dict[str, tuple[str, str]] = {
    "void.wrong_items": ("Barang salah", "Wrong items"),
    "void.wrong_quantity": ("Jumlah salah", "Wrong quantity"),
    "void.buyer_cancelled": ("Penerima batal", "Household changed its mind"),
    "void.cashier_mistake": ("Kasir keliru", "Cashier's mistake"),
}

# Notices that report a success: shown in the success colour, every other notice in the problem colour.
SUCCESSES = frozenset({"receipt_printed", "end_of_day_printed", "sale_voided", "reported_to_city"})

# Fixed lines of a printout: after a printer fault (CLI and log) and on every receipt.
PRINTOUT: dict[str, tuple[str, str]] = {
    "sale_saved": ("Transaksi sudah tersimpan.", "The sale is saved."),
    "partly_printed": (
        "Struk mungkin tercetak sebagian; cetak ulang akan bertanda SALINAN.",
        "The receipt may be partly printed; the reprint will be marked COPY.",
    ),
    "void_refund": (
        "Kartu tetap mencatat jumlah ini terpakai bulan ini, di toko mana pun. Pembatalan ini dikirim ke "
        "Dinas Sosial, yang memutuskan penggantiannya.",
        "The card still counts this amount as spent this month, at every shop. This void goes to the city, "
        "which decides on a refund.",
    ),
    "no_cash": (
        "Bantuan ini TIDAK DAPAT ditukar dengan uang tunai.",
        "This aid CANNOT be exchanged for cash.",
    ),
}

# A receipt's fixed labels (keys: `receipt.<label>`; the layouts pick them by label).
RECEIPT_LABELS: dict[str, tuple[str, str]] = {
    "receipt": ("STRUK BANTUAN PANGAN", "FOOD ASSISTANCE RECEIPT"),
    "void": ("PEMBATALAN TRANSAKSI", "SALE VOIDED"),
    "copy": ("*** SALINAN ***", "*** COPY ***"),
    "no": ("No", "No"),
    "device": ("Perangkat", "Device"),
    "cashier": ("Kasir", "Cashier"),
    "time": ("Waktu", "Time"),
    "card": ("Kartu", "Card"),
    "household": ("Keluarga", "Household"),
    "collector": ("Diambil oleh", "Collected by"),
    "holder": ("pemegang kartu", "card holder"),
    "representative": ("wakil terdaftar", "registered representative"),
    "period": ("Periode", "Period"),
    "total": ("TOTAL", "TOTAL"),
    "remaining": ("Sisa bantuan", "Remaining"),
    "quota": ("Sisa jatah", "Quota left"),
    "reason": ("Alasan", "Reason"),
    "override": ("TANPA KARTU (persetujuan penyelia)", "NO CARD (supervisor approval)"),
    "supervisor": ("Penyelia", "Supervisor"),
    "end_of_day": ("LAPORAN TUTUP HARI", "END OF DAY REPORT"),
    "sales": ("Transaksi", "Sales"),
    "voids": ("Pembatalan", "Voids"),
    "queued": ("Belum terkirim ke Dinas", "Not yet sent to the city"),
    "balance_after": ("Sisa saldo di kartu", "Balance on the card"),
}


def _merged(*tables: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """One key space: a code worded in two tables would make one of them a lie."""
    merged: dict[str, tuple[str, str]] = {}
    for table in tables:
        clash = merged.keys() & table.keys()
        if clash:
            raise ValueError(f"codes worded twice: {sorted(clash)}")
        merged.update(table)
    return merged


WORDING = _merged(REFUSALS, FAULTS, ACTIONS, NOTICES, VOID_REASONS, PRINTOUT,
                  {f"receipt.{key}": pair for key, pair in RECEIPT_LABELS.items()})


def say(code: str, language: str = "id", **args: Any) -> str:
    """The words for `code` in `language` (Bahasa Indonesia unless English is asked for).

    Like gettext, an unknown code comes back as itself, so a missing entry shows up on screen instead
    of crashing the counter. An argument that is itself a code (an action) is worded too.
    """
    pair = WORDING.get(code)
    text = code if pair is None else pair[1] if language == "en" else pair[0]
    if not args:
        return text
    worded = {k: say(v, language) if isinstance(v, str) and v in WORDING else v for k, v in args.items()}
    return text.format(**worded)


def is_success(code: str) -> bool:
    """Whether a notice reports something done (shown in the success colour, never like a problem)."""
    return code in SUCCESSES


def fault_message(kind: str, language: str = "id") -> str:
    """A device fault's words; a printer kind this catalog does not know reads as a printer error."""
    return say(kind if kind in FAULTS else "error", language)


def placeholders(text: str) -> set[str]:
    """The `{names}` a wording fills in: both languages of a code must ask for the same ones."""
    return {name for _, name, _, _ in Formatter().parse(text) if name}
