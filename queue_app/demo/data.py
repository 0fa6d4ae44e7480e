"""Demo network data. Names, services and hours as an Indonesian bank would have them."""

from itertools import product

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

WEEKDAY_HOURS = [["08:00", "15:00"]]
SATURDAY_HOURS = [["08:00", "12:00"]]


def hours(saturday=True):
    week = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), WEEKDAY_HOURS)
    week["sat"] = SATURDAY_HOURS if saturday else []
    week["sun"] = []
    return week


# counters' plans (`Counter.plan`): the lunch break (istirahat) is staggered in two 30-minute
# shifts, 12:00-12:30 and 12:30-13:00, so that a service served by two counters or more always
# keeps one staffed (`lunch_shifts`). On Friday the counters of the first shift go to the
# Friday prayer (11:30-13:00) in Indonesia and the others take their break after them
# (13:00-13:30). Saturday is a half day without a break. The estimated waits count with them.
LUNCH_SHIFTS = (("12:00", "12:30"), ("12:30", "13:00"))
FRIDAY_PRAYER = ("11:30", "13:00")
FRIDAY_LATE_LUNCH = ("13:00", "13:30")


def lunch_shifts(counters) -> list[int]:
    """The lunch shift (0 or 1) of each of a branch's `[(name, [service codes])]`: the split
    that leaves the fewest services without a staffed counter in either shift, then the most
    even one (a branch has a handful of counters: every split is tried)."""
    best = None
    for split in product((0, 1), repeat=len(counters)):
        uncovered = 0
        for shift in (0, 1):
            staffed = {c for s, (_n, codes) in zip(split, counters, strict=True) if s != shift
                       for c in codes}  # fmt: skip
            uncovered += len({c for _n, codes in counters for c in codes} - staffed)
        score = (uncovered, abs(len(split) - 2 * sum(split)), split)
        best = score if best is None or score < best else best
    return list(best[2]) if best else []


def counter_plan(shift: int, country: str = "ID") -> dict:
    """The demo plan of a counter of lunch shift `shift` (0 or 1)."""
    plan = {day: {"breaks": [list(LUNCH_SHIFTS[shift])]} for day in WEEKDAYS[:5]}
    if country == "ID":
        plan["fri"] = {"breaks": [list(FRIDAY_PRAYER if shift == 0 else FRIDAY_LATE_LUNCH)]}
    return plan


ID_SERVICES = [
    # code, prefix, name (id), name (en), segment, duration s, target wait s
    ("teller", "A", "Teller", "Teller", "transaksi", 240, 600),
    ("cs", "B", "Layanan Nasabah", "Customer Service", "layanan", 720, 900),
    ("loans", "C", "Kredit & Pinjaman", "Loans", "layanan", 1200, 1200),
    ("cards", "D", "Kartu Kredit & Debit", "Cards", "layanan", 600, 900),
    ("priority", "P", "Nasabah Prioritas", "Priority Banking", "prioritas", 900, 300),
    ("forex", "E", "Valuta Asing", "Foreign Exchange", "transaksi", 420, 900),
]

PH_SERVICES = [
    ("teller", "A", "Teller", "Teller", "transactions", 240, 600),
    ("cs", "B", "Layanan Nasabah", "Customer Service", "service", 720, 900),
    ("loans", "C", "Kredit & Pinjaman", "Loans", "service", 1200, 1200),
    ("cards", "D", "Kartu Kredit & Debit", "Cards", "service", 600, 900),
    ("remit", "R", "Pengiriman Uang", "Remittance", "transactions", 360, 600),
]

# a sub-branch (KCP) and the smaller branches: two tellers, two customer-service desks, loans
SUB_BRANCH_COUNTERS = [
    ("Teller 1", ["teller"]),
    ("Teller 2", ["teller", "cards"]),
    ("CS 1", ["cs", "cards"]),
    ("CS 2", ["cs", "loans"]),
    ("Kredit", ["loans", "cs"]),
]

