/*
 * fuzz_router.c - libFuzzer target for the routing trie of stages 4 to 6 (router.c; the copies
 * are identical, stage 6's is built).
 *
 * Each input builds a router and looks up one path in it:
 *     byte 0       the method of the lookup (mod 8: 7 is no method at all);
 *     bytes 1-4    which routes of ROUTES below are added, in table order (bit i: ROUTES[i]);
 *     the rest     split at NUL bytes: every piece but the last is one more route, added after
 *                  the table's: its first byte is the method (mod 7), the others the pattern;
 *                  the last piece is the path looked up (a decoded path holds no NUL).
 * Checked, against a reference router written below that keeps a plain list of routes:
 *   1. router_add() accepts exactly the routes the reference accepts (pattern syntax, conflicts,
 *      a method and pattern added twice), and fills in a message when it refuses one;
 *   2. router_lookup() gives the reference's answer: found, 405 or 404; the same pattern, the
 *      same handler (HEAD falling back to GET), the same allowed methods, and the same parameter
 *      names and values, the values being slices of the path at the right place;
 *   3. the lookup allocates nothing (a malloc hook counts), reads no byte past the path (it gets
 *      an exact-size copy: AddressSanitizer), and router_add() keeps no pointer into the pattern
 *      it was given (each is freed right after);
 *   4. router_allow_header() writes the allowed methods right, into any buffer size.
 *
 * The reference is what router.h promises, spelled out the slow way: a pattern matches a path
 * when segment by segment a static segment equals the path's, a parameter takes one non-empty
 * segment, and a wildcard (last) takes the rest; among the patterns that match, the one whose
 * segment kinds, read from the left, come first in the order static < parameter < wildcard
 * wins. The trie finds the same one by trying children in that order and backtracking.
 */
#include "router.h"
#include "fuzz_check.h"

#include <sanitizer/allocator_interface.h>
#include <stdlib.h>
#include <string.h>

/* One handler per method, each a different function, so that a match shows which method's
 * handler the router returned. The router stores them and never calls them. */
// clang-format off
static void handle_get(struct exchange *x)     { (void)x; }
static void handle_head(struct exchange *x)    { (void)x; }
static void handle_post(struct exchange *x)    { (void)x; }
static void handle_put(struct exchange *x)     { (void)x; }
static void handle_delete(struct exchange *x)  { (void)x; }
static void handle_options(struct exchange *x) { (void)x; }
static void handle_patch(struct exchange *x)   { (void)x; }
// clang-format on
static route_handler *const HANDLERS[] = {handle_get,    handle_head,    handle_post, handle_put,
                                          handle_delete, handle_options, handle_patch};
enum { METHOD_COUNT = sizeof HANDLERS / sizeof HANDLERS[0] };

struct route {
    enum http_method method;
    const char *pattern;
};

/* Static, parameter and wildcard routes that compete for the same paths: the examples of
 * router.c's comments (precedence, backtracking), a 405 through a root wildcard, and a route with
 * all ROUTER_MAX_PARAMS parameters. No two conflict, so any subset can be added. */
// clang-format off
static const struct route ROUTES[] = {
    {HTTP_METHOD_GET,     "/"},
    {HTTP_METHOD_GET,     "/plaintext"},
    {HTTP_METHOD_POST,    "/echo"},
    {HTTP_METHOD_GET,     "/users"},
    {HTTP_METHOD_GET,     "/users/me"},
    {HTTP_METHOD_GET,     "/users/:id"},
    {HTTP_METHOD_PUT,     "/users/:id"},
    {HTTP_METHOD_DELETE,  "/users/:id"},
    {HTTP_METHOD_GET,     "/users/me/settings"},
    {HTTP_METHOD_GET,     "/users/:id/posts"},
    {HTTP_METHOD_GET,     "/users/:id/posts/:post"},
    {HTTP_METHOD_GET,     "/files/*path"},
    {HTTP_METHOD_GET,     "/docs/"},
    {HTTP_METHOD_GET,     "/docs/intro"},
    {HTTP_METHOD_GET,     "/a/:x/c"},
    {HTTP_METHOD_GET,     "/:y/b/c"},
    {HTTP_METHOD_HEAD,    "/a/:x/c"},
    {HTTP_METHOD_GET,     "/repos/:owner/:repo"},
    {HTTP_METHOD_GET,     "/repos/:owner/:repo/git/refs/*ref"},
    {HTTP_METHOD_GET,     "/gitignore/templates"},
    {HTTP_METHOD_GET,     "/gitignore/templates/:name"},
    {HTTP_METHOD_POST,    "/users"},
    {HTTP_METHOD_GET,     "/user"},
    {HTTP_METHOD_GET,     "/users/:id/*rest"},
    {HTTP_METHOD_GET,     "/static/*rest"},
    {HTTP_METHOD_OPTIONS, "/*any"},
    {HTTP_METHOD_GET,     "/:y/b"},
    {HTTP_METHOD_PATCH,   "/a/b/c/d"},
    {HTTP_METHOD_GET,     "/search/:q/page/:n"},
    {HTTP_METHOD_GET,     "/x/:a/:b/:c/:d/:e/:f/:g/*h"},
    {HTTP_METHOD_GET,     "/users/:id/posts/"},
    {HTTP_METHOD_DELETE,  "/files/*path"},
};
// clang-format on
_Static_assert(sizeof ROUTES / sizeof ROUTES[0] <= 32, "bytes 1-4 choose among 32 routes");

