# Two commands for a newcomer: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat setup.py | cksum | cut -d' ' -f1)
MANAGE := $(BIN)/python example_project/manage.py
# Where the example site is served. Its sandbox provider's endpoints (SANDBOX_BASE_URL) follow it
# for every command make runs, so that `DEMO_ADDR=127.0.0.1:8765 make demo` and
# `DEMO_ADDR=127.0.0.1:8765 make manage CMD="bigoauth_refresh --all"` agree on where the sandbox is.
DEMO_ADDR ?= 127.0.0.1:8000
DEMO_MANAGE = SANDBOX_BASE_URL=$${SANDBOX_BASE_URL:-http://$(DEMO_ADDR)} $(MANAGE)
# The languages the app ships (django_bigoauth/locale). Catalogs name the file of each message,
# not its line, so that code moving about does not change them; obsolete messages are dropped.
LANGUAGES := de fr
MAKEMESSAGES = env -u DJANGO_SETTINGS_MODULE $(abspath $(BIN))/django-admin makemessages --no-obsolete \
	--add-location file $(addprefix -l ,$(LANGUAGES))

.PHONY: demo manage test test-postgres test-mariadb lint docs format migrations-check messages messages-check bench dist clean

$(STAMP): setup.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "django_bigoauth needs Python 3.10 or newer; set PYTHON=python3.x")'
	@# Debian/Ubuntu: without python3-venv, venv fails and leaves a .venv with no pip; redo it then.
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || { \
	  echo "$(PYTHON) -m venv $(VENV)"; \
	  $(PYTHON) -m venv $(VENV) || { \
	    echo "Could not create $(VENV) with $(PYTHON): on Debian/Ubuntu run 'sudo apt-get install python3-venv', or use another Python 3.10+ with PYTHON=python3.x" >&2; \
	    exit 1; }; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

## demo: install, migrate, create the demo login, and serve the example site on DEMO_ADDR (127.0.0.1:8000)
# The sandbox's signing key first (no Django needed): the site reads it when its settings load.
demo: $(STAMP)
	$(BIN)/python example_project/sandbox/keys.py
	$(DEMO_MANAGE) migrate --noinput
	$(DEMO_MANAGE) demo_setup --url http://$(DEMO_ADDR)/
	$(DEMO_MANAGE) runserver $(DEMO_ADDR)

## manage: one manage.py command of the example site, e.g. make manage CMD="bigoauth_accounts" (same DEMO_ADDR as demo)
manage: $(STAMP)
	$(DEMO_MANAGE) $(CMD)

## test: the whole suite (SQLite unless DATABASE_URL points at PostgreSQL or MariaDB/MySQL)
test: $(STAMP)
	$(BIN)/python -m pytest

## test-postgres: the whole suite against the PostgreSQL server on 127.0.0.1:5432
test-postgres: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} $(BIN)/python -m pytest

## test-mariadb: the whole suite against the MariaDB (or MySQL) server on 127.0.0.1:3306
# mysqlclient is the "mysql" extra, not in "dev": it compiles against the client library's headers.
test-mariadb: $(STAMP)
	@$(BIN)/python -c 'import MySQLdb' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[mysql]' || { \
	  echo "Could not install mysqlclient: on Debian/Ubuntu run 'sudo apt-get install libmariadb-dev pkg-config'" >&2; \
	  exit 1; }
	DATABASE_URL=$${DATABASE_URL:-mysql://root@127.0.0.1:3306/test} $(BIN)/python -m pytest

## lint: ruff, the import-linter contracts of .importlinter (the layers, no cycles), and mypy (mypy.ini)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	PYTHONPATH=. $(BIN)/mypy

## docs: the documentation site in docs/_build/html (Sphinx; warnings are errors, every reference must resolve)
docs: $(STAMP)
	$(BIN)/sphinx-build -n -W --keep-going -q -b html docs docs/_build/html
	@echo "Open docs/_build/html/index.html"

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrations-check: $(STAMP)
	DJANGO_SETTINGS_MODULE=tests.settings PYTHONPATH=. $(BIN)/django-admin makemigrations django_bigoauth --check --dry-run

## messages: update the catalogs (django_bigoauth/locale/*/LC_MESSAGES/django.po) from the code, then compile them
# Translate what it adds (no empty msgstr, no "#, fuzzy" left), then run it again to compile.
messages: $(STAMP)
	cd django_bigoauth && $(MAKEMESSAGES)
	cd django_bigoauth && env -u DJANGO_SETTINGS_MODULE $(abspath $(BIN))/django-admin compilemessages

## messages-check: the catalogs hold every message of the code, all translated, none fuzzy, and the .mo files match them
# makemessages runs on a copy of the package, so the tree is left as it is. Needs GNU gettext.
messages-check: $(STAMP)
	@command -v msgfmt >/dev/null || { echo "messages-check needs GNU gettext: apt-get install gettext" >&2; exit 1; }
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cp -r django_bigoauth "$$tmp/"; \
	(cd "$$tmp/django_bigoauth" && $(MAKEMESSAGES) >/dev/null); \
	failed=0; \
	for lang in $(LANGUAGES); do \
	  dir=django_bigoauth/locale/$$lang/LC_MESSAGES; \
	  stats=$$(msgfmt --check --statistics -o "$$tmp/$$lang.mo" "$$tmp/$$dir/django.po" 2>&1) || { echo "$$dir/django.po: $$stats"; failed=1; continue; }; \
	  case "$$stats" in *untranslated*|*fuzzy*) \
	    echo "$$dir/django.po: makemessages finds messages without a translation: $$stats (run make messages, translate them, run it again)"; failed=1;; \
	  esac; \
	  msgcmp --use-fuzzy --use-untranslated "$$tmp/$$dir/django.po" "$$dir/django.po" 2>/dev/null || { \
	    echo "$$dir/django.po holds messages the code no longer has (run make messages)"; failed=1; }; \
	  msgfmt --check -o "$$tmp/$$lang.committed.mo" "$$dir/django.po"; \
	  cmp -s "$$tmp/$$lang.committed.mo" "$$dir/django.mo" || { \
	    echo "$$dir/django.mo is not compiled from django.po (run make messages)"; failed=1; }; \
	  echo "$$dir/django.po: $$stats"; \
	done; \
	exit $$failed

## bench: every benchmarks/bench_*.py, each printing its table of ratios (SQLite, or DATABASE_URL)
bench: $(STAMP)
	@for bench in benchmarks/bench_*.py; do echo "== $$bench"; $(BIN)/python $$bench || exit 1; done

## dist: the sdist and the wheel in dist/, checked by twine
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .tox artifacts docs/_build
