/*
 * log.h - diagnostics on standard error.
 *
 * Standard output carries one line only, "listening on HOST:PORT", which scripts and
 * tests read; everything a human should see goes to standard error through these.
 */
#ifndef LOG_H
#define LOG_H

/* "server: MESSAGE" on stderr. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "server: error: MESSAGE" on stderr. */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* log_error, then exit with status 1: for failures at start-up, before serving anyone. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