/* ---------------------------------------------------------------------------------------------
 * The reference router: a list of routes, and every pattern tried on every lookup.
 */

enum { MAX_ROUTES = 160, MAX_SEGMENTS = 1024 };

struct reference {
    struct route routes[MAX_ROUTES]; /* patterns owned by the list */
    size_t count;
};

/* A pattern or path cut into segments: the text between one '/' and the next (or the end). */
struct segments {
    const char *start[MAX_SEGMENTS];
    size_t len[MAX_SEGMENTS];
    size_t count;
};

/* s[0..len) starts with '/'. False if it has too many segments to hold. */
static bool split(const char *s, size_t len, struct segments *out)
{
    out->count = 0;
    size_t i = 1;
    for (;;) {
        if (out->count == MAX_SEGMENTS)
            return false;
        size_t j = i;
        while (j < len && s[j] != '/')
            j++;
        out->start[out->count] = s + i;
        out->len[out->count] = j - i;
        out->count++;
        if (j == len)
            return true;
        i = j + 1;
    }
}

enum kind { STATIC, PARAM, WILDCARD };

static enum kind kind_of(const char *segment, size_t len)
{
    if (len > 0 && segment[0] == ':')
        return PARAM;
    if (len > 0 && segment[0] == '*')
        return WILDCARD;
    return STATIC;
}

static bool same_text(const char *a, size_t a_len, const char *b, size_t b_len)
{
    return a_len == b_len && memcmp(a, b, a_len) == 0;
}

/* The syntax router.h gives: a leading '/'; an empty segment only last; parameters and the
 * wildcard named; the wildcard last; at most ROUTER_MAX_PARAMS of them, each name once. */
static bool pattern_is_valid(const char *pattern, const struct segments *p)
{
    if (pattern[0] != '/')
        return false;
    size_t params = 0;
    for (size_t i = 0; i < p->count; i++) {
        bool last = i + 1 == p->count;
        enum kind k = kind_of(p->start[i], p->len[i]);
        if (p->len[i] == 0 && !last)
            return false;
        if (k == STATIC)
            continue;
        if (p->len[i] == 1 || (k == WILDCARD && !last) || ++params > ROUTER_MAX_PARAMS)
            return false;
        for (size_t j = 0; j < i; j++) {
            if (kind_of(p->start[j], p->len[j]) != STATIC &&
                same_text(p->start[i] + 1, p->len[i] - 1, p->start[j] + 1, p->len[j] - 1))
                return false;
        }
    }
    return true;
}

/* Two patterns conflict when, after the same segments, they have parameters (or wildcards) of
 * different names at the same place. */
static bool conflict(const struct segments *a, const struct segments *b)
{
    for (size_t i = 0; i < a->count && i < b->count; i++) {
        if (same_text(a->start[i], a->len[i], b->start[i], b->len[i]))
            continue;
        enum kind ka = kind_of(a->start[i], a->len[i]), kb = kind_of(b->start[i], b->len[i]);
        return ka == kb && ka != STATIC;
    }
    return false;
}

static bool reference_add(struct reference *ref, enum http_method method, const char *pattern)
{
    struct segments p, q;
    size_t len = strlen(pattern);
    if (len == 0 || !split(pattern, len, &p) || !pattern_is_valid(pattern, &p))
        return false;
    for (size_t i = 0; i < ref->count; i++) {
        const struct route *r = &ref->routes[i];
        if (r->method == method && strcmp(r->pattern, pattern) == 0)
            return false; /* added twice */
        split(r->pattern, strlen(r->pattern), &q);
        if (conflict(&p, &q))
            return false;
    }
    if (ref->count == MAX_ROUTES)
        fail("reference: too many routes");
    char *copy = strdup(pattern);
    if (copy == NULL)
        fail("out of memory");
    ref->routes[ref->count++] = (struct route){method, copy};
    return true;
}

