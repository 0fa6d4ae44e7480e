"""Translations and the language of pages.

- Both catalogues (Bahasa Indonesia and English) translate every message, none is fuzzy, each
  keeps exactly the placeholders of its source text and has its language's plural forms.
- The catalogues match the source: extracting the messages again gives the committed template,
  and each catalogue holds exactly the template's messages.
- Every piece of text written in the templates goes through gettext.
- The start page speaks Indonesian by default, English for `Accept-Language: en` or `?lang=en`,
  and keeps the choice in the session; `/lang/<code>` never redirects to another site.
"""

import re
from collections import Counter
from datetime import UTC, datetime
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import pytest
import time_machine
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from jinja2 import nodes

from queue_app.i18n import TRANSLATIONS_DIR, ensure_compiled, safe_next_path, select_locale

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "queue_app" / "templates"
POT = TRANSLATIONS_DIR / "messages.pot"
# language -> number of plural forms (Indonesian nouns do not inflect for number)
LANGUAGES = {"id": 1, "en": 2}


def po_path(lang: str) -> Path:
    return TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po"


def load(path: Path, locale: str | None = None):
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def messages(catalog):
    return [m for m in catalog if m.id]


@pytest.fixture(scope="module", autouse=True)
def compiled(app):
    """The pages below are served from the catalogues as they are now (`make translations`)."""
    ensure_compiled(app)


# --- the catalogues ---------------------------------------------------------------------


def test_the_template_and_both_catalogues_exist_and_are_not_empty():
    assert POT.is_file(), "run `make messages`"
    for lang in LANGUAGES:
        assert po_path(lang).is_file(), f"no catalogue for {lang}: run `make messages`"
    assert len(messages(load(POT))) >= 10


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_is_translated_and_none_is_fuzzy(lang):
    catalog = load(po_path(lang), lang)
    assert not catalog.fuzzy, f"{lang}: the catalogue header is marked fuzzy"
    untranslated, fuzzy = [], []
    for m in messages(catalog):
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        if not all(s and s.strip() for s in strings):
            untranslated.append(m.id)
        if m.fuzzy:
            fuzzy.append(m.id)
    assert not untranslated, f"{lang}: untranslated: {untranslated}"
    assert not fuzzy, f"{lang}: fuzzy: {fuzzy}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_plural_forms_follow_the_language(lang):
    catalog = load(po_path(lang), lang)
    assert catalog.num_plurals == LANGUAGES[lang], catalog.plural_forms
    plurals = [m for m in messages(catalog) if m.pluralizable]
    assert plurals, "the start page counts services and counters with ngettext"
    for m in plurals:
        assert len(m.string) == LANGUAGES[lang], (lang, m.id, m.string)


PERCENT = re.compile(r"%(?:\((\w+)\))?[#0 +\-]*\d*(?:\.\d+)?([diouxXeEfFgGcrsa%])")
BRACES = re.compile(r"\{(\w*)\}")


def placeholders(text: str) -> Counter:
    found = Counter(
        f"%({name}){kind}" if name else f"%{kind}"
        for name, kind in PERCENT.findall(text)
        if kind != "%"
    )
    found.update("{" + name + "}" for name in BRACES.findall(text))
    return found


def test_the_placeholder_check_sees_a_dropped_or_renamed_placeholder():
    assert placeholders("%(num)d loket") == placeholders("%(num)d counters")
    assert placeholders("loket") != placeholders("%(num)d counters")
    assert placeholders("%(nomor)d loket") != placeholders("%(num)d counters")
    assert placeholders("%(num)s loket") != placeholders("%(num)d counters")
    assert placeholders("100%% {x}") == Counter({"{x}": 1})


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translations_keep_the_placeholders_of_the_source(lang):
    catalog = load(po_path(lang), lang)
    wrong = []
    for m in messages(catalog):
        if m.pluralizable:
            singular, plural = m.id
            # a form may leave out nothing: Indonesian's one form stands for both
            expected = placeholders(plural) | placeholders(singular)
            strings = m.string
        else:
            expected = placeholders(m.id)
            strings = (m.string,)
        wrong += [(m.id, s) for s in strings if placeholders(s) != expected]
    assert not wrong, f"{lang}: placeholders differ: {wrong}"
    # and Babel's own checks (python-format consistency) find nothing either
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()]
    assert not problems, problems


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalogues_compile(lang):
    catalog = load(po_path(lang), lang)
    out = BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    assert len(out.getvalue()) > 100


