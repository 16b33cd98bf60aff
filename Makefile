# piecemeal: the two set-up commands are `make demo` and `make test` (see README.md).
CARGO ?= cargo
# Python must not leave __pycache__ folders in the source tree.
export PYTHONDONTWRITEBYTECODE := 1
BIN := $(or $(CARGO_TARGET_DIR),target)/release/piecemeal
CLIENT_DIR := target/client
TORRENTS := --torrent testdata/file.torrent --torrent testdata/folder.torrent
TRACKER := http://127.0.0.1:6969/announce

.PHONY: build demo test unit interop lab-test bench bench-dht bench-swarm run-tracker run-peers run-client clean

build:
	$(CARGO) build --release

demo: build
	BIN=$(BIN) bash scripts/demo.sh

test: unit interop lab-test browser-test

unit:
	$(CARGO) test --release

interop: build
	bash tests/interop/install.sh
	python3 tests/interop/run.py --bin $(BIN)

# A piecemeal swarm in network namespaces with capped uploads (root; fails, never skips, without it).
lab-test: build
	bash tests/lab/install.sh
	python3 tests/lab/lab_test.py --bin $(BIN)

# The web page in headless Chromium from Debian's packages (fails, never skips, without a browser);
# the screenshot goes to $ARTIFACTS_DIR, else $CARGO_TARGET_DIR/browser-test, else /tmp/piecemeal/browser-test.
# python3-selenium is Debian's, so Debian's python runs it.
# BROWSER_TEST_ARGS="--copy-screenshot tests/browser/web-page.png" refreshes the README's picture.
.PHONY: browser-test
browser-test: build
	bash tests/browser/install.sh
	/usr/bin/python3 tests/browser/web_test.py --bin $(BIN) $(BROWSER_TEST_ARGS)

# 1 GiB, one seeder -> one leecher: piecemeal and libtorrent side by side (scripts/bench_transfer.py).
bench: build
	bash tests/interop/install.sh
	$(CARGO) build --release --example hash_rate
	python3 scripts/bench_transfer.py --bin $(BIN) --hash-rate $(dir $(BIN))examples/hash_rate

# A DHT node under a query flood from 64 loopback addresses: answers/s, table size, CPU, RSS.
bench-dht:
	$(CARGO) test --release --test dht flood -- --nocapture

# piecemeal and libtorrent swarms against the Kurose-Ross bound; plots in $(BENCH_SWARM_OUT).
BENCH_SWARM_OUT := $(or $(CARGO_TARGET_DIR),target)/bench-swarm
bench-swarm: build
	bash tests/interop/install.sh
	bash tests/lab/install.sh || true
	python3 tests/lab/bench_swarm.py --bin $(BIN) --out $(BENCH_SWARM_OUT)

# Trackers side by side: piecemeal's and Debian's opentracker under the same load, HTTP and UDP
# (each half runs when its script is there).
.PHONY: bench-tracker
bench-tracker: build
	bash tests/interop/install.sh
	@for half in tests/bench/tracker_http.py tests/bench/tracker_udp.py; do \
	  if [ -f $$half ]; then python3 $$half --bin $(BIN) || exit 1; fi; \
	done

# The assignment's scenario in three terminals: tracker, two seeders, a client with an empty folder.
run-tracker: build
	$(BIN) tracker --bind 127.0.0.1:6969 --interval 60

run-peers: build
	bash -c 'trap "kill 0" INT TERM EXIT; \
	  $(BIN) peer --dir testdata/peer1 --bind 127.0.0.1 --port 6881 $(TORRENTS) & \
	  $(BIN) peer --dir testdata/peer2 --bind 127.0.0.1 --port 6882 $(TORRENTS) & \
	  wait'

run-client: build
	mkdir -p $(CLIENT_DIR)
	$(BIN) peer --dir $(CLIENT_DIR) --bind 127.0.0.1 --port 6883 $(TORRENTS)

clean:
	$(CARGO) clean

# Structure-aware mutation fuzzing of every network parser (see README "Fuzzing"); findings are
# saved outside the tree. FUZZ_TARGETS picks some (names as printed), FUZZ_INPUTS the count.
FUZZ_INPUTS ?= 10000000
FUZZ_CRASH_DIR ?= $(or $(TMPDIR),/tmp)/piecemeal-fuzz-crashes
FUZZ_TARGETS ?=
.PHONY: fuzz
fuzz:
	$(CARGO) build --release --example fuzz
	FUZZ_INPUTS=$(FUZZ_INPUTS) FUZZ_CRASH_DIR=$(FUZZ_CRASH_DIR) \
	  $(or $(CARGO_TARGET_DIR),target)/release/examples/fuzz $(FUZZ_TARGETS)
