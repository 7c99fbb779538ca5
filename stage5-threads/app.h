/*
 * app.h - the application: the route table, the middleware chain, and dispatch.
 */
#ifndef APP_H
#define APP_H

#include "exchange.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct app_config {
    const char *root; /* the directory static files come from */
    const char *access_log; /* a file to log requests to, or NULL */
};

/* Builds the router from the route table, at start-up. */
bool app_build_routes(char *err, size_t errlen);

/* Opens the root and the access log, and sets up the middleware chain, at start-up. */
bool app_open(const struct app_config *config, char *err, size_t errlen);

/* Serves one complete request: middleware, then the route's handler (or 400/404/405). */
void app_serve(struct exchange *x);

struct job;
/* On the loop's thread, once the worker is done: sends the job's response (marked as the
 * connection's last if last), logs it, frees the job. */
void app_finish_job(struct conn *c, struct job *job, bool last);

/* Writes the route trie as Graphviz DOT (server --routes-dot). */
void app_write_routes_dot(FILE *out);

#endif