def extract(tmp_path, monkeypatch) -> Path:
    """What `make messages` extracts, written to a temporary template."""
    out = tmp_path / "messages.pot"
    monkeypatch.chdir(ROOT)
    # the same options as the Makefile's `messages` target
    CommandLineInterface().run(
        [
            "pybabel",
            "-q",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "--ignore-dirs=.* ._ node_modules instance",
            "--no-location",
            "--sort-output",
            "-o",
            str(out),
            ".",
        ]
    )
    return out


def ids(catalog) -> set:
    return {(m.context, m.id) for m in messages(catalog)}


def test_the_committed_template_is_up_to_date_with_the_source(tmp_path, monkeypatch):
    fresh = ids(load(extract(tmp_path, monkeypatch)))
    committed = ids(load(POT))
    assert fresh, "extraction found no message at all"
    assert fresh - committed == set(), "new messages: run `make messages` and translate them"
    assert committed - fresh == set(), "messages no longer used: run `make messages`"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_catalogue_holds_exactly_the_template_messages(lang):
    template = ids(load(POT))
    catalogue = ids(load(po_path(lang), lang))
    assert template - catalogue == set(), f"{lang}: missing, run `make messages`"
    assert catalogue - template == set(), f"{lang}: stale, run `make messages`"


# --- the templates say everything through gettext --------------------------------------


