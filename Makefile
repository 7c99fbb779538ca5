# A staged HTTP/1.1 server in C: from a blocking echo server to io_uring.
#
#   make                              build every stage
#   make run [STAGE=N] [ARGS=...]     build stage N and run it here, on 127.0.0.1:8080; without
#                                     STAGE, the highest stage serves the tutorial site on
#                                     127.0.0.1:8000, which leaves 8080 to the chapters' servers
#   make test [STAGE=N] [ARGS=...]    the test suite against stage N, or against every stage
#   make test STAGE=N SERVER=PATH     stage N's black-box tests against any server executable
#                                     that keeps the stages' command line (your own)
#   make check CH=N [SERVER=PATH]     the checks of chapter N's exercises, against stage N
#   make check-docs                   the tutorial's checks: snippets, links, diagrams, sections
#   make test-table                   rewrite docs/tests.md, which test runs on which stage
#   make memcheck [STAGE=N]           the suite with every server under valgrind's memcheck
#                                     (default: stages 2 to 4): fails on any error, and on
#                                     any byte definitely or indirectly lost at exit
#   make diff A=1 B=2 [README=0]      what stage B changes in stage A: code, the shared/ code
#                                     it starts to use, then the READMEs (README=0: none);
#                                     A or B may also be a directory: make diff A=3 B=stage3-mine
#   make deps                         install the Debian packages the project needs, if missing,
#                                     and the site's search indexer (Pagefind, from npm)
#   make fuzz [FUZZ_SECONDS=60]       each libFuzzer target in tests/fuzz for that long: the parser,
#                                     chunked bodies, paths and static files, the router, a
#                                     comparison with http_parser, and the parser's SSE2 scans
#                                     against its byte loops (tests/fuzz/README.md)
#   make bench-parser                 the HTTP parser against http_parser and picohttpparser
#   make bench-router                 stage 4's router on the GitHub API's 203 routes
#   make bench [QUICK=1]              every stage against nginx, h2o, lighttpd, hyper and a
#                                     ceiling: docs/benchmarks.md (QUICK=1: tests/bench/quick/)
#   make docs                         the tutorial as a web site, in docs/site/
#   make lint                         cppcheck and clang-tidy on every C file; any finding fails
#   make clean
#
# SANITIZE=1 on any of these builds with AddressSanitizer and UndefinedBehaviorSanitizer,
# e.g. `make SANITIZE=1 test STAGE=2`; SANITIZE=thread with ThreadSanitizer, e.g.
# `make SANITIZE=thread test STAGE=5,6`.

# The stages are the directories that tests/stages.py lists, one a line as "stageN-name",
# and that hold a Makefile: a directory of your own beside them (stage3-mine) is not one.
STAGES := $(sort $(patsubst %/Makefile,%,$(wildcard $(addsuffix /Makefile,$(shell \
            sed -n 's/^ *"\(stage[0-9]-[a-z0-9-]*\)",$$/\1/p' tests/stages.py)))))
# A stage's directory from its number; or, for make diff, any directory named as it is.
stage_dir = $(or $(filter stage$(1)-%,$(STAGES)),$(patsubst %/,%,$(wildcard $(1)/)))

# Debian's Python, which has python3-pytest; the first python3 on PATH may be another one.
PYTHON := /usr/bin/python3

# Everything the build, the tests, the fuzzer, the benchmarks and the docs use, as Debian 12
# packages: compilers and libraries; the test runner and its tools, and those the chapters'
# exercises use (curl, socat, tcpdump, ss); the load generators, the servers the benchmark
# compares with (nginx, h2o, lighttpd, and a hyper server that cargo builds offline from
# Debian's Rust crates), the plotting and the profiler; dpkg-source (dpkg-dev), which unpacks
# picohttpparser's source for the parser benchmark; the site's converters and the
# browser that checks it; the linters. And npm, which fetches the site's search indexer
# (docs/) and the flame graphs' template (tests/bench/flamegraph): Debian's package, unless
# an npm is already on PATH (NodeSource's nodejs brings its own, and conflicts with
# Debian's npm).
PACKAGES := gcc make libc6-dev liburing-dev python3 python3-pytest netcat-openbsd strace valgrind \
            socat tcpdump \
            clang libclang-rt-14-dev libhttp-parser-dev libh2o-dev cppcheck clang-tidy \
            wrk nghttp2-client nginx-light h2o lighttpd cargo librust-hyper-dev librust-tokio-dev \
            gnuplot-nox linux-perf dpkg-dev \
            graphviz pandoc chromium chromium-driver python3-selenium

