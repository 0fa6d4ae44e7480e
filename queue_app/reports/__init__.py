"""Reports and staffing advice (read-only domain): `queries.py` reads a day, week or month of
tickets and summarises it (`stats.py`: exact waits, service times and rates), `export.py`
writes it as CSV and XLSX, `erlang.py` is exact Erlang C and Erlang A, `staffing.py` forecasts
a day from history and works out the counters each hour needs. Delivery: the pages in
`report_pages/` (`/reports/`) and `api/reports.py` (`/api/v1/reports/...`).
"""
