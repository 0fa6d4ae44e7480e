"""Which language a page speaks.

In order: an explicit choice (`?lang=` stores it in the session), the signed-in person's
preference, the default of the branch the page is about, the browser's Accept-Language,
and finally the configured default (Bahasa Indonesia).
"""

from flask import current_app, g, request, session

SESSION_KEY = "lang"


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
    return (
        request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]
    )
