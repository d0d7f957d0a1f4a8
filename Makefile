# Skywire-C — one Makefile drives everything.
#   make                 build every binary into build/$(BUILD)/bin
#   make test            install missing packages (as root), run all tests, then again under ASan+UBSan
#   make bench           print performance figures
#   make fuzz            build libFuzzer targets with clang and run each for FUZZ_SECONDS
#   make install PREFIX=/usr/local DESTDIR=
#   make run             bring up a local network (embedded PostgreSQL + services)
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
else
  CFLAGS_MODE := -O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2
  LDFLAGS_MODE :=
endif
ALL_CFLAGS := $(CFLAGS_COMMON) $(CFLAGS_MODE) $(CFLAGS)
ALL_LDFLAGS := -pthread $(LDFLAGS_MODE) $(LDFLAGS)

COMMON_SRCS := $(wildcard common/*.c) $(wildcard visor/app/*.c) # visor/app: the app library
COMMON_LIB := $(O)/libskywire-common.a

# Binaries: name -> sources
BINS := transport-discovery messaging-discovery skywire-cli skywire-visor messaging-server setup-node
BINS += route-finder
transport-discovery_SRCS := $(wildcard transport-discovery/*.c)
messaging-discovery_SRCS := $(wildcard messaging-discovery/*.c)
skywire-cli_SRCS := $(wildcard visor/cli/*.c) visor/config.c
skywire-visor_SRCS := $(wildcard visor/*.c)
messaging-server_SRCS := $(wildcard messaging-server/*.c)
BINS += helloworld
helloworld_SRCS := $(wildcard apps/helloworld/*.c)
BINS += skychat
skychat_SRCS := $(wildcard apps/skychat/*.c)
BINS += socksproxy socksproxy-client
socksproxy_SRCS := $(wildcard apps/socksproxy/*.c) apps/socks5/relay.c
socksproxy-client_SRCS := $(wildcard apps/socksproxy-client/*.c) apps/socks5/relay.c
# SSH apps (apps/ssh/README.md): server SSH, dialer SSH-client, command line SSH-cli
BINS += SSH SSH-client SSH-cli
SSH_SHARED_SRCS := apps/ssh/proto.c apps/ssh/frame_io.c apps/ssh/local.c
SSH_SRCS := apps/ssh/main.c apps/ssh/session.c apps/ssh/spawn.c apps/ssh/auth.c $(SSH_SHARED_SRCS)
SSH-client_SRCS := $(wildcard apps/ssh-client/*.c) $(SSH_SHARED_SRCS)
SSH-cli_SRCS := $(wildcard apps/ssh-cli/*.c) $(SSH_SHARED_SRCS)
$(O)/bin/SSH: PKG_LIBS += -lutil
TEST_EXTRA_OBJS_test_ssh_proto := $(O)/apps/ssh/proto.o $(O)/apps/ssh/auth.o
FUZZ_SRCS_fuzz_ssh_proto := apps/ssh/proto.c
route-finder_SRCS := $(wildcard route-finder/*.c)
BINS += hypervisor
hypervisor_SRCS := $(wildcard hypervisor/*.c)
setup-node_SRCS := $(wildcard setup-node/*.c)

HARNESS_SRCS := $(wildcard tests/harness/*.c)
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

$(COMMON_LIB): $(patsubst %.c,$(O)/%.o,$(COMMON_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

define BIN_RULE
$(O)/bin/$(1): $(patsubst %.c,$(O)/%.o,$($(1)_SRCS)) $(COMMON_LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $$(PKG_LIBS) -lm
endef
$(foreach b,$(BINS),$(eval $(call BIN_RULE,$(b))))

HARNESS_OBJS := $(patsubst %.c,$(O)/%.o,$(HARNESS_SRCS))
# A unit test links its object, the harness and common/. One that tests daemon modules with
# no daemon state lists their objects in TEST_EXTRA_OBJS_<test> (set before the foreach
# below, which makes them prerequisites); they are linked before the common library.
$(O)/test-bin/%: $(O)/tests/unit/%.o $(HARNESS_OBJS) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter-out $(COMMON_LIB),$^) $(COMMON_LIB) $(CHECK_LIBS) $(PKG_LIBS) -lm
TEST_EXTRA_OBJS_test_visor_packet := $(O)/visor/packet.o $(O)/visor/parse.o
TEST_EXTRA_OBJS_test_visor_rules := $(O)/visor/rules.o
TEST_EXTRA_OBJS_test_visor_hvconfig := $(O)/visor/config.o
TEST_EXTRA_OBJS_test_visor_apiconfig := $(O)/visor/config.o
TEST_EXTRA_OBJS_test_cli_tty := $(O)/visor/cli/tty_out.o
TEST_EXTRA_OBJS_test_visor_proto := $(O)/visor/router_proto.o $(O)/visor/appsrv_proto.o
# route-finder's modules but main.c (graph, search, ...) for its unit tests test_route_*
RF_LIB_OBJS := $(patsubst %.c,$(O)/%.o,$(filter-out route-finder/main.c,$(route-finder_SRCS)))
$(foreach t,$(filter test_route_%,$(notdir $(UNIT_TESTS))),$(eval TEST_EXTRA_OBJS_$(t) := $(RF_LIB_OBJS)))
$(foreach t,$(UNIT_TESTS),$(eval $(t): $(TEST_EXTRA_OBJS_$(notdir $(t)))))
$(O)/test-bin/%: $(O)/tests/integration/%.o $(HARNESS_OBJS) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(PKG_LIBS) -lm
$(O)/test-bin/%: $(O)/tests/security/%.o $(HARNESS_OBJS) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(PKG_LIBS) -lm
$(O)/bench-bin/%: $(O)/tests/bench/%.o $(HARNESS_OBJS) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(PKG_LIBS) -lm

# benches named bench_route_* link route-finder's modules as well (in-process search rate)
RF_BENCHES := $(filter $(O)/bench-bin/bench_route_%,$(BENCHES))
$(RF_BENCHES): $(O)/bench-bin/%: $(O)/tests/bench/%.o $(RF_LIB_OBJS) $(HARNESS_OBJS) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(PKG_LIBS) -lm

$(O)/test-tools/%: $(O)/tests/tools/%.o $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

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
FUZZ_CFLAGS := -std=gnu11 -g -O1 -I. -D_GNU_SOURCE -pthread $(PKG_CFLAGS) \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
# A fuzz target is built from its file and common/, plus the daemon sources listed in
# FUZZ_SRCS_<target>: only files of pure parsers that need no daemon state (no main.c).
FUZZ_SRCS_fuzz_visor_packet := visor/packet.c visor/rules.c
FUZZ_SRCS_fuzz_visor_store := visor/parse.c visor/config.c
FUZZ_SRCS_fuzz_route_packet := visor/rules.c
FUZZ_SRCS_fuzz_setup_messages := visor/router_proto.c visor/appsrv_proto.c visor/rules.c
build/fuzz/%: tests/fuzz/%.c $(COMMON_SRCS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRCS_$*) $(COMMON_SRCS) $(PKG_LIBS) -lm
$(foreach t,$(FUZZ_TARGETS),$(eval $(t): $(FUZZ_SRCS_$(notdir $(t)))))
fuzz: $(FUZZ_TARGETS)
	tests/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

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
# $(O)/gen/hv_web_data.c, linked into the hypervisor (and the unit test of its lookup, web.c).
HV_WEB_FILES := $(sort $(wildcard hypervisor/web/*))
hypervisor_EXTRA_OBJS += $(O)/gen/hv_web_data.o
$(O)/gen/hv_web_data.c: $(HV_WEB_FILES) scripts/embed.sh
	@mkdir -p $(dir $@)
	scripts/embed.sh $(HV_WEB_FILES) >$@.tmp && mv $@.tmp $@
$(O)/gen/hv_web_data.o: $(O)/gen/hv_web_data.c
	$(CC) $(ALL_CFLAGS) -c $< -o $@
$(O)/bin/hypervisor: $(hypervisor_EXTRA_OBJS)
$(O)/test-bin/test_hv_web: $(O)/hypervisor/web.o $(O)/gen/hv_web_data.o

-include $(shell find build -name '*.d' 2>/dev/null)
