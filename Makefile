# queue_app developer commands. The README names two of them:
#   make run    set everything up and start the embedded profile on 127.0.0.1:5000
#   make test   set everything up and run the whole test suite
# Both work on a fresh clone: they create the virtual environment and install what is missing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export FLASK_APP := queue_app

.PHONY: run test setup python npm translations browser db lint format audit bench clean

run: setup db
	$(BIN)/python run.py

test: setup browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: python npm translations

python: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

npm: queue_app/static/vendor/.copied

queue_app/static/vendor/.copied: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p queue_app/static/vendor
	cp node_modules/socket.io-client/dist/socket.io.min.js queue_app/static/vendor/
	cp node_modules/socket.io-client/dist/socket.io.min.js.map queue_app/static/vendor/
	mkdir -p queue_app/static/vendor/swagger-ui
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui-bundle.js.map node_modules/swagger-ui-dist/swagger-ui.css node_modules/swagger-ui-dist/swagger-ui.css.map node_modules/swagger-ui-dist/LICENSE queue_app/static/vendor/swagger-ui/
	touch $@

translations: python
	$(BIN)/pybabel compile --statistics -d queue_app/translations

# Debian's Chromium drives the browser tests (Playwright's own browser download is not used)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

db: python
	$(BIN)/flask db upgrade
	$(BIN)/flask demo seed --if-empty

lint: python
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: python
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# security checks: bandit over the code (settings: pyproject.toml [tool.bandit]) and pip-audit
# over the installed packages (tools/pip_audit.py; needs PyPI, ignores with reasons in
# .pip-audit-ignore; PIP_AUDIT_STRICT=1 fails when a package could not be audited)
audit: python
	$(BIN)/bandit -r queue_app -c pyproject.toml -q
	$(BIN)/python tools/pip_audit.py

bench: setup
	$(BIN)/python bench/issue_tickets.py

# extract every gettext string into the template, then bring each language's catalogue up to date
# (a language without a catalogue yet gets one). Translate the new entries in the .po files.
LANGUAGES := id en
CATALOGS  := queue_app/translations
messages: python
	mkdir -p $(CATALOGS)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -c TRANSLATORS: \
	  --ignore-dirs='.* ._ node_modules instance' --project=queue_app \
	  --version=$(shell sed -n 's/^version *= *//p' setup.cfg) --copyright-holder='queue_app contributors' --no-location --sort-output \
	  -o $(CATALOGS)/messages.pot .
	for lang in $(LANGUAGES); do \
	  if test -f $(CATALOGS)/$$lang/LC_MESSAGES/messages.po; then \
	    $(BIN)/pybabel update -i $(CATALOGS)/messages.pot -d $(CATALOGS) -l $$lang \
	      --no-fuzzy-matching --ignore-obsolete || exit 1; \
	  else \
	    $(BIN)/pybabel init -i $(CATALOGS)/messages.pot -d $(CATALOGS) -l $$lang || exit 1; \
	  fi; \
	done

clean:
	rm -rf $(VENV) node_modules queue_app/static/vendor
