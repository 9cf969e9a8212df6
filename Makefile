# Herald: `make run` to start the app, `make test` to run the whole suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/herald
export TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: install run test lint format bench clean vendor browser

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)."; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@mkdir -p var
	@test -f .env || { cp .env.example .env; echo "Created .env from .env.example (DEBUG on, embedded SQLite and broker)."; }
	$(BIN)/python manage.py migrate --noinput
	@echo ""
	@echo "  Herald is starting at http://$${HERALD_HOST:-127.0.0.1}:$${HERALD_PORT:-8000}/"
	@echo "  First run: open the address and create the first owner (or: $(BIN)/python manage.py create_user --email you@example.com --workspace \"My team\")"
	@echo "  Ctrl-C stops the web server, the worker and beat together."
	@echo ""
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho -f config/Procfile.dev -d . start

test: $(STAMP) browser
	@DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} bash .ci/services
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy scheduler accounts config
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	@DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} bash .ci/services
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} $(BIN)/python bench/dispatch.py
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} $(BIN)/python bench/tick.py
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} $(BIN)/python bench/post_list.py
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} $(BIN)/python bench/calendar_month.py

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .mypy_cache .ruff_cache

# Browser libraries: npm installs the versions pinned in package-lock.json; each package's
# distributed file(s) and licence are copied unmodified into static/vendor/<package>/ (committed).
VENDOR_FILES := htmx.org:dist/htmx.min.js sortablejs:Sortable.min.js axe-core:axe.min.js
vendor:
	npm ci --ignore-scripts --no-audit --no-fund
	rm -rf static/vendor
	@for entry in $(VENDOR_FILES); do \
		pkg=$${entry%%:*}; file=$${entry#*:}; dest=static/vendor/$${pkg#@}; \
		mkdir -p $$dest; cp node_modules/$$pkg/$$file $$dest/; \
		cp node_modules/$$pkg/package.json $$dest/package.json; \
		for lic in node_modules/$$pkg/LICENSE*; do [ -f "$$lic" ] && cp "$$lic" $$dest/; done; \
		echo "vendored $$pkg $$(node -p "require('./node_modules/$$pkg/package.json').version"): $$file"; \
	done

# Browser tests drive Debian's Chromium: install it when it is missing and we can (root + apt).
browser:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Chromium is missing; installing Debian's chromium package."; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		fi; }
	@command -v chromium >/dev/null || { echo "The browser tests need Chromium: install Debian's 'chromium' package (apt-get install chromium) and run make test again."; exit 1; }
