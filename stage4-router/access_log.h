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

#endif
