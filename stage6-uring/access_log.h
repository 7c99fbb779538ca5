/*
 * access_log.h - a middleware that logs each request in Common Log Format.
 */
#ifndef ACCESS_LOG_H
#define ACCESS_LOG_H

#include "exchange.h"

#include <stdbool.h>
#include <stddef.h>

/* Opens (appends to) the log file, at start-up. False with a message in err. */
bool access_log_open(const char *path, char *err, size_t errlen);

/* The middleware: serves the request (exchange_next), then logs what was answered. */
void access_log(struct exchange *x);

/* For responses made later, by a worker: whether to log, what, and the writing itself. */
bool access_log_enabled(void);
void access_log_request_line(const struct exchange *x, char *buf, size_t size);
void access_log_write(const char *client, const char *request_line, int status, size_t body_bytes);

#endif
