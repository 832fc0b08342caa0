# lienthong — build, test and demo.
#
#   make            build the daemon (lienthongd) and the CLI (lienthong)
#   make test       install missing dependencies, then run every test;
#                   the last line is "N passed, N failed"
#   make demo       run a local multi-level network (three tiers, 2024 geography);
#                   make demo TIERS=2 for the two-tier 2025 geography
#   make SANITIZER=address,undefined   build with sanitizers (into build-san/)
#
# Warnings are errors. No autotools, no code generation.

CC       ?= cc
PKGS     := libpq libzmq msgpack libuv inih
SANITIZER ?=

ifeq ($(SANITIZER),)
BUILD    := build
SANFLAGS :=
else
BUILD    := build-san
SANFLAGS := -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lpq -lzmq -lmsgpackc -luv -linih)

WARN     := -Wall -Wextra -Werror -Wformat=2 -Wstrict-prototypes -Wshadow \
            -Wmissing-prototypes -Wno-unused-parameter -Wvla -Wnull-dereference
CFLAGS   ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -Icommon $(PKG_CFLAGS) \
              -DLT_SCHEMA_DIR='"$(CURDIR)/schemas"' -MMD -MP
LDLIBS   := $(PKG_LIBS) -lm

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
DAEMON_SRC := $(wildcard services/lienthongd/*.c)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o)
CLI_SRC    := $(wildcard services/lienthong/*.c)
CLI_OBJ    := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)

.PHONY: all deps test unit tools demo bench fuzz clean
all: $(BUILD)/lienthongd $(BUILD)/lienthong

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/lienthongd: $(DAEMON_OBJ) $(COMMON_OBJ)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/lienthong: $(CLI_OBJ) $(COMMON_OBJ)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(BUILD)/tests/unit/unit.o $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

unit: $(UNIT_BIN)

# Test tools: a scriptable protocol peer; a TCP relay adding latency (fault tests).
tools: $(BUILD)/tests/ltpeer $(BUILD)/tests/ltdelay

$(BUILD)/tests/ltpeer: $(BUILD)/tests/tools/ltpeer.o $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/ltdelay: $(BUILD)/tests/tools/ltdelay.o
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^

# Install what the build, the tests and the demo need (Debian 12), only when missing.
deps:
	@tests/lib/deps.sh

test: deps
	@tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@deploy/demo/demo.sh $(if $(TIERS),--tiers $(TIERS))

bench: deps
	@$(MAKE) --no-print-directory all
	@tests/bench/bench.sh

# Benchmark load: many simulated communes speaking the protocol (tests/bench/).
$(BUILD)/tests/ltsim: $(BUILD)/tests/bench/ltsim.o $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

fuzz: deps
	@tests/fuzz/run.sh $(or $(FUZZ_SECONDS),300)

clean:
	rm -rf build build-san build-fuzz

-include $(shell find build build-san -name '*.d' 2>/dev/null)
