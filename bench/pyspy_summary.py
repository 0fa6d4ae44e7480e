#!/usr/bin/env python3
"""Summarise py-spy raw (collapsed) stack files: where do the samples of a request go?

    .venv/bin/python bench/pyspy_summary.py bench/results/pyspy-*-gil-*.txt

Each sample is attributed to the innermost frame's library (psycopg, SQLAlchemy ORM, Core,
marshmallow, Flask ...), and, inclusively, to the queue_app functions on its stack. Only
samples inside a request (below `wsgi_app`) are counted; the rest (gunicorn's main loop,
idle threads waiting for a connection) is shown as one line.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

LAYERS = (
    ("psycopg", "psycopg: driver, sending and waiting for PostgreSQL"),
    ("sqlalchemy/orm", "SQLAlchemy ORM (session, flush, loading, attributes)"),
    ("sqlalchemy/sql", "SQLAlchemy Core (statement building, cache keys, compiling)"),
    ("sqlalchemy/engine", "SQLAlchemy engine (execute, results)"),
    ("sqlalchemy/pool", "SQLAlchemy pool (checkout, pre-ping, return)"),
    ("sqlalchemy/dialects", "SQLAlchemy dialect"),
    ("sqlalchemy", "SQLAlchemy other"),
    ("marshmallow", "marshmallow"),
    ("webargs", "webargs / flask-smorest"),
    ("flask_smorest", "webargs / flask-smorest"),
    ("flask_babel", "flask-babel / babel"),
    ("babel", "flask-babel / babel"),
    ("json", "json"),
    ("werkzeug", "werkzeug"),
    ("gunicorn", "gunicorn"),
    ("flask_socketio", "Flask / Socket.IO middleware"),
    ("engineio", "Flask / Socket.IO middleware"),
    ("flask", "Flask / Socket.IO middleware"),
    ("blinker", "blinker (events)"),
    ("zoneinfo", "zoneinfo"),
    ("queue_app", "queue_app's own code"),
)


def layer(frame: str) -> str:
    for needle, name in LAYERS:
        if needle in frame:
            return name
    return "other (stdlib ...)"


def load(paths):
    for path in paths:
        for line in Path(path).read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                yield stack.split(";"), int(count)


def summarize(paths, top: int = 25) -> str:
    by_layer, inclusive = Counter(), Counter()
    total = in_request = 0
    for frames, n in load(paths):
        total += n
        if not any("wsgi_app" in f for f in frames):
            continue
        in_request += n
        by_layer[layer(frames[-1])] += n
        seen = set()
        for f in frames:
            if "queue_app/" in f or "queue_app\\" in f:
                key = re.sub(r":\d+\)", ")", f)
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += n
    if not in_request:
        return f"no samples inside a request ({total} samples in all)"
    out = [
        f"{total} samples, {in_request} inside a request "
        f"({total - in_request} outside: server loop, idle threads)",
        "by library of the innermost frame (share of in-request samples):",
    ]
    for name, n in by_layer.most_common():
        out.append(f"  {n / in_request * 100:5.1f}%  {name}")
    out.append("inclusive, queue_app functions on the stack:")
    for name, n in inclusive.most_common(top):
        out.append(f"  {n / in_request * 100:5.1f}%  {name}")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print(summarize(sys.argv[1:]))