BRANCHES = [
    {
        "code": "JKT01",
        "name": "KCU Jakarta Sudirman",
        "timezone": "Asia/Jakarta",
        "locale": "id",
        "country": "ID",
        "city": "Jakarta Pusat",
        "address": "Jl. Jend. Sudirman Kav. 1, Jakarta 10220",
        "latitude": -6.2088,
        "longitude": 106.8200,
        "services": ID_SERVICES,
        "policy": "strict",
        # counter name, services in priority order
        "counters": [
            ("Teller 1", ["teller"]),
            ("Teller 2", ["teller", "forex"]),
            ("Teller 3", ["teller"]),
            ("CS 1", ["cs", "cards"]),
            ("CS 2", ["cs", "loans"]),
            ("Kredit 1", ["loans", "cs"]),
            ("Prioritas 1", ["priority", "cs", "teller"]),
            ("Kartu 1", ["cards", "cs"]),
        ],
        "manager": ("dewi.lestari", "Dewi Lestari"),
        "staff": [
            ("budi.santoso", "Budi Santoso", ["teller", "forex"]),
            ("siti.rahayu", "Siti Rahayu", ["teller"]),
            ("agus.setiawan", "Agus Setiawan", ["cs", "cards", "loans"]),
            ("putri.maharani", "Putri Maharani", ["cs", "cards"]),
            ("fajar.nugroho", "Fajar Nugroho", ["loans", "cs"]),
            ("rina.wulandari", "Rina Wulandari", ["priority", "cs", "teller"]),
        ],
    },
    {
        "code": "JKT02",
        "name": "KCP Jakarta Thamrin",
        "timezone": "Asia/Jakarta",
        "locale": "id",
        "country": "ID",
        "city": "Jakarta Pusat",
        "address": "Jl. M.H. Thamrin No. 28, Jakarta 10350",
        "latitude": -6.1890,
        "longitude": 106.8227,
        "services": ID_SERVICES[:4],
        "policy": "strict",
        "counters": SUB_BRANCH_COUNTERS,
        "manager": ("rizal.pratama", "Rizal Pratama"),
        "staff": [
            ("dian.permata", "Dian Permata", ["teller", "cards"]),
            ("lestari.ningsih", "Lestari Ningsih", ["teller"]),
            ("eko.prasetyo", "Eko Prasetyo", ["cs", "loans", "cards"]),
        ],
    },
    {
        "code": "JKT03",
        "name": "KCP Jakarta Kuningan",
        "timezone": "Asia/Jakarta",
        "locale": "id",
        "country": "ID",
        "city": "Jakarta Selatan",
        "address": "Jl. H.R. Rasuna Said Kav. C-5, Jakarta 12920",
        "latitude": -6.2227,
        "longitude": 106.8308,
        "services": ID_SERVICES[:4],
        "policy": "interleave",
        "counters": SUB_BRANCH_COUNTERS,
        "manager": ("indra.kusuma", "Indra Kusuma"),
        "staff": [
            ("maya.anggraini", "Maya Anggraini", ["teller", "cards"]),
            ("bayu.saputra", "Bayu Saputra", ["cs", "loans", "cards"]),
        ],
    },
    {
        "code": "SBY01",
        "name": "KC Surabaya Tunjungan",
        "timezone": "Asia/Jakarta",
        "locale": "id",
        "country": "ID",
        "city": "Surabaya",
        "address": "Jl. Tunjungan No. 45, Surabaya 60275",
        "latitude": -7.2605,
        "longitude": 112.7395,
        "services": ID_SERVICES[:5],
        "policy": "interleave",
        "counters": [
            ("Teller 1", ["teller"]),
            ("Teller 2", ["teller"]),
            ("CS 1", ["cs", "cards"]),
            ("CS 2", ["cs", "loans"]),
            ("Prioritas", ["priority", "teller"]),
            ("Kredit", ["loans", "cards", "cs"]),
        ],
        "manager": ("hendra.wijaya", "Hendra Wijaya"),
        "staff": [
            ("wahyu.hidayat", "Wahyu Hidayat", ["teller"]),
            ("nur.aini", "Nur Aini", ["teller", "priority"]),
            ("yusuf.ramadhan", "Yusuf Ramadhan", ["cs", "cards", "loans"]),
            ("ayu.kartika", "Ayu Kartika", ["cs", "cards"]),
        ],
    },
    {
        "code": "MKS01",
        "name": "KC Makassar Ahmad Yani",
        "timezone": "Asia/Makassar",
        "locale": "id",
        "country": "ID",
        "city": "Makassar",
        "address": "Jl. Jend. Ahmad Yani No. 12, Makassar 90174",
        "latitude": -5.1343,
        "longitude": 119.4125,
        "services": ID_SERVICES[:4],
        "policy": "aging",
        "counters": SUB_BRANCH_COUNTERS,
        "manager": ("andi.baso", "Andi Baso"),
        "staff": [
            ("muh.ikhsan", "Muhammad Ikhsan", ["teller", "cards"]),
            ("nurhaliza", "Nurhaliza", ["teller"]),
            ("irwan.syam", "Irwan Syam", ["cs", "loans", "cards"]),
        ],
    },
    {
        "code": "MNL01",
        "name": "Makati Ayala Branch",
        "timezone": "Asia/Manila",
        "locale": "en",
        "country": "PH",
        "city": "Makati City",
        "address": "6750 Ayala Avenue, Makati City 1226",
        "latitude": 14.5565,
        "longitude": 121.0233,
        "services": PH_SERVICES,
        "policy": "strict",
        "counters": [
            ("Teller 1", ["teller", "remit"]),
            ("Teller 2", ["teller"]),
            ("Teller 3", ["remit", "teller"]),
            ("CS 1", ["cs", "cards"]),
            ("CS 2", ["cs", "loans"]),
            ("Loans", ["loans", "cs"]),
        ],
        "manager": ("maria.santos", "Maria Santos"),
        "staff": [
            ("jose.reyes", "Jose Reyes", ["teller", "remit"]),
            ("ana.cruz", "Ana Cruz", ["teller"]),
            ("mark.bautista", "Mark Bautista", ["cs", "cards", "loans"]),
        ],
    },
]

