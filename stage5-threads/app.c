/*
 * app.c - the application: the route table, the middleware chain, and dispatch.
 *
 * The route table below is the whole map of the server: one line per route, built into
 * a radix trie at start-up (router.c). A request then goes through the middleware chain
 * (each link does something before and/or after calling exchange_next()), and at the end
 * of the chain, dispatch: decode the path, look it up, call the handler, or answer 404
 * or 405 with the methods the path does accept.
 *
 * Adding a middleware: write a function that takes the exchange, calls exchange_next(x)
 * where the request should go on, and does its work around that call (access_log.c is
 * the example); then add it to the chain in app_open().
 */
#include "app.h"
#include "access_log.h"
#include "handlers.h"
#include "percent.h"
#include "response.h"
#include "static.h"
#include "workers.h"

#include <arpa/inet.h>
#include <stdlib.h>

// clang-format off
static const struct route {
    enum http_method method;
    const char *pattern;
    route_handler *handler;
} ROUTES[] = {
    {HTTP_METHOD_GET,  "/plaintext",  handle_plaintext},
    {HTTP_METHOD_POST, "/echo",       handle_echo},
    {HTTP_METHOD_GET,  "/users/:id",  handle_user},
    {HTTP_METHOD_GET,  "/delay/:ms",  handle_delay},
    {HTTP_METHOD_GET,  "/*path",      static_serve}, /* everything else: a file, or 404 */
};
// clang-format on

/* A middleware does its work around exchange_next(x). */
typedef void middleware(struct exchange *x);

enum { MAX_MIDDLEWARE = 8 };

static struct router *router;
static middleware *chain[MAX_MIDDLEWARE];
static size_t chain_length;

bool app_build_routes(char *err, size_t errlen)
{
    router = router_create();
    if (router == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++) {
        const struct route *r = &ROUTES[i];
        if (!router_add(router, r->method, r->pattern, r->handler, err, errlen))
            return false;
    }
    return true;
}

bool app_open(const struct app_config *config, char *err, size_t errlen)
{
    if (!static_open_root(config->root, err, errlen))
        return false;
    if (config->access_log != NULL) {
        if (!access_log_open(config->access_log, err, errlen))
            return false;
        chain[chain_length++] = access_log;
    }
    return true;
}

/*
 * OPTIONS (RFC 9110 9.3.7) without a route of its own: 204 with Allow, the methods of the
 * path's pattern, or for "*", a question about the server itself, every method a route has.
 * OPTIONS itself is in both: this function answers it everywhere.
 */
static void answer_options(struct exchange *x, unsigned allowed)
{
    char allow[ROUTER_ALLOW_HEADER_SIZE];
    router_allow_header(allowed | 1u << HTTP_METHOD_OPTIONS, allow, sizeof allow);
    char header[sizeof "Allow: \r\n" + ROUTER_ALLOW_HEADER_SIZE];
    snprintf(header, sizeof header, "Allow: %s\r\n", allow);
    respond(x, 204, NULL, header, NULL, 0);
}

/* The end of the chain: find the route and run its handler. */
static void dispatch(struct exchange *x)
{
    /* Decoded once, here: the router and the handlers all see the same bytes. */
    char decoded[HTTP_MAX_TARGET_LEN];
    const struct http_slice *raw = &x->req->path;
    ssize_t len = raw->len <= sizeof decoded ? percent_decode(raw->ptr, raw->len, decoded) : -1;
    if (len < 0) {
        respond_status(x, 400, NULL); /* a malformed escape, or %00 */
        return;
    }
    x->path = (struct http_slice){.ptr = decoded, .len = (size_t)len};
    if (x->req->method == HTTP_METHOD_OPTIONS && len == 1 && decoded[0] == '*') {
        /* Only OPTIONS may have the target "*" (http_parse.c). The routes' methods: */
        answer_options(x, 1u << HTTP_METHOD_GET | 1u << HTTP_METHOD_HEAD | 1u << HTTP_METHOD_POST);
        return;
    }

    switch (router_lookup(router, x->req->method, decoded, (size_t)len, &x->match)) {
    case ROUTE_FOUND:
        x->match.handler(x);
        break;
    case ROUTE_METHOD_NOT_ALLOWED: {
        if (x->req->method == HTTP_METHOD_OPTIONS) {
            answer_options(x, x->match.allowed);
            break;
        }
        /* 405 must say which methods the resource does accept (RFC 9110 15.5.6). */
        char allow[ROUTER_ALLOW_HEADER_SIZE];
        router_allow_header(x->match.allowed, allow, sizeof allow);
        char header[sizeof "Allow: \r\n" + ROUTER_ALLOW_HEADER_SIZE];
        snprintf(header, sizeof header, "Allow: %s\r\n", allow);
        respond_status(x, 405, header);
        break;
    }
    case ROUTE_NOT_FOUND:
        respond_status(x, 404, NULL);
        break;
    }
}

void exchange_next(struct exchange *x)
{
    if (x->next_middleware < chain_length)
        chain[x->next_middleware++](x);
    else
        dispatch(x);
}

void exchange_offload(struct exchange *x, void (*work)(struct job *job), long arg)
{
    struct job *job = calloc(1, sizeof *job);
    if (job == NULL) {
        respond_status(x, 500, NULL);
        return;
    }
    job->work = work;
    job->arg = arg;
    job->loop = conn_loop(x->conn);
    job->message.conn = conn_id(x->conn);
    job->response_flags = x->flags;
    /* The request's bytes are the loop's and will be reused: keep what the log needs. */
    if (access_log_enabled()) {
        conn_peer_name(x->conn, job->client, sizeof job->client);
        access_log_request_line(x, job->request_line, sizeof job->request_line);
    }
    if (!workers_submit(job)) {
        free(job);
        /* Overloaded: say so now, and when to try again (RFC 9110 15.6.4, 10.2.3). */
        respond_status(x, 503, "Retry-After: 1\r\n");
        return;
    }
    x->offloaded = true;
}

void app_finish_job(struct conn *c, struct job *job, bool last)
{
    /* Things may have changed while the worker ran: the server may be stopping. */
    unsigned flags = job->response_flags;
    if (last)
        flags = (flags & ~RESPONSE_KEEP_ALIVE) | RESPONSE_CLOSE;
    struct exchange x = {.conn = c, .flags = flags};
    respond(&x, job->status, job->content_type, NULL, job->body, job->body_len);
    if (access_log_enabled())
        access_log_write(job->client, job->request_line, x.status, x.body_bytes);
    free(job);
}

void app_serve(struct exchange *x)
{
    x->next_middleware = 0;
    exchange_next(x);
}

void app_write_routes_dot(FILE *out)
{
    router_write_dot(router, out);
}
