"""Settings from environment variables, one class per profile.

`embedded` is the one-command default (SQLite file, in-process Socket.IO and scheduler),
`production` runs on PostgreSQL and Redis behind gunicorn, `testing` is what the test suite uses.
"""

import os
import secrets
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parent.parent
INSTANCE_DIR = Path(os.environ.get("QUEUE_APP_INSTANCE", ROOT_DIR / "instance"))


def _env(name, default=None):
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _bool(name, default=False):
    value = _env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def normalise_database_url(url: str) -> str:
    """Accept the `postgres://` and `postgresql://` spellings and use psycopg 3 for both."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Config:
    PROFILE = "base"
    SECRET_KEY = _env("SECRET_KEY")
    # earlier keys, comma separated, while SECRET_KEY rotates: sessions signed with them and
    # the webhook secrets sealed under them (core/sealing.py) still open
    SECRET_KEY_FALLBACKS = [k for k in (_env("SECRET_KEY_FALLBACKS") or "").split(",") if k]
    SQLALCHEMY_DATABASE_URI = normalise_database_url(
        _env("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'queue_app.sqlite3'}")
    )
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    REDIS_URL = _env("REDIS_URL")
    SOCKETIO_MESSAGE_QUEUE = _env("SOCKETIO_MESSAGE_QUEUE", REDIS_URL)
    CORS_ORIGINS = [o for o in (_env("CORS_ORIGINS", "") or "").split(",") if o]
    SCHEDULER_ENABLED = _bool("SCHEDULER_ENABLED", False)
    # how often a standby scheduler tries the lock and the leader checks it still holds it
    SCHEDULER_POLL_S = float(_env("SCHEDULER_POLL_S", "5"))

    BABEL_DEFAULT_LOCALE = _env("DEFAULT_LOCALE", "id")
    BABEL_DEFAULT_TIMEZONE = "UTC"
    LANGUAGES = ("id", "en")

    # flask-smorest / OpenAPI
    API_TITLE = "queue_app API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    # the browsable documentation (Swagger UI from npm, copied by `make npm`): /api/v1/docs
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = "/static/vendor/swagger-ui/"

    JSON_SORT_KEYS = False
    MAX_CONTENT_LENGTH = 1024 * 1024
    # sessions and sign-in: cookies out of reach of scripts and of other sites' forms
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SESSION_PROTECTION = "basic"
    WTF_CSRF_TIME_LIMIT = 8 * 3600  # a counter screen stays open for a working day
    # security headers (auth/headers.py): the CSP is the same in every profile; HTTPS is
    # forced and HSTS sent in production only (not for the probes of HTTPS_EXEMPT_PATHS)
    FORCE_HTTPS = _bool("FORCE_HTTPS", False)
    HTTPS_EXEMPT_PATHS = _env("HTTPS_EXEMPT_PATHS", "/healthz,/readyz,/metrics,/api/")
    HSTS_MAX_AGE_S = int(_env("HSTS_MAX_AGE_S", "0"))  # 0: no Strict-Transport-Security
    HSTS_INCLUDE_SUBDOMAINS = _bool("HSTS_INCLUDE_SUBDOMAINS", False)
    # origins the pages may connect to besides their own (e.g. wss://queue.bank.example)
    CSP_CONNECT_SRC = _env("CSP_CONNECT_SRC", "")
    CSP_REPORT_URI = _env("CSP_REPORT_URI")
    # Flask-Limiter: per client address; memory in one process, Redis between processes
    RATELIMIT_STORAGE_URI = _env("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True
    LOGIN_RATE_LIMIT = _env("LOGIN_RATE_LIMIT", "10 per minute")
    PAIRING_RATE_LIMIT = _env("PAIRING_RATE_LIMIT", "30 per minute")
    # looking up or checking in a booking by its code, per client address (codes are guessable
    # in bulk otherwise: 32^6)
    BOOKING_CODE_RATE_LIMIT = _env("BOOKING_CODE_RATE_LIMIT", "20 per minute")
    PUBLIC_BASE_URL = _env("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    # the kiosk goes back to its start screen by itself: after a ticket, and when left idle
    KIOSK_TICKET_RETURN_S = int(_env("KIOSK_TICKET_RETURN_S", "15"))
    KIOSK_IDLE_RETURN_S = int(_env("KIOSK_IDLE_RETURN_S", "45"))
    # the untouched start screen reloads itself this often (opening hours, closed services)
    KIOSK_START_REFRESH_S = int(_env("KIOSK_START_REFRESH_S", "300"))

    # --- messages to customers (queue_app/notify/) ---
    # e-mail over SMTP; the embedded default hands mail to a relay on the same machine
    MAIL_SERVER = _env("MAIL_SERVER", "127.0.0.1")
    MAIL_PORT = int(_env("MAIL_PORT", "25"))
    MAIL_USE_TLS = _bool("MAIL_USE_TLS", False)  # STARTTLS on a plain connection
    MAIL_USE_SSL = _bool("MAIL_USE_SSL", False)  # SMTPS (usually port 465)
    MAIL_USERNAME = _env("MAIL_USERNAME")
    MAIL_PASSWORD = _env("MAIL_PASSWORD")
    MAIL_DEFAULT_SENDER = _env("MAIL_DEFAULT_SENDER", "queue_app <no-reply@localhost>")
    MAIL_TIMEOUT_S = float(_env("MAIL_TIMEOUT_S", "10"))
    # SMS and WhatsApp through an HTTP gateway: POST {"to", "text", "channel"} as JSON with
    # `Authorization: Bearer GATEWAY_TOKEN`. Unset URL: the channel is not configured.
    SMS_GATEWAY_URL = _env("SMS_GATEWAY_URL")
    WHATSAPP_GATEWAY_URL = _env("WHATSAPP_GATEWAY_URL")
    GATEWAY_TOKEN = _env("GATEWAY_TOKEN")
    GATEWAY_TIMEOUT_S = float(_env("GATEWAY_TIMEOUT_S", "10"))
    # the outbox: attempts per channel, waits of BASE * FACTOR^(n-1) seconds between them
    # (1, 5, 25 minutes), how long a claimed message is left to its sender, messages per run
    OUTBOX_MAX_ATTEMPTS = int(_env("OUTBOX_MAX_ATTEMPTS", "4"))
    OUTBOX_RETRY_BASE_S = float(_env("OUTBOX_RETRY_BASE_S", "60"))
    OUTBOX_RETRY_FACTOR = float(_env("OUTBOX_RETRY_FACTOR", "5"))
    OUTBOX_LEASE_S = float(_env("OUTBOX_LEASE_S", "300"))
    OUTBOX_BATCH = int(_env("OUTBOX_BATCH", "100"))
    # webhooks (queue_app/webhooks/): attempts per delivery, waits of BASE * FACTOR^(n-1)
    # seconds between them (1, 5, 25, 125, 625 minutes), how long a claimed delivery is left to
    # its sender, the HTTP timeout, deliveries per run of `deliver_webhooks`
    WEBHOOK_MAX_ATTEMPTS = int(_env("WEBHOOK_MAX_ATTEMPTS", "6"))
    WEBHOOK_RETRY_BASE_S = float(_env("WEBHOOK_RETRY_BASE_S", "60"))
    WEBHOOK_RETRY_FACTOR = float(_env("WEBHOOK_RETRY_FACTOR", "5"))
    WEBHOOK_LEASE_S = float(_env("WEBHOOK_LEASE_S", "120"))
    WEBHOOK_TIMEOUT_S = float(_env("WEBHOOK_TIMEOUT_S", "10"))
    WEBHOOK_BATCH = int(_env("WEBHOOK_BATCH", "50"))
    # how long a process keeps the list of active webhook endpoints it reads on every call and
    # finish (0: read it every time); a change made in the process counts at once, one made by
    # another process within this many seconds
    WEBHOOK_ENDPOINTS_CACHE_S = float(_env("WEBHOOK_ENDPOINTS_CACHE_S", "2"))
    # webhooks go to public addresses and to these networks only (comma separated, e.g. the
    # bank's warehouse "10.20.0.0/16"): never to this machine, the private networks or a
    # cloud's metadata service unless named here (webhooks/destinations.py)
    WEBHOOK_ALLOWED_NETWORKS = _env("WEBHOOK_ALLOWED_NETWORKS", "")
    # reminders before an appointment: offsets like 1d, 24h, 2h, 30m
    APPOINTMENT_REMINDERS = _env("APPOINTMENT_REMINDERS", "24h,2h")
    # reverse proxies in front of the app whose X-Forwarded-* headers are trusted (0: none)
    PROXY_COUNT = int(_env("PROXY_COUNT", "0"))
    # --- observability (observability/) ---
    # log lines on stderr: "json" (one object per line) or "text"; every line of a request
    # carries its id (X-Request-ID), one access line per request
    LOG_FORMAT = _env("LOG_FORMAT", "text")
    LOG_LEVEL = _env("LOG_LEVEL", "INFO")
    # GET /metrics (Prometheus): a bearer token and/or the addresses and networks allowed
    # (comma separated, e.g. "127.0.0.1,10.0.0.0/8"); each one set must pass; neither: 404
    METRICS_TOKEN = _env("METRICS_TOKEN")
    METRICS_ALLOW = _env("METRICS_ALLOW", "")
    # urgent messages (one-time codes, "it is your turn") right after their commit: "thread"
    # (a background sender per process), "sync" (in the committing thread, after the commit:
    # tests), "off" (left to the outbox job)
    NOTIFY_URGENT = _env("NOTIFY_URGENT", "thread")
    # "you are next in N": written once when a waiting ticket with a contact reaches place N
    # (notify/queue_alerts.py); 0 turns it off
    QUEUE_NEXT_IN_N = int(_env("QUEUE_NEXT_IN_N", "3"))

    # --- the virtual mobile queue (tickets/remote.py, customers/verification.py) ---
    # per network address (Flask-Limiter): asking for a one-time code, joining with it, and
    # the "I'm here" / leave actions of a ticket's holder
    REMOTE_CODE_RATE_LIMIT = _env("REMOTE_CODE_RATE_LIMIT", "5 per minute;20 per hour")
    REMOTE_JOIN_RATE_LIMIT = _env("REMOTE_JOIN_RATE_LIMIT", "10 per minute")
    REMOTE_TICKET_RATE_LIMIT = _env("REMOTE_TICKET_RATE_LIMIT", "30 per minute")
    # per contact (phone number or e-mail address), whatever address asks: codes per window
    REMOTE_CODES_PER_CONTACT = int(_env("REMOTE_CODES_PER_CONTACT", "3"))
    REMOTE_CODE_WINDOW_S = int(_env("REMOTE_CODE_WINDOW_S", "900"))
    # a code is valid this long and dies after this many wrong tries
    REMOTE_CODE_TTL_S = int(_env("REMOTE_CODE_TTL_S", "600"))
    REMOTE_CODE_MAX_TRIES = int(_env("REMOTE_CODE_MAX_TRIES", "5"))

    # --- personal data (customers/retention.py) ---
    # visits, feedback, messages and contacts older than this many days are anonymised by the
    # daily `anonymise_personal_data` job (and `flask privacy anonymise`); statistics stay
    RETENTION_DAYS = int(_env("RETENTION_DAYS", "730"))
    RETENTION_BATCH = int(_env("RETENTION_BATCH", "500"))
    # the audit log: entries older than this many days are deleted daily (`purge_audit_log`,
    # `flask audit purge`); 0 keeps them for ever. What the bank's regulator asks decides it
    AUDIT_RETENTION_DAYS = int(_env("AUDIT_RETENTION_DAYS", "0"))
    AUDIT_PURGE_BATCH = int(_env("AUDIT_PURGE_BATCH", "5000"))
    # --- feedback (feedback/) ---
    # the rating invitation by e-mail/SMS waits this long after the visit (a tablet answer first)
    FEEDBACK_INVITE_DELAY_S = int(_env("FEEDBACK_INVITE_DELAY_S", "600"))
    # posting a rating (API and phone pages), per network address
    FEEDBACK_RATE_LIMIT = _env("FEEDBACK_RATE_LIMIT", "30 per minute")
    # the feedback tablet: rating token life, how long after a finish it offers the survey,
    # the thank-you screen, and when an untouched survey goes back to idle
    FEEDBACK_TABLET_TOKEN_S = int(_env("FEEDBACK_TABLET_TOKEN_S", "300"))
    FEEDBACK_TABLET_WINDOW_S = int(_env("FEEDBACK_TABLET_WINDOW_S", "180"))
    FEEDBACK_TABLET_THANKS_S = int(_env("FEEDBACK_TABLET_THANKS_S", "8"))
    FEEDBACK_TABLET_IDLE_S = int(_env("FEEDBACK_TABLET_IDLE_S", "60"))
    # metrics: below this many answers a score is marked "n too small"; wait buckets (minutes)
    METRICS_MIN_N = int(_env("METRICS_MIN_N", "30"))
    METRICS_WAIT_BUCKETS_MIN = tuple(
        int(x) for x in _env("METRICS_WAIT_BUCKETS_MIN", "5,10,20,30").split(",") if x.strip()
    )

    # --- cases (cases/) ---
    # hours of each escalation level but the last (levels = count + 1)
    CASE_LEVEL_HOURS = _env("CASE_LEVEL_HOURS", "48,24")
    # usernames told at the last level; empty: every active executive
    CASE_EXECUTIVES = _env("CASE_EXECUTIVES", "")
    # count only the branch's opening hours (no weekends, closures, public holidays)
    CASE_WORKING_HOURS_CLOCK = _env("CASE_WORKING_HOURS_CLOCK", "0") in ("1", "true", "yes")
    CASE_SWEEP_BATCH = int(_env("CASE_SWEEP_BATCH", "200"))
    CASE_RECOVERY_LINK_MAX_AGE_S = int(_env("CASE_RECOVERY_LINK_MAX_AGE_S", str(14 * 24 * 3600)))
    # the weekly review: first contact within this many hours counts as followed up in time
    REVIEW_SLA_HOURS = int(_env("REVIEW_SLA_HOURS", "48"))

    # --- reports and staffing advice (reports/, report_pages/) ---
    # the staffing page's default goal: this share of customers called within this wait
    REPORTS_TARGET_WAIT_S = int(_env("REPORTS_TARGET_WAIT_S", "600"))
    REPORTS_TARGET_SHARE = float(_env("REPORTS_TARGET_SHARE", "0.8"))
    # the forecast: the same weekday of this many weeks before the day planned
    REPORTS_STAFFING_WEEKS = int(_env("REPORTS_STAFFING_WEEKS", "4"))
    # the planned day is simulated this many times (seeds 1..N) with each schedule
    REPORTS_SIM_SEEDS = int(_env("REPORTS_SIM_SEEDS", "5"))

    # --- alert thresholds (alerts/) ---
    # evaluating a branch's rules after each committed change: "thread" (a worker per
    # process), "sync" (in the committing thread, after the commit), "off" (the job only)
    ALERTS_ON_CHANGE = _env("ALERTS_ON_CHANGE", "thread")
    # a branch is evaluated at most once per this many seconds on changes ("thread")
    ALERTS_DEBOUNCE_S = float(_env("ALERTS_DEBOUNCE_S", "1"))
    # alerts escalated per run of the `evaluate_alerts` job
    ALERTS_SWEEP_BATCH = int(_env("ALERTS_SWEEP_BATCH", "200"))

    # --- live dashboard (dashboard/, realtime/dashboard.py) ---
    # a queue whose longest wait reached this share of its target turns its branch amber
    DASHBOARD_AMBER_SHARE = float(_env("DASHBOARD_AMBER_SHARE", "0.75"))
    # at most one live hint per branch per this many seconds to the dashboard pages
    DASHBOARD_PUSH_INTERVAL_S = float(_env("DASHBOARD_PUSH_INTERVAL_S", "1"))
    # the pages refetch their state this often even without hints
    DASHBOARD_REFRESH_S = int(_env("DASHBOARD_REFRESH_S", "30"))

    # --- estimated wait (waits/live.py): every surface's estimate ---
    # the estimator runs at most once per branch per this many seconds per process
    EWT_MIN_INTERVAL_S = float(_env("EWT_MIN_INTERVAL_S", "2"))
    # simulation runs per estimate (more: steadier ranges, more CPU)
    EWT_RUNS = int(_env("EWT_RUNS", "50"))
    # spread of a service's time (coefficient of variation) before history is learned
    EWT_PRIOR_CV = float(_env("EWT_PRIOR_CV", "0.8"))
    # one estimate per branch change for all processes sharing REDIS_URL (waits/shared.py):
    # made by one of them at most once per EWT_MIN_INTERVAL_S, read by the others from Redis;
    # on by default when REDIS_URL is set (off in the embedded and testing profiles)
    EWT_SHARED = _bool("EWT_SHARED", bool(REDIS_URL))

    # --- booking pages (booking/web.py, booking/links.py) ---
    # how long the signed "change or cancel" link of a booking stays valid
    BOOKING_LINK_MAX_AGE_S = int(_env("BOOKING_LINK_MAX_AGE_S", str(90 * 24 * 3600)))
    # holding a slot from the phone page, per network address; empty: BOOKING_CODE_RATE_LIMIT
    # (also booking through the API and confirming the phone page's form)
    BOOKING_HOLD_RATE_LIMIT = _env("BOOKING_HOLD_RATE_LIMIT", "") or None
    # a walk-in ticket through the API without a token, per network address (a caller with a
    # valid bearer token is not limited: integrations that issue at volume use one)
    API_ISSUE_RATE_LIMIT = _env("API_ISSUE_RATE_LIMIT", "30 per minute;300 per hour")
    # tickets and booking check-ins per paired kiosk (keyed by its device, not its address:
    # a branch's kiosks often share one); a ticket every two seconds is far above any queue
    KIOSK_RATE_LIMIT = _env("KIOSK_RATE_LIMIT", "30 per minute")

    # --- busy hours (insights/) ---
    # weeks of history read for the typical wait of an hour, and the fewest tickets an hour
    # needs before it shows a figure; nearby branches within this many kilometres
    BUSY_HOURS_WEEKS = int(_env("BUSY_HOURS_WEEKS", "8"))
    BUSY_HOURS_MIN_SAMPLES = int(_env("BUSY_HOURS_MIN_SAMPLES", "5"))
    BUSY_HOURS_NEARBY_KM = float(_env("BUSY_HOURS_NEARBY_KM", "25"))
    # `flask demo seed` also writes four weeks of past visits, so busy hours show figures
    DEMO_HISTORY = _env("DEMO_HISTORY", "1") not in ("0", "false", "no", "")


class EmbeddedConfig(Config):
    PROFILE = "embedded"
    METRICS_ALLOW = _env("METRICS_ALLOW", "127.0.0.1,::1")  # this machine only
    SCHEDULER_ENABLED = _bool("SCHEDULER_ENABLED", True)
    EWT_SHARED = _bool("EWT_SHARED", False)  # one process on SQLite: nothing to share


class ProductionConfig(Config):
    PROFILE = "production"
    # reverse proxies in front of gunicorn whose X-Forwarded-* headers are trusted (0: none)
    PROXY_COUNT = int(_env("PROXY_COUNT", "1"))
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    SESSION_PROTECTION = "strong"
    LOG_FORMAT = _env("LOG_FORMAT", "json")
    FORCE_HTTPS = _bool("FORCE_HTTPS", True)
    HSTS_MAX_AGE_S = int(_env("HSTS_MAX_AGE_S", str(365 * 24 * 3600)))
    RATELIMIT_STORAGE_URI = _env("RATELIMIT_STORAGE_URI", Config.REDIS_URL or "memory://")
    # No `pool_pre_ping`: it costs a round trip on every checkout (every request). A
    # connection the server dropped fails its request once (503, see api/__init__.py) and is
    # replaced; `pool_recycle` retires connections before idle timeouts of proxies and
    # firewalls close them.
    SQLALCHEMY_ENGINE_OPTIONS = {
        "pool_recycle": int(_env("DB_POOL_RECYCLE", "1800")),
        "pool_size": int(_env("DB_POOL_SIZE", "10")),
        "max_overflow": int(_env("DB_MAX_OVERFLOW", "20")),
        # a logged database error shows the statement, never its values (phone numbers ...)
        "hide_parameters": True,
    }


class TestingConfig(Config):
    PROFILE = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key-not-for-production"  # test profile only  # nosec B105
    # CSRF stays on (Flask-WTF's default): the tests post the token like a browser does.
    # Many tests sign in from one address: the sign-in limit is tested with its own value.
    LOGIN_RATE_LIMIT = "1000 per minute"
    PAIRING_RATE_LIMIT = "1000 per minute"
    BOOKING_CODE_RATE_LIMIT = "1000 per minute"
    REMOTE_CODE_RATE_LIMIT = "1000 per minute"
    REMOTE_JOIN_RATE_LIMIT = "1000 per minute"
    REMOTE_TICKET_RATE_LIMIT = "1000 per minute"
    FEEDBACK_RATE_LIMIT = "1000 per minute"
    # tests issue thousands of tickets, many at one frozen instant (one limit window)
    API_ISSUE_RATE_LIMIT = "1000000 per minute"
    KIOSK_RATE_LIMIT = "1000000 per minute"
    SQLALCHEMY_DATABASE_URI = normalise_database_url(
        _env("DATABASE_URL", "sqlite:///" + str(INSTANCE_DIR / "test.sqlite3"))
    )
    # nothing leaves the test process unless a test points it at its own server: port 9 is
    # "discard" (nothing listens here), the gateways are not configured
    MAIL_SERVER = "127.0.0.1"
    MAIL_PORT = 9
    # the tests' webhook receivers listen on this machine
    WEBHOOK_ALLOWED_NETWORKS = "127.0.0.0/8,::1"
    MAIL_USE_TLS = False
    MAIL_USE_SSL = False
    MAIL_USERNAME = None
    MAIL_PASSWORD = None
    MAIL_DEFAULT_SENDER = "queue_app tests <no-reply@queue-app.test>"
    MAIL_TIMEOUT_S = 5.0
    SMS_GATEWAY_URL = None
    WHATSAPP_GATEWAY_URL = None
    GATEWAY_TOKEN = None
    GATEWAY_TIMEOUT_S = 5.0
    APPOINTMENT_REMINDERS = "24h,2h"
    NOTIFY_URGENT = "sync"  # sent before the request returns: tests see it at once
    QUEUE_NEXT_IN_N = 3
    DEMO_HISTORY = False  # tests seed what they need
    # estimates: every change re-estimated at once (the rate limit is tested with its own
    # clock), and service times without history exactly the expected duration, so the waits
    # tests assert follow from the state by hand
    EWT_MIN_INTERVAL_S = 0.0
    EWT_PRIOR_CV = 0.0
    # estimates per process: the shared one is tested with its own Redis (test_waits_shared.py)
    EWT_SHARED = _bool("EWT_SHARED", False)
    ALERTS_ON_CHANGE = "off"  # the alert tests turn it on: other tests commit changes all along


PROFILES = {
    "embedded": EmbeddedConfig,
    "production": ProductionConfig,
    "testing": TestingConfig,
}


def load(profile: str | None):
    name = profile or _env("QUEUE_APP_PROFILE", "embedded")
    try:
        cls = PROFILES[name]
    except KeyError:
        raise RuntimeError(f"unknown profile {name!r}; use one of {', '.join(PROFILES)}") from None
    settings = {k: getattr(cls, k) for k in dir(cls) if k.isupper()}
    if not settings.get("SECRET_KEY"):
        if name == "production":
            raise RuntimeError("SECRET_KEY must be set in the production profile")
        settings["SECRET_KEY"] = _embedded_secret()
    return settings


def _embedded_secret() -> str:
    """A random key kept in the instance folder, so sessions survive a restart."""
    path = INSTANCE_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


MIGRATIONS_DIR = ROOT_DIR / "migrations"
