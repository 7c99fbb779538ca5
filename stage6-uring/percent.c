/*
 * percent.c - percent-decoding a request path.
 *
 * Decoded once, here, before routing: every later step (the router, the static files)
 * sees the same bytes, so no step can be fooled by an encoding another step would have
 * decoded differently. "%2e%2e" becomes "..", "%2F" becomes "/", and the static-file
 * layer deals with what they mean (static.c).
 */
#include "percent.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ssize_t percent_decode(const char *src, size_t len, char *dst)
{
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] != '%') {
            dst[out++] = src[i];
            continue;
        }
        if (len - i < 3)
            return -1;
        int high = hex_value(src[i + 1]);
        int low = hex_value(src[i + 2]);
        if (high < 0 || low < 0 || (high == 0 && low == 0))
            return -1;
        dst[out++] = (char)(high << 4 | low);
        i += 2;
    }
    return (ssize_t)out;
}
