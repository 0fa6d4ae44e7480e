"""`flask --app queue_app ewt replay|evaluate`: the wait estimator on logged days.

    flask --app queue_app ewt replay --visits DAY.csv --counters COUNTERS.csv --out PRED.csv
    flask --app queue_app ewt evaluate --visits DAY.csv --counters COUNTERS.csv [--pred PRED.csv]

`evaluate` takes one or more days (repeat `--visits`, with one `--counters` for all or one per
day, and optionally one `--pred` per day to score predictions written earlier instead of
replaying the estimator), and prints RMSE, MAE, bias and the share within +-max(2 min, 20%) of
the estimator and the baselines over the served tickets, pooled, and the ratio of the
estimator's RMSE to the best baseline's. Bad input prints one line naming the file, line and
problem, and exits with status 2.

Both read the optional columns a live branch also records when a file has them (visits:
`priority`, `appointment_at`; counters: `absences`, planned breaks and hours as ISO 8601
intervals): priority classes and due appointments order the queue, planned absences keep a
counter from calling (`replay.state_at`).
"""

from __future__ import annotations

import math

import click
from flask.cli import AppGroup

from .metrics import METHODS, accuracy, coverage, format_table, method_pairs
from .replay import (
    ReplayInputError,
    ReplayOptions,
    read_counter_file,
    read_predictions,
    read_visits,
    replay,
    write_predictions,
)

ewt_cli = AppGroup("ewt", help="Estimated wait: replay and evaluate logged days.")


def _fail(exc: Exception):
    click.echo(f"error: {exc}", err=True)
    raise SystemExit(2)


def _options(runs: int, seed: int) -> ReplayOptions:
    return ReplayOptions(runs=runs, seed=seed)


@ewt_cli.command("replay")
@click.option("--visits", "visits_path", required=True, help="DAY.csv (DESIGN.md replay format).")
@click.option("--counters", "counters_path", required=True, help="COUNTERS.csv: counter,services.")
@click.option("--out", "out_path", required=True, help="Where to write PRED.csv.")
@click.option("--runs", default=100, show_default=True, type=click.IntRange(1, 10000))
@click.option("--seed", default=0, show_default=True, type=int)
def replay_command(visits_path, counters_path, out_path, runs, seed):
    """Write ticket_id,predicted_wait_s,actual_wait_s for every ticket of the day, each
    predicted from what was known at its arrival."""
    try:
        counters, schedule = read_counter_file(counters_path)
        visits = read_visits(visits_path, counters)
    except ReplayInputError as exc:
        _fail(exc)
    predictions = replay(visits, counters, _options(runs, seed), schedule=schedule)
    try:
        write_predictions(out_path, predictions)
    except OSError as exc:
        _fail(f"{out_path}: cannot write: {exc.strerror}")
    served = sum(1 for p in predictions if p.actual_s is not None)
    click.echo(f"{len(predictions)} tickets ({served} served) written to {out_path}")


@ewt_cli.command("evaluate")
@click.option("--visits", "visits_paths", required=True, multiple=True, help="DAY.csv; repeat.")
@click.option(
    "--counters",
    "counters_paths",
    required=True,
    multiple=True,
    help="COUNTERS.csv: one for every day, or one per --visits.",
)
@click.option(
    "--pred",
    "pred_paths",
    multiple=True,
    help="PRED.csv written by `ewt replay`, one per --visits: score it instead of replaying.",
)
@click.option("--runs", default=100, show_default=True, type=click.IntRange(1, 10000))
@click.option("--seed", default=0, show_default=True, type=int)
def evaluate_command(visits_paths, counters_paths, pred_paths, runs, seed):
    """Accuracy of the estimator and of the baselines (queue length, LES, HOL)."""
    if len(counters_paths) not in (1, len(visits_paths)):
        _fail("give one --counters for all days or one per --visits")
    if pred_paths and len(pred_paths) != len(visits_paths):
        _fail("give one --pred per --visits")
    pooled = {m: [] for m in METHODS}
    ranges = []
    for k, visits_path in enumerate(visits_paths):
        counters_path = counters_paths[k if len(counters_paths) > 1 else 0]
        try:
            counters, schedule = read_counter_file(counters_path)
            visits = read_visits(visits_path, counters)
            given = read_predictions(pred_paths[k]) if pred_paths else None
        except ReplayInputError as exc:
            _fail(exc)
        predictions = replay(
            visits,
            counters,
            _options(runs, seed),
            with_estimator=given is None,
            schedule=schedule,
        )
        if given is not None:
            for p in predictions:
                if p.ticket_id not in given:
                    _fail(f"{pred_paths[k]}: no prediction for ticket {p.ticket_id!r}")
                p.predicted_s = given[p.ticket_id][0]
        else:
            ranges.extend(
                (p.low_s, p.high_s, p.actual_s) for p in predictions if p.actual_s is not None
            )
        for m, pairs in method_pairs(predictions).items():
            pooled[m].extend(pairs)
    table = {m: accuracy(pairs) for m, pairs in pooled.items()}
    days = len(visits_paths)
    click.echo(f"{days} day{'s' if days != 1 else ''}, {table['estimator'].n} served tickets")
    for line in format_table(table):
        click.echo(line)
    best = min(METHODS[1:], key=lambda m: table[m].rmse_s)
    if table[best].rmse_s > 0 and not math.isnan(table[best].rmse_s):
        ratio = table["estimator"].rmse_s / table[best].rmse_s
        click.echo(f"estimator RMSE / best baseline ({best}) RMSE: {ratio:.3f}")
    if ranges:
        above, below = coverage(ranges)
        click.echo(
            f"quoted range: actual above the high end {above:.1%}, below the low end {below:.1%}"
        )
