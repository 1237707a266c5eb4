# Makefile - builds augurd, its unit/integration tests and fuzzers; installs what they need.
#
#   make run     install dependencies, build, start augurd in the foreground with defaults
#   make test    install dependencies, build, run every test (plain and under ASan+UBSan)
#   make deps    install the Debian packages the build and the tests need (idempotent, fast)
#   make fuzz    run each libFuzzer target for FUZZ_SECONDS (not part of make test)
#   make crash-long  the kill -9 durability test with 200 rounds (make test runs 20)
#
# Every output goes under $(B) (default build/; the sanitizer variant uses build/asan/).

B ?= build
SAN ?= 0
CC := gcc
CXX := g++
FUZZ_CC := clang

GIT_REV := $(or $(shell git rev-parse --short HEAD 2>/dev/null | head -n1),unknown)
GIT_BRANCH := $(or $(shell git symbolic-ref --short HEAD 2>/dev/null | head -n1),unknown)
BUILD_DATE := $(shell date -u +%Y%m%d-%H:%M:%S)
VERSION_DEFS := -DAG_REVISION=\"$(GIT_REV)\" -DAG_BRANCH=\"$(GIT_BRANCH)\" -DAG_BUILD_DATE=\"$(BUILD_DATE)\"
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -Iinclude -I$(B)/gen -pthread -MMD -MP $(VERSION_DEFS) $(EXTRA_CFLAGS)
CXXFLAGS := -std=c++17 -O2 -g -Wall -Wextra -Werror -Iinclude -pthread -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS := -pthread
LIBS := -lmicrohttpd -llmdb -lprotobuf-c -lsnappy -lz -lyaml -lre2 -lgsl -lgslcblas -lcurl -lcrypto -lm
ifeq ($(SAN),1)
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  CFLAGS := $(filter-out -O2,$(CFLAGS)) -O1 $(SANFLAGS)
  CXXFLAGS := $(filter-out -O2,$(CXXFLAGS)) -O1 $(SANFLAGS)
  LDFLAGS += $(SANFLAGS)
endif

DEB_PKGS := gcc g++ make libmicrohttpd-dev liblmdb-dev lmdb-utils libprotobuf-c-dev \
  protobuf-c-compiler libsnappy-dev zlib1g-dev libgsl-dev libcmocka-dev libyaml-dev libre2-dev \
  clang libclang-rt-14-dev prometheus prometheus-node-exporter python3 curl wrk victoria-metrics \
  python3-numpy python3-pandas python3-statsmodels libcurl4-openssl-dev libssl-dev \
  prometheus-alertmanager nodejs chromium