/* How pattern p matches path q, if it does: the kind of each pattern segment used, and the
 * parameter values as offsets into the path. */
struct alignment {
    enum kind kinds[MAX_SEGMENTS];
    size_t kind_count;
    struct route_param params[ROUTER_MAX_PARAMS];
    size_t param_count;
};

static bool align(const struct segments *p, const struct segments *q, const char *path_end,
                  struct alignment *a)
{
    a->kind_count = a->param_count = 0;
    for (size_t i = 0; i < p->count; i++) {
        enum kind k = kind_of(p->start[i], p->len[i]);
        if (i == q->count)
            return false; /* the path ended first */
        a->kinds[a->kind_count++] = k;
        if (k == STATIC && !same_text(p->start[i], p->len[i], q->start[i], q->len[i]))
            return false;
        if (k == PARAM && q->len[i] == 0)
            return false;
        if (k != STATIC) {
            size_t value_len = k == WILDCARD ? (size_t)(path_end - q->start[i]) : q->len[i];
            a->params[a->param_count++] =
                (struct route_param){{p->start[i] + 1, p->len[i] - 1}, {q->start[i], value_len}};
        }
        if (k == WILDCARD)
            return true; /* takes the rest of the path */
    }
    return p->count == q->count;
}

/* Whether a's kinds come before b's, read from the left. */
static bool precedes(const struct alignment *a, const struct alignment *b)
{
    for (size_t i = 0; i < a->kind_count && i < b->kind_count; i++) {
        if (a->kinds[i] != b->kinds[i])
            return a->kinds[i] < b->kinds[i];
    }
    return false;
}

static enum route_result reference_lookup(const struct reference *ref, enum http_method method,
                                          const char *path, size_t len, struct route_match *m)
{
    static struct alignment best, candidate; /* large: off the stack */
    const char *best_pattern = NULL;
    struct segments p, q;

    memset(m, 0, sizeof *m);
    if (len == 0 || path[0] != '/' || !split(path, len, &q))
        return ROUTE_NOT_FOUND;
    for (size_t i = 0; i < ref->count; i++) {
        const char *pattern = ref->routes[i].pattern;
        split(pattern, strlen(pattern), &p);
        if (align(&p, &q, path + len, &candidate) &&
            (best_pattern == NULL || precedes(&candidate, &best))) {
            best = candidate;
            best_pattern = pattern;
        }
    }
    if (best_pattern == NULL)
        return ROUTE_NOT_FOUND;

    m->pattern = best_pattern;
    m->param_count = best.param_count;
    memcpy(m->params, best.params, sizeof best.params);
    route_handler *by_method[METHOD_COUNT] = {NULL};
    for (size_t i = 0; i < ref->count; i++) {
        const struct route *r = &ref->routes[i];
        if (strcmp(r->pattern, best_pattern) == 0) {
            // cppcheck-suppress legacyUninitvar ; 2.10 misreads an array of route_handler *
            by_method[r->method] = HANDLERS[r->method];
            m->allowed |= 1u << r->method;
            if (r->method == HTTP_METHOD_GET)
                m->allowed |= 1u << HTTP_METHOD_HEAD;
        }
    }
    if ((unsigned)method < METHOD_COUNT)
        m->handler = by_method[method];
    if (m->handler == NULL && method == HTTP_METHOD_HEAD)
        m->handler = by_method[HTTP_METHOD_GET];
    return m->handler != NULL ? ROUTE_FOUND : ROUTE_METHOD_NOT_ALLOWED;
}

static void reference_free(struct reference *ref)
{
    for (size_t i = 0; i < ref->count; i++)
        free((char *)ref->routes[i].pattern);
    ref->count = 0;
}

/* ---------------------------------------------------------------------------------------------
 * The target
 */

/* Every allocation, counted by a sanitizer hook: a lookup must not make any. */
static size_t allocations;

static void count_malloc(const volatile void *ptr, size_t size)
{
    (void)ptr;
    (void)size;
    allocations++;
}

static void ignore_free(const volatile void *ptr)
{
    (void)ptr;
}

// NOLINTNEXTLINE(readability-non-const-parameter): the signature libFuzzer calls
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    __sanitizer_install_malloc_and_free_hooks(count_malloc, ignore_free);
    return 0;
}

