"""The report pages: the figures on the page (both languages), the CSV and XLSX exports parsed
back, the staffing page, who may open them and bad input (4xx pages with a message)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
import time_machine
from openpyxl import load_workbook

from . import reportrows as rr
from .apihelp import fast_passwords


def sign_in(client, user):
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True


def text(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).split())


@pytest.fixture
def week(make, monkeypatch):
    fast_passwords(monkeypatch)
    return rr.week_history(make)


@pytest.fixture
def mondays(make, monkeypatch):
    fast_passwords(monkeypatch)
    return rr.monday_history(make)


WEEK = "/reports/?branch=MKS01&period=week&date=2026-03-04"


@pytest.mark.parametrize(
    "lang,words",
    [
        ("en", ["Reports", "Tickets issued", "12.8 min", "10.0 min", "25.0 min", "50.0%"]),
        ("id", ["12,8", "10,0", "25,0", "50,0%"]),
    ],
)
def test_week_page_shows_the_hand_computed_figures(client, week, lang, words):
    sign_in(client, week["users"]["manager"])
    response = client.get(f"{WEEK}&lang={lang}")
    assert response.status_code == 200
    page = text(response)
    for word in words:
        assert word in page, word
    html = response.get_data(as_text=True)
    # mean 770 s = 12.8 min, median 600 s = 10.0 min, P90 1500 s = 25.0 min; within 50%
    assert 'data-testid="total-issued">8<' in html
    assert 'data-testid="heatmap"' in html and 'data-testid="issued-chart"' in html
    assert 'data-testid="table-service"' in html and 'data-testid="table-staff"' in html
    assert 'data-testid="table-branch"' not in html  # one branch: no branch table


def test_network_page_for_an_executive(client, week):
    sign_in(client, week["users"]["executive"])
    html = client.get("/reports/?period=month&date=2026-03-01&lang=en").get_data(as_text=True)
    assert 'data-testid="table-branch"' in html
    assert 'data-testid="total-issued">10<' in html


def test_the_default_day_is_the_branch_day_or_the_earliest_of_the_network(client, week):
    """16:30 UTC on 5 March: 00:30 on the 6th in Makassar, still 23:30 on the 5th in Jakarta."""
    with time_machine.travel(datetime(2026, 3, 5, 16, 30, tzinfo=UTC), tick=False):
        sign_in(client, week["users"]["executive"])
        network = client.get("/reports/?period=day&lang=en").get_data(as_text=True)
        makassar = client.get("/reports/?period=day&branch=MKS01&lang=en").get_data(as_text=True)
    assert 'name="date" type="date" value="2026-03-05"' in network
    assert 'name="date" type="date" value="2026-03-06"' in makassar


def test_csv_export_parses_back(client, week):
    sign_in(client, week["users"]["manager"])
    response = client.get("/reports/report.csv?branch=MKS01&period=week&date=2026-03-04&lang=en")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert 'filename="report-MKS01-2026-W10.csv"' in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    total = next(r for r in rows if r["section"] == "total")
    assert total["issued"] == "8" and total["wait_mean_s"] == "770.0"
    assert total["wait_median_s"] == "600.0" and total["wait_p90_s"] == "1500.0"
    assert total["abandonment_rate"] == "0.25" and total["within_target"] == "0.5"
    teller = next(r for r in rows if r["section"] == "service" and r["name"] == "Teller")
    assert teller["wait_p90_s"] == "1020.0" and teller["service_p90_s"] == "552.0"
    assert next(r["key"] for r in rows if r["section"] == "series") == "2026-03-02"
    heat = {r["key"]: r["issued"] for r in rows if r["section"] == "heat"}
    assert heat == {"0-0": "1", "0-9": "4", "0-10": "2", "6-23": "1"}
    none = next(r for r in rows if r["section"] == "counter" and r["key"] == "")
    assert none["name"] == "Not called at a counter" and none["issued"] == "2"


def test_xlsx_export_parses_back(client, week):
    sign_in(client, week["users"]["manager"])
    response = client.get("/reports/report.xlsx?branch=MKS01&period=week&date=2026-03-04&lang=en")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(response.get_data()))
    sheet = book["report"]
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, [c.value for c in row], strict=True)) for row in sheet.iter_rows(2)]
    total = next(r for r in rows if r["section"] == "total")
    assert total["issued"] == 8 and total["wait_mean_s"] == 770
    assert total["wait_p90_s"] == 1500 and total["no_show_rate"] == 0.125
    heat = book["heatmap"]
    assert [c.value for c in heat[2]][:2] == ["Mon", 1]  # Monday 00:00 (English: lang=en)
    assert heat.cell(row=2, column=2 + 9).value == 4  # Monday 09:00
    assert heat.cell(row=8, column=2 + 23).value == 1  # Sunday 23:00


@pytest.mark.parametrize("who", ["other_manager", "staff"])
def test_pages_refuse_who_may_not_read(client, week, who):
    sign_in(client, week["users"][who])
    for path in (WEEK, "/reports/report.csv?branch=MKS01&period=day&date=2026-03-02"):
        response = client.get(path + "&lang=en")
        assert response.status_code == 403
        assert "access" in text(response) or "role" in text(response)


def test_pages_send_strangers_to_sign_in(client, week):
    response = client.get(WEEK)
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


@pytest.mark.parametrize(
    "query,status,words",
    [
        ("period=year&date=2026-03-02", 400, "day, week or month"),
        ("period=day&date=2026-02-30", 400, "YYYY-MM-DD"),
        ("period=day&date=1900-01-01", 400, "2000"),
        ("period=day&date=2026-03-02&branch=NOPE", 404, "no such branch"),
    ],
)
def test_report_bad_input(client, week, query, status, words):
    sign_in(client, week["users"]["executive"])
    response = client.get(f"/reports/?{query}&lang=en")
    assert response.status_code == status
    assert words in text(response)


# --- staffing -------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "id"])
def test_staffing_page(client, mondays, lang):
    sign_in(client, mondays["users"]["manager"])
    response = client.get(f"/reports/staffing?branch=MKS02&date=2026-03-30&lang={lang}")
    assert response.status_code == 200, text(response)
    html = response.get_data(as_text=True)
    row = re.search(r'data-testid="hour-09:00">(.*?)</tr>', html, re.S).group(1)
    assert re.search(r'data-testid="needed">2<', row)
    assert 'data-testid="sim-advised"' in html and 'data-testid="sim-history"' in html
    assert 'data-testid="need-chart"' in html
    if lang == "en":
        page = text(response)
        assert "Erlang C" in page and "Erlang A" in page
        assert "Goal: 80% of customers called within 10 minutes." in page
        assert "There is no staff roster" in page


def test_staffing_page_without_history(client, mondays):
    sign_in(client, mondays["users"]["manager"])
    response = client.get("/reports/staffing?branch=MKS02&date=2026-03-02&lang=en")
    assert response.status_code == 200
    assert 'data-testid="no-history"' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "query,status,words",
    [
        ("branch=MKS02&date=2026-03-30&share=100", 400, "between 1 and 99"),
        ("branch=MKS02&date=2026-03-30&share=nan", 400, "between 1 and 99"),
        ("branch=MKS02&date=2026-03-30&target=-1", 400, "between 0 and 240"),
        ("branch=MKS02&date=2026-03-30&weeks=1.5", 400, "between 1 and 26 weeks"),
        ("branch=MKS02&date=30-03-2026", 400, "YYYY-MM-DD"),
        ("branch=JKT08&date=2026-03-30", 403, "no access"),
    ],
)
def test_staffing_bad_input(client, mondays, query, status, words):
    sign_in(client, mondays["users"]["manager"])
    response = client.get(f"/reports/staffing?{query}&lang=en")
    assert response.status_code == status
    assert words in text(response)
