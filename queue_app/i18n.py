"""Which language a page speaks.

In order: an explicit choice (`?lang=` stores it in the session), the signed-in person's
preference, the default of the branch the page is about, the browser's Accept-Language,
and finally the configured default (Bahasa Indonesia).
"""

from pathlib import Path
from urllib.parse import urlencode, urlsplit

from flask import current_app, g, request, session, url_for

SESSION_KEY = "lang"
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"


def supported() -> tuple[str, ...]:
    return tuple(current_app.config["LANGUAGES"])


def select_locale() -> str:
    languages = supported()
    chosen = request.args.get("lang")
    if chosen in languages:
        session[SESSION_KEY] = chosen
        return chosen
    if session.get(SESSION_KEY) in languages:
        return session[SESSION_KEY]
    user = getattr(g, "user", None)
    if user is not None and user.locale in languages:
        return user.locale
    branch_locale = getattr(g, "branch_locale", None)
    if branch_locale in languages:
        return branch_locale
    return from_accept_language(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]


def from_accept_language(languages: tuple[str, ...]) -> str | None:
    """The supported language the browser ranks highest, matching regional variants.

    `en-PH, id;q=0.5` is English: Werkzeug's `best_match` would pick `id`, because it tries
    exact matches across the whole header before it falls back from `en-PH` to `en`."""
    for value, quality in request.accept_languages:  # best first
        if quality <= 0 or value == "*":
            continue
        tag = value.replace("_", "-").lower()
        for language in languages:
            if tag == language or tag.split("-", 1)[0] == language:
                return language
    return None


def safe_next_path(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None.

    Refuses anything a browser could read as another host: `//evil.example`, `http://...`,
    `/\\evil.example` (browsers treat a backslash like a slash), and tabs or newlines, which
    browsers strip from URLs (`/\\t/evil.example` becomes `//evil.example`).
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def switch_url(code: str) -> str:
    """The link that switches to language `code` and comes back to the current page.

    The way back drops `lang=` from the query, or it would switch the language again."""
    args = [(k, v) for k, vs in request.args.lists() if k != "lang" for v in vs]
    back = request.path + (f"?{urlencode(args)}" if args else "")
    return url_for("web.switch_language", code=code, next=back)


def compile_catalogs(directory: Path = TRANSLATIONS_DIR) -> list[Path]:
    """Compile every `.po` whose `.mo` is missing or older (what `make translations` does).

    Returns the `.mo` files written. Fuzzy entries are left out, as `pybabel compile` does.
    """
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po in sorted(directory.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as f:
            catalog = read_po(f, locale=po.parent.parent.name)
        tmp = mo.with_suffix(".mo.tmp")
        with tmp.open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)
        tmp.replace(mo)
        written.append(mo)
    return written


def ensure_compiled(app) -> list[Path]:
    """Compile stale catalogues and make `app` load them again (tests, development servers).

    Flask-Babel keeps the translations it loaded for as long as the process lives, so a
    catalogue compiled after the first page was rendered would otherwise go unnoticed."""
    from flask_babel import get_domain

    written = compile_catalogs()
    if written:
        with app.app_context():
            get_domain().cache.clear()
    return written


def pick_locale(*candidates: str | None) -> str:
    """The first candidate the app speaks (a region suffix ignored), else the default: the
    language of a message to someone who is not in a request (an e-mail, an SMS)."""
    languages = tuple(current_app.config["LANGUAGES"])
    for candidate in candidates:
        if not candidate:
            continue
        if candidate in languages:
            return candidate
        base = candidate.split("-")[0].split("_")[0]
        if base in languages:
            return base
    return current_app.config["BABEL_DEFAULT_LOCALE"]
