/*
 * log.c - diagnostics on standard error.
 *
 * Each message is formatted into one buffer and written with one fputs, so lines from
 * several threads (stage 5) never interleave mid-line: stdio locks the stream per call.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void log_line(const char *prefix, const char *fmt, va_list args)
{
    char line[1024];
    int len = snprintf(line, sizeof line, "%s: %s", program_invocation_short_name, prefix);
    if (len < 0 || (size_t)len >= sizeof line)
        len = 0;
    vsnprintf(line + len, sizeof line - len, fmt, args);
    fprintf(stderr, "%s\n", line);
}

void log_info(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    log_line("", fmt, args);
    va_end(args);
}

void log_error(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    log_line("error: ", fmt, args);
    va_end(args);
}

void die(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    log_line("error: ", fmt, args);
    va_end(args);
    exit(1);
}