NETWORK_USERS = [
    # username, name, role
    ("admin", "Administrator", "admin"),
    ("rudi.hartono", "Rudi Hartono (Direktur Jaringan)", "executive"),
    ("lina.marlina", "Lina Marlina (CX)", "cx_agent"),
]

CUSTOMERS = [
    ("Ahmad Fauzi", "+6281234567801", "CIF0000101"),
    ("Sri Wahyuni", "+6281234567802", "CIF0000102"),
    ("Bambang Susilo", "+6285712345603", "CIF0000103"),
    ("Ratna Sari", "+6287812345604", "CIF0000104"),
    ("Yohanes Tanoto", "+6282112345605", "CIF0000105"),
    ("Kadek Ayu Pertiwi", "+6281337123406", "CIF0000106"),
    ("Muhammad Rizki", "+6281198765407", "CIF0000107"),
    ("Fitri Handayani", "+6289612345608", "CIF0000108"),
]

# tickets waiting at JKT01 right after the first seed, so the floor is not empty
OPENING_QUEUE = [
    ("teller", "normal", 0),
    ("teller", "elderly", None),
    ("cs", "normal", 1),
    ("teller", "normal", None),
    ("loans", "normal", 2),
    ("cards", "normal", None),
    ("cs", "normal", 3),
    ("priority", "vip", 4),
]

# Four weeks of finished visits before the day of the first seed, so the busy-hours chart has
# history: arrivals per hour of each service at a normal hour, shaped by the hour of the day
# (a morning and a lunch peak), the day of the week and how busy the branch is.
HISTORY_DAYS = 28
HISTORY_BRANCHES = ("JKT01", "JKT02", "JKT03")  # the three close enough to compare
HISTORY_ARRIVALS_PER_HOUR = {
    "teller": 8,
    "cs": 3,
    "loans": 1.5,
    "cards": 2,
    "priority": 1.5,
    "forex": 1,
    "remit": 3,
}
HISTORY_HOUR_LOAD = {8: 0.8, 9: 1.5, 10: 1.25, 11: 1.0, 12: 1.45, 13: 1.05, 14: 0.55}
HISTORY_WEEKDAY_LOAD = {0: 1.25, 1: 1.0, 2: 0.95, 3: 1.0, 4: 1.15, 5: 1.3, 6: 0}
HISTORY_BRANCH_LOAD = {"JKT01": 1.0, "JKT02": 0.6, "JKT03": 0.75}

DEMO_PASSWORD = "demo-pass"  # the demo accounts' public password (README)  # nosec B105

# Paired demo devices, so `make run` shows a working kiosk and lobby display at once. Their
# tokens are PUBLIC (written here and in the README): demo only. They are created by the demo
# seed outside the production profile and open their page through `?device_token=`.
DEMO_DEVICES = [
    # kind, name, branch, token
    ("kiosk", "Kiosk Lobi", "JKT01", "qd_demo-kiosk-JKT01"),
    ("display", "Layar Lobi", "JKT01", "qd_demo-display-JKT01"),
]
