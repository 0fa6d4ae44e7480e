"""The latest estimate of each branch in Redis, shared by every process of the network
(`EWT_SHARED`, on by default when `REDIS_URL` is set; `waits.live` decides when to use it).

One key per (branch id, runs), `queue_app:ewt:<branch>:<runs>`, holds the latest estimate as
JSON (never pickle): the `Live` it made, with the event sequence it was made for and `made`,
the wall-clock moment it was made (the processes share no monotonic clock). It expires after
`TTL_S` without a new estimate, so branches nobody reads leave nothing behind. A process that
is to make an estimate first claims it (`SET <key>:claim <token> NX PX CLAIM_MS`) and releases
the claim after writing the estimate; a crashed claimer's claim lapses by itself.

Redis failures are never the request's: every function here raises `Unavailable`, `waits.live`
falls back to its per-process estimate, one warning per `WARN_EVERY_S` is logged, and Redis is
left alone for `RETRY_AFTER_S` (a Redis that is down costs one refused connection, not one per
read).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import fields
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

from .estimator import Estimate, Estimates

log = logging.getLogger(__name__)

PREFIX = "queue_app:ewt"
FORMAT = 1  # of the JSON value: a value of another format is ignored (made again)
TTL_S = 300  # a branch's estimate lives this long after it was made
CLAIM_MS = 5000  # a claim lapses after this long (its holder died while estimating)
TIMEOUT_S = 0.5  # connect and socket timeouts: a request never waits long for Redis
RETRY_AFTER_S = 5.0  # after a failure, Redis is not asked again for this long
WARN_EVERY_S = 60.0

_lock = threading.Lock()
_clients: dict = {}  # Redis URL -> client (one connection pool per process)
_down_until: dict = {}  # Redis URL -> monotonic moment until which it is not asked
_warned_at = [float("-inf")]

# release the claim only if it is still ours (it may have lapsed and been taken since)
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class Unavailable(Exception):
    """Redis could not be used: estimate in this process."""


def enabled() -> bool:
    """Whether this application shares its estimates (`EWT_SHARED` and a `REDIS_URL`)."""
    if not has_app_context():
        return False
    config = current_app.config
    return bool(config.get("EWT_SHARED")) and bool(config.get("REDIS_URL"))


def key(branch_id: int, runs: int) -> str:
    return f"{PREFIX}:{branch_id}:{runs}"


def claim_key(branch_id: int, runs: int) -> str:
    return f"{key(branch_id, runs)}:claim"


def _url() -> str:
    return current_app.config["REDIS_URL"]


def client():
    """This process's client for the application's `REDIS_URL`, made on first use; raises
    `Unavailable` while Redis is left alone after a failure."""
    url = _url()
    with _lock:
        if time.monotonic() < _down_until.get(url, float("-inf")):
            raise Unavailable(url)
        found = _clients.get(url)
        if found is None:
            import redis

            found = redis.Redis.from_url(
                url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
            )
            _clients[url] = found
    return found


def _failed(error: Exception) -> Unavailable:
    url = _url()
    now = time.monotonic()
    with _lock:
        _down_until[url] = now + RETRY_AFTER_S
        warn = now - _warned_at[0] >= WARN_EVERY_S
        if warn:
            _warned_at[0] = now
    if warn:
        log.warning("shared wait estimates unavailable, estimating per process: %r", error)
    return Unavailable(str(error))


def _call(fn, *args, **kwargs):
    import redis

    try:
        return fn(*args, **kwargs)
    except (redis.RedisError, OSError) as error:
        raise _failed(error) from error


def reset() -> None:
    """Forget the clients and the failures (tests)."""
    with _lock:
        _clients.clear()
        _down_until.clear()
        _warned_at[0] = float("-inf")


# --- the value -----------------------------------------------------------------------------


_FIELDS = [f.name for f in fields(Estimate)]  # each estimate: a list of these, in order


def _estimate(e: Estimate) -> list:
    return [getattr(e, name) for name in _FIELDS]


def encode(live, made: float) -> str:
    """`live` (a `waits.live.Live`) and the wall-clock moment it was made, as JSON. Keys stay
    what they are (ticket and service ids: ints) as pairs; infinite waits are `Infinity`."""
    at = live.at
    zone = at.tzinfo.key if isinstance(at.tzinfo, ZoneInfo) else None
    return json.dumps(
        {
            "v": FORMAT,
            "fields": _FIELDS,
            "seq": live.seq,
            "made": made,
            "at": at.isoformat(),
            "zone": zone,
            "tickets": [[k, *_estimate(e)] for k, e in live.estimates.tickets.items()],
            "new": [[k, *_estimate(e)] for k, e in live.estimates.new.items()],
            "serving": sorted(live.serving),
            "open": sorted(live.open_counters),
        },
        separators=(",", ":"),
    )


def decode(text):
    """(Live, made) from `encode`'s JSON; None for anything else."""
    from .live import Live

    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != FORMAT:
            return None
        if data.get("fields") != _FIELDS:  # made by another version of `Estimate`
            return None
        at = datetime.fromisoformat(data["at"])
        if data.get("zone"):
            at = at.astimezone(ZoneInfo(data["zone"]))
        live = Live(
            at=at,
            estimates=Estimates(
                tickets={row[0]: Estimate(*row[1:]) for row in data["tickets"]},
                new={row[0]: Estimate(*row[1:]) for row in data["new"]},
            ),
            serving=frozenset(data["serving"]),
            open_counters=frozenset(data["open"]),
            seq=data["seq"],
        )
        return live, float(data["made"])
    except (ValueError, KeyError, TypeError, IndexError):
        log.warning("ignoring a shared wait estimate in an unknown form")
        return None


# --- Redis -----------------------------------------------------------------------------------


def load(branch_id: int, runs: int):
    """The branch's latest estimate in Redis: (Live, made) or None."""
    text = _call(client().get, key(branch_id, runs))
    return decode(text) if text is not None else None


def claim(branch_id: int, runs: int) -> str | None:
    """Claim the branch's next estimate: a token to `release` with, or None (someone else
    holds the claim)."""
    token = uuid.uuid4().hex
    won = _call(client().set, claim_key(branch_id, runs), token, nx=True, px=CLAIM_MS)
    return token if won else None


def store(branch_id: int, runs: int, live, made: float) -> None:
    _call(client().set, key(branch_id, runs), encode(live, made), ex=TTL_S)


def release(branch_id: int, runs: int, token: str) -> None:
    _call(client().eval, _RELEASE, 1, claim_key(branch_id, runs), token)


def clear() -> None:
    """Delete every shared estimate and claim of the application's Redis (tests: branch ids
    and sequences are reused after the database is emptied)."""
    redis_client = client()
    names = _call(lambda: list(redis_client.scan_iter(match=f"{PREFIX}:*", count=500)))
    if names:
        _call(redis_client.delete, *names)
