/*
 * fuzz_check.h - what every target here uses to stop a run, and to copy an input.
 *
 * A failed check prints what failed and aborts: libFuzzer then saves the input that did it
 * (crash-...) and `./fuzz_x crash-...` runs it again. copy_of() gives a buffer of exactly
 * the input's size, so that AddressSanitizer catches a read one byte past its end; libFuzzer's
 * own buffer may be larger.
 */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <errno.h> /* program_invocation_short_name (_GNU_SOURCE) */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void fail(const char *what)
{
    fprintf(stderr, "%s: %s\n", program_invocation_short_name, what);
    abort();
}

static inline void check(bool ok, const char *what)
{
    if (!ok)
        fail(what);
}

/* A copy of data[0..len) in a buffer of exactly len bytes (the caller frees it). */
static inline char *copy_of(const uint8_t *data, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (copy == NULL)
        fail("out of memory");
    memcpy(copy, data, len);
    return copy;
}

#endif
