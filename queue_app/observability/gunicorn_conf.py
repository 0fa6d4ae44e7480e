"""gunicorn settings for queue_app's web processes: `gunicorn -c
python:queue_app.observability.gunicorn_conf ...` (command-line options still apply and win).

With `PROMETHEUS_MULTIPROC_DIR` set (prometheus-client's multiprocess mode, see
`metrics.py`):

- at start-up the master creates the directory and removes the files of processes that are
  no longer running (an earlier gunicorn's workers), keeping those of live processes (the
  scheduler, when it shares the directory);
- when a worker exits (restart, crash, SIGKILL) its live gauges (`socket_clients`) are
  dropped at once; its counters and histograms stay in the totals, as counters must.

Idle keep-alive connections stay open 75 s (`keepalive`), longer than the reverse proxy
keeps them. gunicorn's own access log stays off (our access line has the request id and no
tokens); its error log ("Booting worker" ...) is JSON too unless `LOG_FORMAT=text`.
"""

import os

wsgi_app = "queue_app:create_app('production')"
worker_class = "gthread"
# an idle keep-alive connection stays open longer than the reverse proxy keeps it (the
# README's nginx: `keepalive_timeout 60s` in the upstream). With gunicorn's default (2 s) the
# proxy reuses a connection gunicorn is closing, and a POST sent on it fails (nginx answers
# 502: it never retries a request that is not idempotent)
keepalive = 75

if (os.environ.get("LOG_FORMAT") or "json").lower() == "json":  # the production default
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"class": "queue_app.observability.logs.JsonLogFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        # the root logger gets its handler from the application (`logs.py`), in each worker
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            # on with any logconfig_dict: silenced (raw URLs carry visit tokens)
            "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def on_starting(server):
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        stem, _, ext = name.rpartition(".")
        pid = stem.rpartition("_")[2]
        if ext == "db" and pid.isdigit() and not _alive(int(pid)):
            os.remove(os.path.join(path, name))


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
