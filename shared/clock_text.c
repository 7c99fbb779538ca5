/*
 * clock_text.c - the current time as text, formatted at most once a second.
 */
#include "clock_text.h"

const char *clock_text_now(struct clock_text *cache, const char *format)
{
    time_t now = time(NULL); /* a vDSO call: no system call, a few nanoseconds */
    if (now != cache->formatted_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(cache->text, sizeof cache->text, format, &tm);
        cache->formatted_at = now;
    }
    return cache->text;
}