class _VisibleText(HTMLParser):
    """Text a person reads or hears: element content and the attributes screen readers say."""

    SPOKEN = {"title", "alt", "aria-label", "placeholder", "aria-description"}
    SILENT = {"script", "style", "code", "pre"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._silent = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SILENT:
            self._silent += 1
        self.texts += [v for k, v in attrs if k in self.SPOKEN and v]
        if tag == "input" and dict(attrs).get("type") in {"submit", "button", "reset"}:
            self.texts.append(dict(attrs).get("value") or "")

    def handle_endtag(self, tag):
        if tag in self.SILENT and self._silent:
            self._silent -= 1

    def handle_data(self, data):
        if not self._silent:
            self.texts.append(data)


# written the same in every language: the product's name and each language's own name
NOT_TRANSLATED = ("queue_app", "Bahasa Indonesia", "English")
LETTER = re.compile(r"[^\W\d_]")


def untranslated_text(env, source: str) -> list[str]:
    """Pieces of literal template text (outside `{{ }}` and `{% %}`) that contain letters."""
    tree = env.parse(source)
    # expressions become a marker that is neither a letter nor part of a tag name
    literal = "\x00".join(node.data for node in tree.find_all(nodes.TemplateData))
    parser = _VisibleText()
    parser.feed(literal)
    parser.close()
    found = []
    for text in parser.texts:
        rest = text.replace("\x00", " ")
        for allowed in NOT_TRANSLATED:
            rest = rest.replace(allowed, " ")
        if LETTER.search(rest):
            found.append(" ".join(text.replace("\x00", "{…}").split()))
    return found


def test_the_template_check_finds_literal_text(app):
    env = app.jinja_env
    assert untranslated_text(env, "<p>{{ _('Branches') }} · queue_app</p>") == []
    assert untranslated_text(env, "<p>Cabang {{ n }}</p>") == ["Cabang {…}"]
    assert untranslated_text(env, '<a title="Open">{{ _("x") }}</a>') == ["Open"]
    assert untranslated_text(env, '<nav aria-label="{{ _("Language") }}"></nav>') == []
    assert untranslated_text(env, "<code>flask db upgrade</code>") == []


def test_every_text_in_the_templates_goes_through_gettext(app):
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert templates
    found = {}
    for path in templates:
        texts = untranslated_text(app.jinja_env, path.read_text(encoding="utf-8"))
        if texts:
            found[str(path.relative_to(TEMPLATES))] = texts
    assert not found, f"wrap these in _() or ngettext(): {found}"


# --- which language a page speaks -------------------------------------------------------

TUESDAY_10_WIB = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # 11:00 in Manila, 10:00 in Jakarta


@pytest.fixture
def tuesday_morning():
    """Every request of the test happens at the same instant (the session cookie is signed
    with a timestamp, so the clock must not jump between requests)."""
    with time_machine.travel(TUESDAY_10_WIB, tick=False):
        yield


@pytest.fixture
def network(tuesday_morning, make, session):
    """On a Tuesday morning: Jakarta and a small Manila branch (one service, one counter:
    the singular forms) are open, Surabaya is closed all week."""
    make.branch("JKT01", timezone="Asia/Jakarta", address="Jl. Jend. Sudirman Kav. 1")
    make.branch(
        "MNL01",
        timezone="Asia/Manila",
        country="PH",
        locale="en",
        services=[("teller", "A", 240)],
    )
    closed = make.branch("SBY01")
    closed.opening_hours = {}
    session.commit()


def fetch(client, path="/", query_string=None, **headers):
    """One request in its own application context, as in production.

    The `client` fixture runs inside the test's application context, which Flask reuses for
    every request of the test, and Flask-Babel caches the chosen locale on `g`: without a
    fresh context the second request would simply repeat the first one's language."""
    with client.application.app_context():
        return client.get(path, query_string=query_string, headers=headers)


def get(client, path="/", **headers):
    response = fetch(client, path, **headers)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def html_lang(page: str) -> str:
    return re.search(r'<html lang="([^"]+)"', page).group(1)


def visible(page: str) -> str:
    """The text of the page body, tags removed, white space collapsed."""
    body = page[page.index("<body>") :]
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def card(page: str, code: str) -> str:
    match = re.search(rf'<li class="branch" data-code="{code}">(.*?)</li>', page, re.S)
    assert match, f"no card for {code}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def test_the_start_page_speaks_indonesian_by_default(client, network):
    page = get(client)
    assert html_lang(page) == "id"
    assert "<h1>Cabang</h1>" in page
    assert "Antrean, janji temu, dan umpan balik nasabah" in page
    assert "2 dari 3 cabang sedang buka" in page
    jkt = card(page, "JKT01")
    assert "Buka sekarang" in jkt
    assert "Waktu setempat 10.00 WIB" in jkt
    assert "Jam buka hari ini 08.00\u201315.00" in jkt  # an en dash between the times
    assert "Zona waktu Asia/Jakarta (UTC+7)" in jkt
    assert "3 layanan · 3 loket" in jkt
    assert "Jl. Jend. Sudirman Kav. 1" in jkt
    mnl = card(page, "MNL01")
    assert "Buka sekarang" in mnl and "Waktu setempat 11.00 PST" in mnl
    assert "1 layanan · 1 loket" in mnl
    sby = card(page, "SBY01")
    assert "Tutup" in sby and "Tutup hari ini" in sby and "Buka sekarang" not in sby
    text = visible(page)
    for english in ("Branches", "Open now", "Closed", "service", "counter", "Time zone", "Skip"):
        assert english not in text, english


def test_without_branches_the_page_says_how_to_seed_the_demo(client):
    page = get(client)
    assert (
        "Belum ada cabang. Jalankan <code>flask --app queue_app demo seed</code> "
        "untuk membuat jaringan demo."
    ) in page
    assert 'class="branch"' not in page
    page = get(client, "/?lang=en")
    assert "No branch yet. Run <code>flask --app queue_app demo seed</code>" in page


def test_a_browser_in_another_language_gets_the_default_indonesian(client, network):
    page = get(client, **{"Accept-Language": "fr-FR,fr;q=0.9,de;q=0.5"})
    assert html_lang(page) == "id"
    assert "<h1>Cabang</h1>" in page


@pytest.mark.parametrize("accept", ["en", "en-US,en;q=0.9", "en-PH, id;q=0.5"])
def test_accept_language_english_gets_english(client, network, accept):
    page = get(client, **{"Accept-Language": accept})
    assert html_lang(page) == "en"
    assert "<h1>Branches</h1>" in page
    assert "2 of 3 branches are open now" in page
    jkt = card(page, "JKT01")
    assert "Open now" in jkt
    assert "Local time 10:00 AM WIB" in jkt  # (babel puts a narrow no-break space before AM)
    assert "3 services · 3 counters" in jkt
    assert "1 service · 1 counter" in card(page, "MNL01")
    assert "Closed now" in card(page, "SBY01")


def test_accept_language_prefers_indonesian_when_the_browser_does(client, network):
    page = get(client, **{"Accept-Language": "id-ID,id;q=0.9,en;q=0.8"})
    assert html_lang(page) == "id"


def test_lang_parameter_switches_and_the_choice_sticks_in_the_session(client, network):
    page = get(client, "/?lang=en", **{"Accept-Language": "id"})
    assert html_lang(page) == "en" and "<h1>Branches</h1>" in page
    # no parameter any more, the browser still prefers Indonesian: the session wins
    page = get(client, "/", **{"Accept-Language": "id"})
    assert html_lang(page) == "en" and "<h1>Branches</h1>" in page
    page = get(client, "/?lang=id", **{"Accept-Language": "en"})
    assert html_lang(page) == "id"
    page = get(client, "/", **{"Accept-Language": "en"})
    assert html_lang(page) == "id" and "<h1>Cabang</h1>" in page


def test_an_unsupported_lang_parameter_is_ignored(client, network):
    page = get(client, "/?lang=xx")
    assert html_lang(page) == "id"
    page = get(client, "/?lang=fr", **{"Accept-Language": "en"})
    assert html_lang(page) == "en"


def test_the_switch_link_sets_the_language_and_comes_back(client, network):
    response = fetch(client, "/lang/en?next=/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert html_lang(get(client, "/")) == "en"
    response = fetch(client, "/lang/id")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert html_lang(get(client, "/", **{"Accept-Language": "en"})) == "id"


def test_an_unsupported_language_code_changes_nothing(client, network):
    fetch(client, "/lang/en")
    response = fetch(client, "/lang/xx?next=/")
    assert response.status_code == 302
    assert html_lang(get(client, "/")) == "en"


def test_the_page_links_to_both_languages_and_marks_the_current_one(client, network):
    page = get(client, "/?lang=en&x=1")
    assert 'href="/lang/id?next=/?x%3D1"' in page, "switch link must keep the query but not lang="
    assert re.search(r'<a href="/lang/en\?next=[^"]*" lang="en" hreflang="en" aria-current', page)
    assert not re.search(r'hreflang="id" aria-current', page)


def test_a_local_next_path_is_kept(client):
    response = fetch(client, "/lang/en", query_string={"next": "/api/v1/branches?x=1"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/api/v1/branches?x=1"


EVIL = [
    "//evil.example",
    "//evil.example/path",
    "http://evil.example",
    "https://evil.example/",
    "HTTPS://evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    " //evil.example",
    "javascript:alert(1)",
    "evil.example",
    "///evil.example",
]


@pytest.mark.parametrize("target", EVIL)
def test_the_switch_refuses_open_redirects(client, target):
    response = fetch(client, "/lang/en", query_string={"next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/", (target, response.headers["Location"])


@pytest.mark.parametrize("target", EVIL)
def test_safe_next_path_refuses_what_a_browser_reads_as_another_site(target):
    assert safe_next_path(target) is None


def test_safe_next_path_keeps_paths_of_this_site():
    for path in ["/", "/api/v1/branches", "/kiosk/JKT01?service=teller#top", "/a//b"]:
        assert safe_next_path(path) == path
    assert safe_next_path(None) is None and safe_next_path("") is None


class _Person:
    def __init__(self, locale):
        self.locale = locale


def test_locale_selection_order(app):
    """?lang= then the session, the signed-in person, the branch, Accept-Language, default."""
    from flask import g, session

    def pick(path="/", accept=None, user=None, branch=None, stored=None):
        headers = {"Accept-Language": accept} if accept else {}
        with app.test_request_context(path, headers=headers):
            if stored:
                session["lang"] = stored
            if user:
                g.user = _Person(user)
            if branch:
                g.branch_locale = branch
            return select_locale()

    assert pick() == "id"
    assert pick(accept="en") == "en"
    assert pick(accept="en", branch="id") == "id"
    assert pick(accept="id", branch="en") == "en"
    assert pick(branch="en", user="id") == "id"
    assert pick(user="en", stored="id") == "id"
    assert pick("/?lang=en", user="id", stored="id", branch="id", accept="id") == "en"
    assert pick(branch="fr", accept="en") == "en"  # unsupported values are skipped
    assert pick(user="xx", branch="en") == "en"
    # regional variants count for their language, in the browser's order of preference
    assert pick(accept="en-PH, id;q=0.5") == "en"
    assert pick(accept="de-DE, en-GB;q=0.8, id;q=0.7") == "en"
    assert pick(accept="id-ID, en;q=0.9") == "id"
    assert pick(accept="en;q=0, id;q=0.1") == "id"
    assert pick(accept="*, en;q=0.5") == "en"
    assert pick(accept="fr, de;q=0.5") == "id"
