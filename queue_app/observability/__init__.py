"""Observability: Prometheus metrics at `/metrics` (`metrics.py`) and structured logs with
request ids (`logs.py`). `init_observability(app)` wires both; `create_app` calls it first,
so the request id exists before any other hook runs."""


def init_observability(app) -> None:
    from .logs import init_logging
    from .metrics import init_metrics

    init_logging(app)
    init_metrics(app)
