/*
 * exchange.h - one request and its response, as handlers and middleware see them.
 *
 * Everything here lives on the stack of the call that serves the request: the slices
 * point into the connection's bytes, valid until the handler returns.
 */
#ifndef EXCHANGE_H
#define EXCHANGE_H

#include "conn.h"
#include "http_parse.h"
#include "router.h"

#include <stdbool.h>
#include <stddef.h>

struct exchange {
    struct conn *conn;
    const struct http_request *req; /* method, target, version, fields */
    struct http_slice path; /* the target's path, percent-decoded */
    struct route_match match; /* the route, and its parameters as slices of path */
    const char *body; /* the request body (decoded, if it was chunked) */
    size_t body_len;
    unsigned flags; /* the response flags the connection needs (response.h) */
    size_t next_middleware; /* where exchange_next() continues the chain */

    /* The response, as respond() recorded it: */
    int status; /* 0 until a response is queued */
    size_t body_bytes; /* body bytes queued, 0 for HEAD */
    bool file_queued; /* the body is a file still to be sent: the connection must wait */
    bool offloaded; /* a worker makes the response: the connection must wait */
};

/* A request field by name (case-insensitive, RFC 9110 section 5.1); NULL if absent. */
const struct http_slice *exchange_field(const struct exchange *x, const char *name);

/* A route parameter by name (":id" is "id"); a slice with len 0 if there is none. */
struct http_slice exchange_param(const struct exchange *x, const char *name);

/* For middleware: runs the rest of the chain, and the handler at its end (app.c). */
void exchange_next(struct exchange *x);

/*
 * For a handler that would block: run work(job) on a worker thread, with arg as its
 * input; it fills in the job's response. The connection waits meanwhile. If the workers'
 * queue is full, answers 503 at once instead. (app.c)
 */
struct job;
void exchange_offload(struct exchange *x, void (*work)(struct job *job), long arg);

#endif
