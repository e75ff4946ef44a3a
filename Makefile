# The two README commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint pytest influxdb chromium openssl bench schema clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/collector demo

# A real InfluxDB 1.x server binary for the integration tests (Debian package `influxdb`).
influxdb:
	@if command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ]; then \
		echo "influxd: $$(command -v influxd || echo /usr/bin/influxd)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's influxdb package"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb >/dev/null; \
		systemctl disable --now influxdb >/dev/null 2>&1 || true; \
	elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb >/dev/null; \
	else \
		echo "influxd not found and cannot be installed here: integration tests will be skipped"; \
	fi

# A headless browser for the report page's test (Debian packages `chromium`, `chromium-driver`).
chromium:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
		echo "chromium: $$(command -v chromium), chromedriver: $$(command -v chromedriver)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium and chromium-driver packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
		echo "chromium not found and cannot be installed here: the report's browser test will be skipped"; \
	fi

# The openssl command makes the self-signed certificates of the TLS tests (Debian package `openssl`).
openssl:
	@if command -v openssl >/dev/null 2>&1; then \
		echo "openssl: $$(command -v openssl)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's openssl package"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null; \
	elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null; \
	else \
		echo "openssl not found and cannot be installed here: the TLS tests will be skipped"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check collector tests
	$(BIN)/mypy --strict collector

pytest: $(STAMP) influxdb chromium openssl
	$(BIN)/pytest -q

test: lint pytest

bench: $(STAMP) influxdb
	$(BIN)/python -m collector.bench

schema: $(STAMP)
	$(BIN)/python -m collector.schema > docs/schema.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-out