/* Adds a route to both routers: they must agree on whether it is accepted. */
static void add_route(struct router *r, struct reference *ref, enum http_method method,
                      const char *pattern)
{
    char err[128] = "";
    char *copy = strdup(pattern); /* freed at once: the router must keep its own copy */
    if (copy == NULL)
        fail("out of memory");
    bool added = router_add(r, method, copy, HANDLERS[method], err, sizeof err);
    free(copy);
    if (added != reference_add(ref, method, pattern)) {
        fprintf(stderr, "pattern \"%s\": router %s it (%s)\n", pattern,
                added ? "accepted" : "refused", err);
        fail("router_add() and the reference disagree");
    }
    check(added || (err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL),
          "a refused route without a message");
}

static void check_params(const struct route_match *got, const struct route_match *want)
{
    check(got->param_count == want->param_count, "another number of parameters");
    for (size_t i = 0; i < got->param_count; i++) {
        const struct route_param *g = &got->params[i], *w = &want->params[i];
        check(same_text(g->name.ptr, g->name.len, w->name.ptr, w->name.len),
              "another parameter name");
        check(g->value.ptr == w->value.ptr && g->value.len == w->value.len,
              "another parameter value, or a value not in place in the path");
    }
}

/* router_allow_header() into a buffer of `size` bytes: the reference text, cut to fit. */
static void check_allow_header(unsigned allowed, size_t size)
{
    static const char *const NAMES[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    char want[ROUTER_ALLOW_HEADER_SIZE] = "", got[ROUTER_ALLOW_HEADER_SIZE + 2];
    size_t want_len = 0;
    for (int m = 0; m < METHOD_COUNT; m++) {
        if (allowed & (1u << m)) {
            int n = snprintf(want + want_len, sizeof want - want_len, "%s%s",
                             want_len > 0 ? ", " : "", NAMES[m]);
            check(n > 0 && (size_t)n < sizeof want - want_len,
                  "ROUTER_ALLOW_HEADER_SIZE too small for every method");
            want_len += (size_t)n;
        }
    }
    memset(got, 'x', sizeof got);
    size_t len = router_allow_header(allowed, got, size);
    check(len == want_len, "router_allow_header() returned another length");
    if (size > 0) {
        size_t kept = len < size ? len : size - 1;
        check(memcmp(got, want, kept) == 0 && got[kept] == '\0', "Allow header text wrong");
    }
    check(got[size] == 'x', "router_allow_header() wrote past the buffer's size");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    enum http_method method = (enum http_method)(data[0] % 8); /* 7: out of range */
    uint32_t chosen = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
                      (uint32_t)data[4] << 24;
    static struct reference ref;
    struct router *r = router_create();
    check(r != NULL, "router_create() failed");

    for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++) {
        if (chosen & (1u << i))
            add_route(r, &ref, ROUTES[i].method, ROUTES[i].pattern);
    }

    /* The pieces between NULs: routes, then the path. */
    const uint8_t *piece = data + 5, *end = data + size, *nul;
    while ((nul = memchr(piece, '\0', (size_t)(end - piece))) != NULL) {
        size_t len = nul > piece ? (size_t)(nul - piece) - 1 : 0;
        if (nul > piece && len < 512) {
            char pattern[512];
            memcpy(pattern, piece + 1, len);
            pattern[len] = '\0';
            add_route(r, &ref, (enum http_method)(piece[0] % METHOD_COUNT), pattern);
        }
        piece = nul + 1;
    }

    size_t len = (size_t)(end - piece);
    char *path = malloc(len ? len : 1); /* exactly the path: reading past it is caught */
    check(path != NULL, "out of memory");
    memcpy(path, piece, len);

    struct route_match got, want;
    size_t before = allocations;
    enum route_result result = router_lookup(r, method, path, len, &got);
    check(allocations == before, "router_lookup() allocated memory");
    enum route_result expected = reference_lookup(&ref, method, path, len, &want);

    if (result != expected) {
        fprintf(stderr, "router: %d (%s), reference: %d (%s)\n", result,
                got.pattern ? got.pattern : "-", expected, want.pattern ? want.pattern : "-");
        fail("router_lookup() and the reference disagree");
    }
    if (result != ROUTE_NOT_FOUND) {
        check(strcmp(got.pattern, want.pattern) == 0, "another pattern matched");
        check(got.allowed == want.allowed, "other allowed methods");
        check_params(&got, &want);
    } else {
        check(got.pattern == NULL && got.allowed == 0 && got.param_count == 0,
              "404 with match details");
    }
    check(got.handler == want.handler, "another handler");
    check_allow_header(got.allowed, (size_t)(data[0] >> 3) * 3 / 2); /* 0 to 46 bytes */

    free(path);
    router_destroy(r);
    reference_free(&ref);
    return 0;
}
