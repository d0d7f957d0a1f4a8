# Skywire-C — one Makefile drives everything.
#   make                 build every binary into build/$(BUILD)/bin
#   make test            install missing packages (as root), run all tests, then again under ASan+UBSan
#   make bench           print performance figures
#   make fuzz            build libFuzzer targets with clang and run each for FUZZ_SECONDS
#   make install PREFIX=/usr/local DESTDIR=
#   make run             bring up a local network (embedded PostgreSQL + services)
#
# What a build holds (build/$(BUILD): release by default; a name ending in asan builds with
# ASan+UBSan; make fuzz builds BUILD=fuzz with clang):
#   libskywire-common.a      common/ and visor/app/ (the app library); everything links it
#   lib/libsw-<folder>.a     each program folder's objects but main.o (LIB_DIRS below), e.g.
#                            lib/libsw-visor.a, lib/libsw-route-finder.a, lib/libsw-ssh.a
#   bin/<program>            its folder's main.o + the libraries in <program>_LIBS + common
#   test-bin/, bench-bin/, test-tools/, and build/fuzz/ for fuzz targets: the file's object
#                            (tests: + the one check main, tests/harness/check_main.c) + the
#                            libraries in <name>_LIBS + common
BUILD ?= release
O := build/$(BUILD)
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR ?=

PKGS := libsodium json-c libmicrohttpd libpq libcurl libevent_core libevent_pthreads
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
        -Wvla -Wpointer-arith -Wno-unused-parameter
CFLAGS_COMMON := -std=gnu11 $(WARN) -I. -D_GNU_SOURCE -pthread -MMD -MP $(PKG_CFLAGS)
ifneq ($(filter %asan,$(BUILD)),) # BUILD=asan, or any name ending in asan
  CFLAGS_MODE := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS_MODE := -fsanitize=address,undefined
else ifeq ($(BUILD),fuzz) # make fuzz: clang, libFuzzer instrumentation; clang's warnings not fatal
  CC := clang
  CFLAGS_MODE := -O1 -g -Wno-error -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
  LDFLAGS_MODE := -fsanitize=address,undefined
else
  CFLAGS_MODE := -O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2
  LDFLAGS_MODE :=
endif
ALL_CFLAGS := $(CFLAGS_COMMON) $(CFLAGS_MODE) $(CFLAGS)
ALL_LDFLAGS := -pthread $(LDFLAGS_MODE) $(LDFLAGS)