# Two tools come from the npm registry: Pagefind, which builds the site's search index
# (docs/node_modules, pinned by docs/package-lock.json), and d3-flame-graph, the flame graphs'
# template (tests/bench/flamegraph). Debian's npm fetches them once. A Node.js from elsewhere
# that brings its own npm is used as it is: Debian's npm would conflict with it.
NPM_PACKAGE := $(if $(shell command -v npm),,npm)

FUZZ_SECONDS := 60

all: $(STAGES)

$(STAGES):
	$(MAKE) -C $@

RUN_STAGE := $(if $(STAGE),$(call stage_dir,$(STAGE)),$(lastword $(STAGES)))

# Without STAGE, the newest stage (stage 6 serves with epoll where the kernel refuses
# io_uring, and says so). Stages 4 and later serve the tutorial site, which is their
# default --root once built. The site gets a port of its own (SITE_PORT, before ARGS,
# which can still change it): the chapters start their servers on the stages' default
# port, 8080, and would find it taken while the site is being read.
SITE_PORT := 8000
RUN_PORT  := $(if $(STAGE),,--port $(SITE_PORT))

run: deps
	@test -n "$(RUN_STAGE)" || { echo "make run: there is no stage $(STAGE)" >&2; exit 2; }
	@case $(RUN_STAGE) in stage[1-3]-*) ;; *) $(MAKE) -C docs || exit 1 ;; esac; \
	$(MAKE) -C $(RUN_STAGE) && exec ./$(RUN_STAGE)/server $(RUN_PORT) $(ARGS)

# The suite builds each stage itself, with the SANITIZE setting it inherits from here;
# with SERVER, it builds nothing and tests that executable as stage STAGE.
test: deps
	$(PYTHON) -m pytest tests $(if $(STAGE),--stage $(STAGE)) $(if $(SERVER),--server $(SERVER)) \
		$(ARGS)

# The opt-in checks of chapter CH's exercises (@pytest.mark.exercise), against stage CH or
# SERVER: each passes once its exercise is done. pytest's status 5 means it found none.
check: deps
	@test -n "$(CH)" || { echo "usage: make check CH=3 [SERVER=path/to/server]" >&2; exit 2; }
	@$(PYTHON) -m pytest tests --stage $(CH) --exercise $(CH) -m exercise \
		$(if $(SERVER),--server $(SERVER)) $(ARGS) || { status=$$?; \
		test $$status -ne 5 || echo "make check: chapter $(CH) has no exercise with a check" >&2; \
		exit $$status; }

# docs/tests.md is the suite's own account of itself (tests/table.py); make check-docs fails
# when it is out of date.
test-table:
	$(PYTHON) tests/table.py > docs/tests.md.new && mv docs/tests.md.new docs/tests.md

# The tutorial's checks (tests/test_docs.py), apart from `make test` so that a stage edited
# for an exercise meets the behavioural tests first; CI runs both.
check-docs: deps
	$(PYTHON) -m pytest tests/test_docs.py --docs $(ARGS)

# The suite with every server it starts run by valgrind (tests/conftest.py: SERVER_WRAPPER).
# Any error, and any block definitely or indirectly lost at exit, makes valgrind exit with
# status 99, which the suite recognises and reports with valgrind's output. Tests that
# measure the server process itself are skipped (tests/conftest.py says which and why).
# Debian 12's valgrind (3.19) does not know openat2(): it fails the call with ENOSYS, and
# stage 4 then walks paths itself (static.c, open_walking()). It knows nothing of io_uring,
# so stage 6 cannot run under it; stage 5's threads are ThreadSanitizer's job.
MEMCHECK_STAGES := 2,3,4
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

# cppcheck and clang-tidy, Debian 12's (2.10 and 14), with the checks chosen in .clang-tidy and
# tools/lint/. Every stage is linted as a program of its own (the stages share file names), and
# so is every directory of tests and benchmarks, with the flags its Makefile compiles it
# with: -D_GNU_SOURCE -Ishared and those below. cppcheck reads the sources a program takes from
# elsewhere along with its own, for the checks that follow calls from file to file. Any finding
# fails the run, printed after the name of the tool that found it. LINT_JOBS: files at once.
LINT_DIRS  := $(STAGES) tests/unit tests/fuzz tests/bench/parser tests/bench/router \
              tests/bench/ceiling tests/bench/echoload
