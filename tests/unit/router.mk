# Unit tests for stage 4's router. Included by the Makefile here, so that its `make`, `make run`
# and `make clean` cover the router too; `make -f router.mk run` works on its own.
#
#   make router_test    build the test
#   make run-router     build and run it
#
# A test build, like the parser's: AddressSanitizer and UndefinedBehaviorSanitizer turn a stray
# read into a crash with a stack trace. The --wrap options send the test's and the router's calls
# to malloc, calloc and realloc through counting wrappers in router_test.c, which is how the
# test shows that a lookup allocates nothing.

ROUTER_DIR     = ../../stage4-router
ROUTER_CFLAGS  = -std=c17 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror \
                 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
                 -I../../shared -I$(ROUTER_DIR)
ROUTER_LDFLAGS = -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc
ROUTER_SOURCES = router_test.c $(ROUTER_DIR)/router.c

# The first rule names `all`, so that including this file first does not change the default goal.
all: router_test
run: run-router
clean: clean-router

router_test: $(ROUTER_SOURCES) $(ROUTER_DIR)/router.h ../../shared/http_parse.h
	$(CC) $(ROUTER_CFLAGS) -o $@ $(ROUTER_SOURCES) $(ROUTER_LDFLAGS)

run-router: router_test
	./router_test

clean-router:
	rm -f router_test

.PHONY: all run clean run-router clean-router