COMMON_SRCS := $(wildcard common/*.c) $(wildcard visor/app/*.c) # visor/app: the app library
COMMON_LIB := $(O)/libskywire-common.a

# Daemon and app libraries: each folder in LIB_DIRS becomes $(O)/lib/libsw-<last part of its
# path>.a, made of its .c files but main.c. Programs, tests, benches and fuzz targets name the
# libraries they link in <name>_LIBS (library names, in link order); common comes last.
LIB_DIRS := transport-discovery messaging-discovery messaging-server route-finder setup-node \
            hypervisor visor visor/cli apps/skychat apps/socks5 apps/ssh apps/ssh-cli
lib_files = $(patsubst %,$(O)/lib/libsw-%.a,$(1))

# Programs: <program>_DIR holds its main.c.
BINS := transport-discovery messaging-discovery messaging-server route-finder setup-node hypervisor
# The services' folders are named as their programs, each linking its own library.
$(foreach b,$(BINS),$(eval $(b)_DIR := $(b))$(eval $(b)_LIBS := $(b)))
BINS += skywire-visor skywire-cli
skywire-visor_DIR := visor
skywire-visor_LIBS := visor
skywire-cli_DIR := visor/cli
skywire-cli_LIBS := cli visor # the visor's config.c: the CLI generates and reads visor configs
BINS += helloworld skychat socksproxy socksproxy-client
helloworld_DIR := apps/helloworld
skychat_DIR := apps/skychat
skychat_LIBS := skychat
socksproxy_DIR := apps/socksproxy
socksproxy_LIBS := socks5
socksproxy-client_DIR := apps/socksproxy-client
socksproxy-client_LIBS := socks5
# SSH apps (apps/ssh/README.md): server SSH, dialer SSH-client, command line SSH-cli; the
# three share apps/ssh's proto, frame_io and local (the server alone uses session, spawn, auth)
BINS += SSH SSH-client SSH-cli
SSH_DIR := apps/ssh
SSH_LIBS := ssh
SSH-client_DIR := apps/ssh-client
SSH-client_LIBS := ssh
SSH-cli_DIR := apps/ssh-cli
SSH-cli_LIBS := ssh-cli ssh
$(O)/bin/SSH: PKG_LIBS += -lutil

# check_main.c is the main() of the check tests alone (benches and tools have their own)
CHECK_MAIN_OBJ := $(O)/tests/harness/check_main.o
HARNESS_SRCS := $(filter-out tests/harness/check_main.c,$(wildcard tests/harness/*.c))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(O)/test-bin/%,$(wildcard tests/unit/test_*.c))
INTEG_TESTS := $(patsubst tests/integration/%.c,$(O)/test-bin/%,$(wildcard tests/integration/test_*.c))
# adversarial tests of the trust boundaries (docs/security.md), built and run like integration tests
INTEG_TESTS += $(patsubst tests/security/%.c,$(O)/test-bin/%,$(wildcard tests/security/test_*.c))
TOOLS := $(patsubst tests/tools/%.c,$(O)/test-tools/%,$(wildcard tests/tools/*.c))
BENCH_SRCS := $(wildcard tests/bench/*.c)
BENCHES := $(patsubst tests/bench/%.c,$(O)/bench-bin/%,$(BENCH_SRCS))

BIN_PATHS := $(addprefix $(O)/bin/,$(BINS))

.SECONDARY:
.PHONY: all test test-build test-run test-deploy bench fuzz install clean deps run
all: $(BIN_PATHS)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# Archives are made afresh so that a removed or renamed source leaves no stale member behind.
$(COMMON_LIB): $(patsubst %.c,$(O)/%.o,$(COMMON_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

define LIB_RULE
$(call lib_files,$(notdir $(1))): $(patsubst %.c,$(O)/%.o,$(filter-out $(1)/main.c,$(wildcard $(1)/*.c)))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && $$(AR) rcs $$@ $$^
endef
$(foreach d,$(LIB_DIRS),$(eval $(call LIB_RULE,$(d))))

# Tests, benches, tools and fuzz targets of daemon or app modules (parsers, tables, the route
# finder's in-process search) name the libraries they link in <name>_LIBS, as programs do;
# $(call link_with,LIBRARIES,NAMES) sets it for several names.
link_with = $(foreach n,$(2),$(eval $(n)_LIBS := $(1)))
$(call link_with,visor,test_visor_packet test_visor_rules test_visor_hvconfig \
    test_visor_apiconfig test_visor_proto fuzz_visor_packet fuzz_visor_store \
    fuzz_route_packet fuzz_setup_messages test_visor_route_record test_visor_route_stream \
    fuzz_visor_route_record)
$(call link_with,visor ssh,fuzz_local_files)
$(call link_with,cli,test_cli_tty)
$(call link_with,route-finder,test_route_graph bench_route_finder)
$(call link_with,hypervisor,test_hv_web)
$(call link_with,ssh,test_ssh_proto fuzz_ssh_proto)

# Link rules. Second expansion lets one pattern rule read the variables of the target it
# builds: in a prerequisite list $$* is the target's name, so $(libs_of_target) becomes the
# libraries its <name>_LIBS names, linked after its own objects and before common.
.SECONDEXPANSION:
libs_of_target = $$(call lib_files,$$($$*_LIBS))
link = $(CC) $(ALL_LDFLAGS) -o $@ $^ $(1) $(PKG_LIBS) -lm
$(O)/bin/%: $(O)/$$($$*_DIR)/main.o $(libs_of_target) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call link)
HARNESS_OBJS := $(patsubst %.c,$(O)/%.o,$(HARNESS_SRCS))
$(O)/test-bin/%: $(O)/tests/unit/%.o $(CHECK_MAIN_OBJ) $(HARNESS_OBJS) $(libs_of_target) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call link,$(CHECK_LIBS))
$(O)/test-bin/%: $(O)/tests/integration/%.o $(CHECK_MAIN_OBJ) $(HARNESS_OBJS) $(libs_of_target) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call link,$(CHECK_LIBS))
$(O)/test-bin/%: $(O)/tests/security/%.o $(CHECK_MAIN_OBJ) $(HARNESS_OBJS) $(libs_of_target) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call link,$(CHECK_LIBS))
$(O)/bench-bin/%: $(O)/tests/bench/%.o $(HARNESS_OBJS) $(libs_of_target) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call link,$(CHECK_LIBS))
$(O)/test-tools/%: $(O)/tests/tools/%.o $(libs_of_target) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call link)

test-build: $(BIN_PATHS) $(UNIT_TESTS) $(INTEG_TESTS) $(TOOLS)

# Runs the suite against one build (BUILD=release or asan).
test-run: test-build
	tests/run-tests.sh $(O)

deps:
	@scripts/install-deps.sh

run: deps
	$(MAKE) BUILD=release all
	scripts/run-local.sh

test: deps
	$(MAKE) BUILD=release test-run
	$(MAKE) BUILD=asan test-run
	$(MAKE) BUILD=release test-deploy

# docker-compose.yml under podman (tests/deploy/test_compose.sh; root only, else it skips;
# SW_TEST_DEPLOY=0 skips it). Once per `make test`, not per build flavour.
test-deploy: $(O)/bin/skywire-cli
	timeout -k 60 1500 tests/deploy/test_compose.sh $(O)

bench: $(BIN_PATHS) $(BENCHES) $(TOOLS)
	tests/run-bench.sh $(O)

FUZZ_SECONDS ?= 20
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
# Fuzz targets are a build of their own (BUILD=fuzz: clang, instrumented common/ and daemon
# libraries in build/fuzz); each links like a test, with libFuzzer's main().
fuzz:
	$(MAKE) BUILD=fuzz fuzz-targets
	tests/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)
ifeq ($(BUILD),fuzz)
.PHONY: fuzz-targets
fuzz-targets: $(FUZZ_TARGETS)
$(FUZZ_TARGETS): build/fuzz/%: $(O)/tests/fuzz/%.o $(libs_of_target) $(COMMON_LIB)
	$(call link,-fsanitize=fuzzer)
endif

# Binaries, systemd units (pointing at $(PREFIX)/bin), example environment files in
# $(SYSCONFDIR)/skywire (an existing one is kept) and docs. On a real install (no DESTDIR) it
# also generates the visor's config with fresh keys unless one exists (scripts/install-config.sh).
install: $(BIN_PATHS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/systemd/system \
	    $(DESTDIR)$(PREFIX)/share/doc/skywire-c $(DESTDIR)$(SYSCONFDIR)/skywire
	install -m 0755 $(BIN_PATHS) $(DESTDIR)$(PREFIX)/bin/
	for u in deploy/systemd/*.service; do \
	    sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' $$u >$(DESTDIR)$(PREFIX)/lib/systemd/system/$${u##*/} && \
	    chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/$${u##*/} || exit 1; done
	for e in deploy/env/*.env; do t=$(DESTDIR)$(SYSCONFDIR)/skywire/$${e##*/}; \
	    [ -e $$t ] || install -m 0640 $$e $$t || exit 1; done
	install -m 0644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/skywire-c/
	@[ -n "$(DESTDIR)" ] || scripts/install-config.sh $(DESTDIR)$(PREFIX)/bin/skywire-cli $(SYSCONFDIR)/skywire

clean:
	rm -rf build

# The hypervisor's web page: hypervisor/web/* become byte arrays (scripts/embed.sh) in
# $(O)/gen/hv_web_data.c, a member of the hypervisor's library (used by web.c's lookup).
HV_WEB_FILES := $(sort $(wildcard hypervisor/web/*))
$(call lib_files,hypervisor): $(O)/gen/hv_web_data.o
$(O)/gen/hv_web_data.c: $(HV_WEB_FILES) scripts/embed.sh
	@mkdir -p $(dir $@)
	scripts/embed.sh $(HV_WEB_FILES) >$@.tmp && mv $@.tmp $@
$(O)/gen/hv_web_data.o: $(O)/gen/hv_web_data.c
	$(CC) $(ALL_CFLAGS) -c $< -o $@

-include $(shell find build -name '*.d' 2>/dev/null)