LINT_SRCS  := $(wildcard shared/*.c $(addsuffix /*.c,$(LINT_DIRS)))
LINT_JOBS  ?= $(shell nproc)
LINT_FLAGS := -D_GNU_SOURCE -Ishared

# tests/unit also with the parser's byte loops for CPUs without SSE2, as http_parse_test_scalar
# is built; everything else as it is built for x86-64, with SSE2. tests/fuzz takes stage 6's
# router, percent-decoding and static files, as tests/fuzz/Makefile builds them.
LINT_FLAGS_tests/unit         := -Istage4-router -DHTTP_PARSE_COUNT_WORK -U__SSE2__
LINT_FLAGS_tests/bench/router := -Istage4-router
LINT_FLAGS_tests/fuzz         := -Istage6-uring
LINT_WITH_tests/unit          := shared/http_parse.c stage4-router/router.c
LINT_WITH_tests/fuzz          := shared/http_parse.c shared/log.c $(addprefix stage6-uring/,\
                                 percent.c static.c mime.c exchange.c router.c)
LINT_WITH_tests/bench/parser  := shared/http_parse.c
LINT_WITH_tests/bench/router  := stage4-router/router.c
lint_with = $(if $(filter stage%,$(1)),$(wildcard shared/*.c),$(LINT_WITH_$(1)))

CPPCHECK := cppcheck --quiet --error-exitcode=1 --inline-suppr --std=c11 \
            --enable=warning,style,performance,portability -D__SSE2__ \
            --library=posix --library=tools/lint/cppcheck.cfg \
            --suppressions-list=tools/lint/cppcheck-suppressions.txt \
            --template='cppcheck: {file}:{line}:{column}: {severity}: {message} [{id}]'

lint: deps
	@$(MAKE) --no-print-directory -k -j$(LINT_JOBS) -Otarget \
		$(addprefix lint-cppcheck/,$(LINT_DIRS)) $(addprefix lint-clang-tidy/,$(LINT_SRCS)) || \
		{ echo "make lint: fix the findings above, or silence a false one, saying why" >&2; \
		  exit 1; }
	@echo "make lint: cppcheck and clang-tidy found nothing"

lint-cppcheck/%: FORCE
	@echo "cppcheck $*"
	@$(CPPCHECK) $(LINT_FLAGS) $(LINT_FLAGS_$*) $(wildcard $*/*.c) $(call lint_with,$*)

# clang-tidy's output, with its chatter, is shown only when there are findings.
lint-clang-tidy/%: FORCE
	@echo "clang-tidy $*"
	@out=$$(clang-tidy --quiet --warnings-as-errors='*' $* -- -std=c17 $(LINT_FLAGS) \
		$(LINT_FLAGS_$(patsubst %/,%,$(dir $*))) 2>&1) || \
		{ printf '%s\n' "$$out" | sed -e '/^[0-9]* warnings* generated\.$$/d' \
		  -e 's/^/clang-tidy: /'; exit 1; }

FORCE:

# Code first, then the shared/ files B starts to use, then the READMEs (README=0: none).
diff:
	@test -n "$(call stage_dir,$(A))" -a -n "$(call stage_dir,$(B))" || \
		{ echo "usage: make diff A=1 B=2 [README=0] (stages: $(STAGES); or a directory)" >&2; exit 2; }
	@README=$(README) tools/stage-diff $(call stage_dir,$(A)) $(call stage_dir,$(B))

FLAME_TEMPLATE := tests/bench/flamegraph/node_modules/d3-flame-graph/dist/templates/d3-flamegraph-base.html

# Installs only what is missing, and says what; apt-get as root, through sudo otherwise.
# It installs, and never starts, services: the maintainer scripts of nginx-light, h2o and
# lighttpd would start system-wide servers on port 80. A policy-rc.d that answers 101 ("action forbidden") is
# Debian's way to say so, and it is removed again afterwards.
deps:
	@missing=$$(for p in $(PACKAGES) $(NPM_PACKAGE); do \
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
	@$(MAKE) --no-print-directory -s -C docs pagefind
	@# The flame graphs' template, from npm into the project (tests/bench/flamegraph/node_modules,
	@# which git ignores), at the version its package.json names; nothing global, no lock file.
	@test -f $(FLAME_TEMPLATE) || { \
		echo "make deps: installing d3-flame-graph (npm) into tests/bench/flamegraph"; \
		npm install --prefix tests/bench/flamegraph --no-package-lock --no-audit --no-fund \
			--silent; }

clean:
	for s in $(STAGES); do $(MAKE) -C $$s clean; done
	for d in tests/unit tests/fuzz tests/bench/parser tests/bench/router tests/bench docs; do \
		$(MAKE) -C $$d clean; done

.PHONY: all $(STAGES) run test check check-docs test-table memcheck fuzz bench-parser bench-router bench docs lint diff deps \
        clean FORCE
