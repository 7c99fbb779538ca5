/*
 * router.h - maps a request's method and path to a handler: a radix trie over path segments.
 *
 * Routes are added once, at start-up, from the server's route table; after that the router is
 * only read, so any number of threads may look up in it at once. A pattern is a path made of
 * "/"-separated segments, each one of:
 *     users        a static segment: matches exactly that text;
 *     :id          a parameter: matches any one non-empty segment, and reports it as "id";
 *     *rest        a wildcard, last segment only: matches the rest of the path, which may be
 *                  empty and may contain '/', and reports it as "rest".
 * When several patterns match a path, static beats parameter beats wildcard, segment by segment
 * from the left (router.c explains the rules, and what happens on a dead end).
 */
#ifndef ROUTER_H
#define ROUTER_H

#include "http_parse.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Most parameters (wildcard included) in one pattern. router_add() rejects a pattern with more,
 * so a match never has more. Eight is plenty for a REST API: GitHub's deepest routes have four. */
enum { ROUTER_MAX_PARAMS = 8 };

/* A buffer this big always holds router_allow_header()'s output, with its NUL. */
enum { ROUTER_ALLOW_HEADER_SIZE = sizeof "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH" };

struct exchange; /* the stage's request/response context, opaque here */

/* What a route runs. The router stores and returns it, never calls it. */
typedef void route_handler(struct exchange *x);

/* The name without its ':' or '*', and the value: a slice of the path passed to
 * router_lookup(). The name lives as long as the router. */
struct route_param {
    struct http_slice name, value;
};

struct route_match {
    route_handler *handler; /* ROUTE_FOUND only */
    unsigned allowed; /* bit (1u << method) for each method the matched path accepts; HEAD included
                         wherever GET is. 0 for ROUTE_NOT_FOUND */
    size_t param_count;
    struct route_param params[ROUTER_MAX_PARAMS];
    const char *pattern; /* the matched pattern as it was added, e.g. "/users/:id": a name for
                            logs and metrics that does not grow with the number of users. NULL for
                            ROUTE_NOT_FOUND */
};

enum route_result { ROUTE_FOUND, ROUTE_METHOD_NOT_ALLOWED, ROUTE_NOT_FOUND };

/* An empty router; NULL if out of memory. */
struct router *router_create(void);

/*
 * Adds a route, at start-up. Patterns start with '/'; an empty segment is allowed only at the
 * end ("/" itself, or "/docs/", which is not "/docs"). The pattern is copied. Returns false with
 * a message in err, and the router unchanged, on a bad pattern or a conflict: the same method and
 * pattern twice; two different parameter (or wildcard) names at the same position; a wildcard not
 * last; more than ROUTER_MAX_PARAMS parameters; a parameter name used twice in one pattern.
 */
bool router_add(struct router *r, enum http_method method, const char *pattern,
                route_handler *handler, char *err, size_t errlen);

/*
 * The hot path: no allocation, no copying; parameter values are slices of path. path is already
 * percent-decoded by the caller and starts with '/' (anything else is ROUTE_NOT_FOUND); it need
 * not be NUL-terminated. HEAD falls back to the GET handler when no HEAD route exists.
 * ROUTE_FOUND: match is filled. ROUTE_METHOD_NOT_ALLOWED: the path matched a pattern that has no
 * route for this method; match->allowed says which methods it has (for 405's Allow header).
 * ROUTE_NOT_FOUND: no pattern matches (404).
 */
enum route_result router_lookup(const struct router *r, enum http_method method, const char *path,
                                size_t len, struct route_match *match);

/* Writes the trie as Graphviz DOT: a digraph with one node per trie node, labelled with its
 * segment(s) and the methods of the routes ending there. `dot -Tsvg` draws it. */
void router_write_dot(const struct router *r, FILE *out);

/* How big the trie is: for benchmarks, and for the curious. */
struct router_stats {
    size_t nodes; /* trie nodes, the root included */
    size_t arena_bytes; /* what its arena holds: all the memory it uses but struct router */
};
void router_get_stats(const struct router *r, struct router_stats *stats);

void router_destroy(struct router *r);

/*
 * Writes the Allow header value for an allowed mask, e.g. "GET, HEAD, POST", into buf (always
 * NUL-terminated if size > 0). Returns its length; if that is size or more, the value was cut
 * short, as with snprintf. ROUTER_ALLOW_HEADER_SIZE is always enough.
 */
size_t router_allow_header(unsigned allowed, char *buf, size_t size);

#endif /* ROUTER_H */
