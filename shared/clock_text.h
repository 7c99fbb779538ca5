/*
 * clock_text.h - the current time as text, formatted at most once a second.
 *
 * The Date header and the access log's timestamp change once a second, while a busy
 * server writes them thousands of times a second: format the text once, then reuse it.
 */
#ifndef CLOCK_TEXT_H
#define CLOCK_TEXT_H

#include <time.h>

struct clock_text {
    char text[40];
    time_t formatted_at; /* 0 until the first use */
};

/*
 * The current time in UTC, formatted with strftime(format) into cache, again only when the
 * second has changed. The C locale (the program never calls setlocale) gives the English
 * day and month names that HTTP and Common Log Format use.
 */
const char *clock_text_now(struct clock_text *cache, const char *format);

#endif