PROTO_SRCS := $(wildcard proto/*.proto)
PROTO_C := $(patsubst proto/%.proto,$(B)/gen/%.pb-c.c,$(PROTO_SRCS))
PROTO_H := $(PROTO_C:.c=.h)
LIB_C := $(wildcard storage/*.c) $(filter-out daemon/main.c,$(wildcard daemon/*.c daemon/*/*.c))
LIB_CXX := $(wildcard storage/*.cc)
LIB_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(LIB_C)) $(patsubst %.cc,$(B)/obj/%.o,$(LIB_CXX)) \
  $(patsubst $(B)/gen/%.c,$(B)/obj/gen/%.o,$(PROTO_C)) $(B)/obj/gen/web_assets.o
# The dashboard: our files plus the pinned uPlot build (npm ci from web/package-lock.json),
# embedded into the binary.
WEB_FILES := /=web/index.html /assets/app.js=web/app.js /assets/app.css=web/app.css \
  /assets/uPlot.iife.min.js=web/node_modules/uplot/dist/uPlot.iife.min.js \
  /assets/uPlot.min.css=web/node_modules/uplot/dist/uPlot.min.css
WEB_DEPS := $(foreach f,$(WEB_FILES),$(lastword $(subst =, ,$(f))))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRCS))
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
FUZZ_SECONDS ?= 60

.PHONY: all deps run test unit integration fuzz-replay fuzz clean bench crash-long
all: $(B)/augurd $(B)/augur

# Generated protobuf sources are kept, not treated as intermediates to delete.
.SECONDARY:

deps:
	@missing=""; have=" $$(dpkg-query -W -f='$${Package}=$${db:Status-Abbrev}\n' $(DEB_PKGS) 2>/dev/null \
	  | sed -n 's/=ii *$$//p' | tr '\n' ' ') "; \
	for p in $(DEB_PKGS); do case "$$have" in *" $$p "*) ;; *) missing="$$missing $$p";; esac; done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y --no-install-recommends $$missing \
	    || { $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends $$missing; }; \
	fi
	@# npm: Debian's package, unless the installed nodejs already brings its own
	@command -v npm >/dev/null 2>&1 || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends npm; }

# One npm ci for every file it provides (a stamp, so that make -j runs it once).
web/node_modules/.augur-stamp: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

web/node_modules/uplot/dist/%: web/node_modules/.augur-stamp
	@test -f $@

$(B)/gen/web_assets.c: $(WEB_DEPS) tools/embed_web.py
	@mkdir -p $(B)/gen
	python3 tools/embed_web.py $@ $(WEB_FILES)

$(B)/gen/%.pb-c.c $(B)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(B)/gen
	protoc-c --proto_path=proto --c_out=$(B)/gen $<

$(B)/obj/gen/%.o: $(B)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Wstrict-prototypes -Wmissing-prototypes -Wshadow,$(CFLAGS)) -c $< -o $@

$(B)/obj/%.o: %.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(B)/libaugur.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(B)/augurd: $(B)/obj/daemon/main.o $(B)/libaugur.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/augur: $(B)/obj/tools/augur.o $(B)/obj/tools/simulate.o $(B)/libaugur.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/tests/%: tests/unit/%.c $(B)/libaugur.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(B)/libaugur.a $(LDFLAGS) $(LIBS) -lcmocka -lstdc++

build/bench/loadgen: tests/bench/loadgen.c $(B)/libaugur.a
	@mkdir -p build/bench
	$(CC) $(CFLAGS) -o $@ $< $(B)/libaugur.a $(LDFLAGS) $(LIBS) -lstdc++

# Ingest speed and size on this machine (augurd only for now; peers come with issue 4), then
# dashboard query latency of augurd, Prometheus and VictoriaMetrics on the same data.
bench: deps all build/bench/loadgen
	python3 tests/bench/run.py --augurd $(B)/augurd --loadgen build/bench/loadgen
	python3 tests/bench/query_bench.py --augurd $(B)/augurd --loadgen build/bench/loadgen
	bash tests/bench/anomaly_bench.sh
	python3 tests/bench/forecast_bench.py --augur $(B)/augur
	python3 tests/bench/scaling_bench.py --augur $(B)/augur
	python3 tests/bench/throughput.py --augurd $(B)/augurd --loadgen build/bench/loadgen

run: deps all
	./$(B)/augurd

# The whole suite: unit tests, fuzz corpora and integration tests, then the same under
# AddressSanitizer + UndefinedBehaviorSanitizer with leak detection on.
test: deps
	@rm -f build/test-results.txt
	@st=0; \
	$(MAKE) all unit promql-conformance integration fuzz-replay || st=1; \
	$(MAKE) B=build/asan SAN=1 all unit promql-conformance integration || st=1; \
	python3 tests/summary.py build/test-results.txt || st=1; \
	exit $$st

unit: $(UNIT_BINS)
	@mkdir -p build
	@for t in $(UNIT_BINS); do \
	  if ASAN_OPTIONS=detect_leaks=1 ./$$t; then echo "PASS unit $$t" >> build/test-results.txt; \
	  else echo "FAIL unit $$t" >> build/test-results.txt; fi; done

# PromQL conformance: Prometheus 2.42's own test files (read from ../shared/promql-testdata, never
# copied) against our engine; FAIL when a file passes fewer cases than tests/promql/baseline.txt.
.PHONY: promql-conformance
$(B)/tests/conformance: tests/promql/conformance.c $(B)/libaugur.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(B)/libaugur.a $(LDFLAGS) $(LIBS) -lstdc++

promql-conformance: $(B)/tests/conformance
	@mkdir -p build
	@if [ ! -d ../shared/promql-testdata ]; then \
	  echo "promql-conformance: ../shared/promql-testdata is missing (it sits beside the checkout)"; \
	  echo "FAIL promql-conformance (no test data)" >> build/test-results.txt; exit 0; fi; \
	if ./$(B)/tests/conformance --check tests/promql/baseline.txt \
	    --unsupported tests/promql/unsupported.txt ../shared/promql-testdata/*.test; \
	  then echo "PASS promql-conformance" >> build/test-results.txt; \
	  else echo "FAIL promql-conformance" >> build/test-results.txt; fi

integration: $(B)/augurd
	@mkdir -p build
	python3 tests/integration/run.py --augurd $(B)/augurd --results build/test-results.txt

# The kill -9 durability test with 200 rounds instead of make test's 20 (about 15 minutes).
crash-long: deps $(B)/augurd
	AUGUR_CRASH_ROUNDS=200 python3 tests/integration/run.py --augurd $(B)/augurd \
	  --results build/crash-long-results.txt -k test_kill9

build/fuzz/%: tests/fuzz/%.c $(LIB_C) $(LIB_CXX) $(PROTO_C)
	@mkdir -p build/fuzz/obj
	$(MAKE) B=build/fuzz/lib CC=$(FUZZ_CC) CXX=clang++ SAN=1 \
	  EXTRA_CFLAGS=-fsanitize=fuzzer-no-link build/fuzz/lib/libaugur.a
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -Iinclude -Ibuild/fuzz/lib/gen \
	  -fsanitize=fuzzer,address,undefined -c $< -o build/fuzz/obj/$*.o
	clang++ -fsanitize=fuzzer,address,undefined -o $@ build/fuzz/obj/$*.o \
	  build/fuzz/lib/libaugur.a $(LIBS)

fuzz-replay: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); \
	  if ./$$f -runs=0 tests/fuzz/corpus/$$n/* > build/fuzz/$$n.log 2>&1; \
	  then echo "PASS fuzz-corpus $$n" >> build/test-results.txt; \
	  else cat build/fuzz/$$n.log; echo "FAIL fuzz-corpus $$n" >> build/test-results.txt; fi; done

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p build/fuzz/work/$$n; \
	  ./$$f -max_total_time=$(FUZZ_SECONDS) build/fuzz/work/$$n tests/fuzz/corpus/$$n || exit 1; done

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
