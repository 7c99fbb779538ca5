/*
 * percent.h - percent-decoding a request path (RFC 3986 section 2.1).
 */
#ifndef PERCENT_H
#define PERCENT_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Decodes the %XX escapes of src[0..len) into dst, which has room for len bytes (decoding
 * never lengthens). Returns the decoded length, or -1 if an escape is malformed or decodes
 * to a NUL byte: a NUL would cut the path short for any C function that sees it later
 * (open() among them), so a path that contains one is refused rather than passed on.
 * '+' stays '+': it means a space only in form-encoded query strings, never in a path.
 */
ssize_t percent_decode(const char *src, size_t len, char *dst);

#endif
