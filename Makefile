# A staged HTTP/1.1 server in C: from a blocking echo server to io_uring.
#
#   make                              build every stage
#   make run [STAGE=N] [ARGS=...]     build stage N (default: the highest) and run it here;
#                                     from stage 4 on it serves the tutorial site
#   make test [STAGE=N] [ARGS=...]    the test suite against stage N, or against every stage
#   make memcheck [STAGE=N]           the suite with every server under valgrind's memcheck
#                                     (default: stages 2 and 3): fails on any error, and on
#                                     any byte definitely or indirectly lost at exit
#   make diff A=1 B=2                 what stage B changes in stage A
#   make deps                         install the Debian packages the project needs, if missing
#   make fuzz [FUZZ_SECONDS=60]       fuzz the HTTP parser with libFuzzer
#   make bench-parser                 the HTTP parser against http_parser and picohttpparser
#   make bench-router                 stage 4's router on the GitHub API's 203 routes
#   make bench [QUICK=1]              every stage against nginx and a ceiling: docs/benchmarks.md
#   make docs                         the tutorial as a web site, in docs/site/
#   make clean
#
# SANITIZE=1 on any of these builds with AddressSanitizer and UndefinedBehaviorSanitizer,
# e.g. `make SANITIZE=1 test STAGE=2`; SANITIZE=thread with ThreadSanitizer, e.g.
# `make SANITIZE=thread test STAGE=5,6`.

# A stage is a directory stageN-name with a Makefile.
STAGES := $(sort $(patsubst %/Makefile,%,$(wildcard stage[0-9]-*/Makefile)))
stage_dir = $(filter stage$(1)-%,$(STAGES))

# Debian's Python, which has python3-pytest; the first python3 on PATH may be another one.
PYTHON := /usr/bin/python3

# Everything the build, the tests, the fuzzer, the benchmarks and the docs use, as Debian 12
# packages: compilers and libraries; the test runner and its tools; the load generators,
# nginx for comparison and the plotting; the site's converters and the browser that checks it.
PACKAGES := gcc make libc6-dev liburing-dev python3 python3-pytest netcat-openbsd strace valgrind \
            clang libclang-rt-14-dev libhttp-parser-dev libh2o-dev \
            wrk nghttp2-client nginx-light gnuplot-nox linux-perf \
            graphviz pandoc chromium chromium-driver python3-selenium

FUZZ_SECONDS := 60

all: $(STAGES)

$(STAGES):
	$(MAKE) -C $@

RUN_STAGE := $(if $(STAGE),$(call stage_dir,$(STAGE)),$(lastword $(STAGES)))

# Without STAGE, the newest stage; if that is stage 6 and the kernel refuses io_uring,
# stage 5 serves instead, and says so. Stages 4 and later serve the tutorial site, which
# is their default --root once built.
run: deps
	@test -n "$(RUN_STAGE)" || { echo "make run: there is no stage $(STAGE)" >&2; exit 2; }
	@stage=$(RUN_STAGE); \
	if [ $$stage = stage6-uring ] && [ -z "$(STAGE)" ]; then \
		$(MAKE) -s tools/uring-probe && tools/uring-probe || { \
			echo "make run: stage 6 needs io_uring; stage 5 serves instead"; stage=stage5-threads; }; \
	fi; \
	case $$stage in stage[1-3]-*) ;; *) $(MAKE) -C docs || exit 1 ;; esac; \
	$(MAKE) -C $$stage && exec ./$$stage/server $(ARGS)

tools/uring-probe: tools/uring-probe.c
	$(CC) -std=c17 -O2 -Wall -Wextra -Werror -o $@ $< -luring

# The suite builds each stage itself, with the SANITIZE setting it inherits from here.
test: deps
	$(PYTHON) -m pytest tests $(if $(STAGE),--stage $(STAGE)) $(ARGS)

# The suite with every server it starts run by valgrind (tests/conftest.py: SERVER_WRAPPER).
# Any error, and any block definitely or indirectly lost at exit, makes valgrind exit with
# status 99, which the suite recognises and reports with valgrind's output. Tests that
# measure the server process itself are skipped (tests/conftest.py says which and why).
# Stage 4 and later need openat2(), which Debian 12's valgrind (3.19) does not know: it
# fails the call with ENOSYS, and the server refuses to start. With a valgrind that does,
# add them: make memcheck STAGE=2,3,4.
MEMCHECK_STAGES := 2,3
VALGRIND := valgrind --quiet --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
            --num-callers=30

memcheck: deps
	@test -z "$(SANITIZE)" || { echo "make memcheck: valgrind needs a build without SANITIZE" >&2; exit 2; }
	SERVER_WRAPPER="$(VALGRIND)" $(PYTHON) -m pytest tests --stage $(or $(STAGE),$(MEMCHECK_STAGES)) $(ARGS)

fuzz: deps
	$(MAKE) -C tests/fuzz run FUZZ_SECONDS=$(FUZZ_SECONDS)

bench-parser: deps
	$(MAKE) -C tests/bench/parser run

bench-router: deps
	$(MAKE) -C tests/bench/router run

bench: deps
	$(MAKE) -C tests/bench run QUICK=$(QUICK)

docs: deps
	$(MAKE) -C docs

diff:
	@test -n "$(call stage_dir,$(A))" -a -n "$(call stage_dir,$(B))" || \
		{ echo "usage: make diff A=1 B=2 (stages: $(STAGES))" >&2; exit 2; }
	@# diff exits 1 when the trees differ, which is the point here.
	@diff -ruN -x server -x .build-flags $(call stage_dir,$(A)) $(call stage_dir,$(B)) || test $$? -eq 1

# Installs only what is missing, and says what; apt-get as root, through sudo otherwise.
# It installs, and never starts, services: nginx-light's maintainer script would start a
# system-wide nginx on port 80. A policy-rc.d that answers 101 ("action forbidden") is
# Debian's way to say so, and it is removed again afterwards.
deps:
	@missing=$$(for p in $(PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing" $$missing; \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		guard=/usr/sbin/policy-rc.d; \
		if [ ! -e $$guard ]; then \
			printf '#!/bin/sh\nexit 101\n' | $$sudo tee $$guard >/dev/null && $$sudo chmod +x $$guard; \
			trap "$$sudo rm -f $$guard" EXIT; \
		fi; \
		$$sudo apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$missing; \
	fi

clean:
	for s in $(STAGES); do $(MAKE) -C $$s clean; done
	for d in tests/unit tests/fuzz tests/bench/parser tests/bench/router tests/bench docs; do \
		$(MAKE) -C $$d clean; done
	rm -f tools/uring-probe

.PHONY: all $(STAGES) run test memcheck fuzz bench-parser bench-router bench docs diff deps clean
