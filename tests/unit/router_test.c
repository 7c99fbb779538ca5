/*
 * router_test.c - unit tests for stage4-router/router.c.
 *
 * Table-driven, in three tables, and a check of the DOT output:
 *   lookups   one router holding a small application's routes; each case is a request (method
 *             and path) and what the lookup must answer: 404, 405 with exactly which methods,
 *             or the handler and every parameter;
 *   adds      router_add() on a fresh router after a few other routes: which patterns it must
 *             reject (and then leave the trie exactly as it was), which it must take, and which
 *             paths must still be found afterwards;
 *   allows    router_allow_header() for a few masks and buffer sizes;
 *   dot       router_write_dot() writes a digraph with balanced braces and quotes, a node per
 *             trie node, an edge to each but the root, and the methods on the nodes.
 * The lookups also run with malloc, calloc and realloc counted (the Makefile links with
 * -Wl,--wrap=...), to show that a lookup never allocates.
 *
 * Output: "ok NAME" or "FAIL NAME: what differed" per case, then "N passed, M failed"; the exit
 * status is non-zero if anything failed.
 */
#include "router.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- counting allocations ---- */

/* The linker sends our calls to malloc() and friends here (-Wl,--wrap=malloc: a call to malloc
 * becomes a call to __wrap_malloc, and __real_malloc is the real one). Only calls from our own
 * object files are redirected, which is what we want: the router's. */
void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *ptr, size_t size);

static unsigned long allocations;

void *__wrap_malloc(size_t size)
{
    allocations++;
    return __real_malloc(size);
}

void *__wrap_calloc(size_t count, size_t size)
{
    allocations++;
    return __real_calloc(count, size);
}

void *__wrap_realloc(void *ptr, size_t size)
{
    allocations++;
    return __real_realloc(ptr, size);
}

/* ---- reporting ---- */

static int passed, failed;

/* Reports a failed check; returns false so that a check can be `return failure(...)`. */
__attribute__((format(printf, 2, 3))) static bool failure(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", name);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    return false;
}

static void report(const char *name, bool ok)
{
    if (ok) {
        printf("ok %s\n", name);
        passed++;
    } else {
        failed++;
    }
}

/* ---- the application the lookups run against ---- */

/* Handlers are only compared, never called; each must be a distinct function. */
// clang-format off
static void root_page(struct exchange *x)       { (void)x; }
static void current_user(struct exchange *x)    { (void)x; }
static void list_users(struct exchange *x)      { (void)x; }
static void create_user(struct exchange *x)     { (void)x; }
static void users_directory(struct exchange *x) { (void)x; }
static void users_options(struct exchange *x)   { (void)x; }
static void show_me(struct exchange *x)         { (void)x; }
static void my_settings(struct exchange *x)     { (void)x; }
static void show_user(struct exchange *x)       { (void)x; }
static void update_user(struct exchange *x)     { (void)x; }
static void patch_user(struct exchange *x)      { (void)x; }
static void delete_user(struct exchange *x)     { (void)x; }
static void user_posts(struct exchange *x)      { (void)x; }
static void user_post(struct exchange *x)       { (void)x; }
static void avatar(struct exchange *x)          { (void)x; }
static void avatar_head(struct exchange *x)     { (void)x; }
static void serve_file(struct exchange *x)      { (void)x; }
static void files_readme(struct exchange *x)    { (void)x; }
static void file_info(struct exchange *x)       { (void)x; }
static void post_template(struct exchange *x)   { (void)x; }
static void show_template(struct exchange *x)   { (void)x; }
static void a_x_c(struct exchange *x)           { (void)x; }
static void y_b_c(struct exchange *x)           { (void)x; }
static void deep(struct exchange *x)            { (void)x; }
static void search(struct exchange *x)          { (void)x; }
// clang-format on

struct route {
    enum http_method method;
    const char *pattern;
    route_handler *handler;
};

// clang-format off
static const struct route app_routes[] = {
    {HTTP_METHOD_GET,     "/",                            root_page},
    {HTTP_METHOD_GET,     "/user",                        current_user},
    {HTTP_METHOD_GET,     "/users",                       list_users},
    {HTTP_METHOD_POST,    "/users",                       create_user},
    {HTTP_METHOD_OPTIONS, "/users",                       users_options},
    {HTTP_METHOD_GET,     "/users/",                      users_directory},
    {HTTP_METHOD_GET,     "/users/me",                    show_me},
    {HTTP_METHOD_GET,     "/users/me/settings",           my_settings},
    {HTTP_METHOD_GET,     "/users/:id",                   show_user},
    {HTTP_METHOD_PUT,     "/users/:id",                   update_user},
    {HTTP_METHOD_PATCH,   "/users/:id",                   patch_user},
    {HTTP_METHOD_DELETE,  "/users/:id",                   delete_user},
    {HTTP_METHOD_GET,     "/users/:id/posts",             user_posts},
    {HTTP_METHOD_GET,     "/users/:id/posts/:post",       user_post},
    {HTTP_METHOD_GET,     "/users/:id/avatar",            avatar},
    {HTTP_METHOD_HEAD,    "/users/:id/avatar",            avatar_head},
    {HTTP_METHOD_GET,     "/files/*path",                 serve_file},
    {HTTP_METHOD_GET,     "/files/readme",                files_readme},
    {HTTP_METHOD_GET,     "/files/:name/info",            file_info},
    {HTTP_METHOD_POST,    "/gitignore/templates",         post_template},
    {HTTP_METHOD_GET,     "/gitignore/templates/:name",   show_template},
    {HTTP_METHOD_GET,     "/a/:x/c",                      a_x_c},
    {HTTP_METHOD_GET,     "/:y/b/c",                      y_b_c},
    {HTTP_METHOD_GET,     "/deep/:p1/:p2/:p3/:p4/:p5/:p6/:p7/:p8", deep},
    {HTTP_METHOD_GET,     "/search/:query",               search},
};
// clang-format on

#define ROUTE_COUNT(table) (sizeof(table) / sizeof((table)[0]))

/* The allowed masks, spelled out. */
#define GET     (1u << HTTP_METHOD_GET)
#define HEAD    (1u << HTTP_METHOD_HEAD)
#define POST    (1u << HTTP_METHOD_POST)
#define PUT     (1u << HTTP_METHOD_PUT)
#define DELETE  (1u << HTTP_METHOD_DELETE)
#define OPTIONS (1u << HTTP_METHOD_OPTIONS)
#define PATCH   (1u << HTTP_METHOD_PATCH)

struct expected_param {
    const char *name, *value;
};

struct lookup_case {
    const char *name;
    enum http_method method;
    const char *path;
    size_t len; /* 0: strlen(path) */
    enum route_result result;
    route_handler *handler; /* ROUTE_FOUND */
    unsigned allowed; /* ROUTE_FOUND and ROUTE_METHOD_NOT_ALLOWED */
    const char *pattern; /* ROUTE_FOUND and ROUTE_METHOD_NOT_ALLOWED */
    struct expected_param params[ROUTER_MAX_PARAMS]; /* in order; the count is where names end */
};

#define FOUND       .result = ROUTE_FOUND
#define NOT_ALLOWED .result = ROUTE_METHOD_NOT_ALLOWED
#define NOT_FOUND   .result = ROUTE_NOT_FOUND

static const struct lookup_case lookup_cases[] = {
    /* Static routes, the root, and trailing slashes. */
    {"root", HTTP_METHOD_GET, "/", FOUND, root_page, GET | HEAD, "/"},
    {"static", HTTP_METHOD_GET, "/users", FOUND, list_users, GET | HEAD | POST | OPTIONS, "/users"},
    {"static_other_method", HTTP_METHOD_POST, "/users", FOUND, create_user,
     GET | HEAD | POST | OPTIONS, "/users"},
    {"static_options", HTTP_METHOD_OPTIONS, "/users", FOUND, users_options,
     GET | HEAD | POST | OPTIONS, "/users"},
    {"same_first_byte_shorter", HTTP_METHOD_GET, "/user", FOUND, current_user, GET | HEAD, "/user"},
    {"trailing_slash_is_its_own_route", HTTP_METHOD_GET, "/users/", FOUND, users_directory,
     GET | HEAD, "/users/"},
    {"trailing_slash_not_routed", HTTP_METHOD_GET, "/user/", NOT_FOUND},
    {"trailing_slash_after_param", HTTP_METHOD_GET, "/users/42/", NOT_FOUND},
    {"no_trailing_slash_not_routed", HTTP_METHOD_GET, "/users/42/posts/", NOT_FOUND},
    {"double_slash_at_root", HTTP_METHOD_GET, "//", NOT_FOUND},
    {"case_sensitive", HTTP_METHOD_GET, "/USERS", NOT_FOUND},
    {"prefix_of_a_segment", HTTP_METHOD_GET, "/use", NOT_FOUND},
    {"longer_than_a_segment", HTTP_METHOD_GET, "/usersx", NOT_FOUND},
    {"unknown", HTTP_METHOD_GET, "/nothing/here", NOT_FOUND},
    {"unknown_below_param", HTTP_METHOD_GET, "/users/42/unknown", NOT_FOUND},
    {"empty_path", HTTP_METHOD_GET, "", NOT_FOUND},
    {"no_leading_slash", HTTP_METHOD_GET, "users", NOT_FOUND},
    {"asterisk_form", HTTP_METHOD_OPTIONS, "*", NOT_FOUND},
    {"len_not_nul",
     HTTP_METHOD_GET,
     "/users/42XYZ",
     9,
     FOUND,
     show_user,
     GET | HEAD | PUT | PATCH | DELETE,
     "/users/:id",
     {{"id", "42"}}},

    /* Compressed chains: "/gitignore/templates" is one node until something branches off. */
    {"compressed_405", HTTP_METHOD_GET, "/gitignore/templates", NOT_ALLOWED, NULL, POST,
     "/gitignore/templates"},
    {"compressed_found", HTTP_METHOD_POST, "/gitignore/templates", FOUND, post_template, POST,
     "/gitignore/templates"},
    {"compressed_below",
     HTTP_METHOD_GET,
     "/gitignore/templates/C",
     FOUND,
     show_template,
     GET | HEAD,
     "/gitignore/templates/:name",
     {{"name", "C"}}},
    {"compressed_middle", HTTP_METHOD_GET, "/gitignore", NOT_FOUND},
    {"compressed_partial_segment", HTTP_METHOD_GET, "/gitignore/temp", NOT_FOUND},

    /* Methods: 405 with exactly the pattern's methods, and HEAD. */
    {"405_allowed_set", HTTP_METHOD_POST, "/users/42", NOT_ALLOWED, NULL,
     GET | HEAD | PUT | PATCH | DELETE, "/users/:id"},
    {"405_without_get_has_no_head", HTTP_METHOD_HEAD, "/gitignore/templates", NOT_ALLOWED, NULL,
     POST, "/gitignore/templates"},
    {"head_falls_back_to_get",
     HTTP_METHOD_HEAD,
     "/users/42",
     FOUND,
     show_user,
     GET | HEAD | PUT | PATCH | DELETE,
     "/users/:id",
     {{"id", "42"}}},
    {"head_route_beats_fallback",
     HTTP_METHOD_HEAD,
     "/users/7/avatar",
     FOUND,
     avatar_head,
     GET | HEAD,
     "/users/:id/avatar",
     {{"id", "7"}}},
    {"get_next_to_head_route",
     HTTP_METHOD_GET,
     "/users/7/avatar",
     FOUND,
     avatar,
     GET | HEAD,
     "/users/:id/avatar",
     {{"id", "7"}}},
    /* The path alone picks the pattern: "/users/me" is static, and has no DELETE, so 405 (the
     * lookup does not go on to "/users/:id", which has one). */
    {"405_does_not_backtrack", HTTP_METHOD_DELETE, "/users/me", NOT_ALLOWED, NULL, GET | HEAD,
     "/users/me"},

    /* Parameters: values are slices of the (already decoded) path, any bytes but '/'. */
    {"param",
     HTTP_METHOD_GET,
     "/users/42",
     FOUND,
     show_user,
     GET | HEAD | PUT | PATCH | DELETE,
     "/users/:id",
     {{"id", "42"}}},
    {"params_two",
     HTTP_METHOD_GET,
     "/users/42/posts/hello-world",
     FOUND,
     user_post,
     GET | HEAD,
     "/users/:id/posts/:post",
     {{"id", "42"}, {"post", "hello-world"}}},
    {"param_percent_and_dots",
     HTTP_METHOD_GET,
     "/search/100%.tar.gz",
     FOUND,
     search,
     GET | HEAD,
     "/search/:query",
     {{"query", "100%.tar.gz"}}},
    {"param_dot_dot",
     HTTP_METHOD_GET,
     "/search/..",
     FOUND,
     search,
     GET | HEAD,
     "/search/:query",
     {{"query", ".."}}},
    {"param_odd_bytes",
     HTTP_METHOD_GET,
     "/search/a b?c#d:e*f",
     FOUND,
     search,
     GET | HEAD,
     "/search/:query",
     {{"query", "a b?c#d:e*f"}}},
    {"param_never_empty", HTTP_METHOD_GET, "/search/", NOT_FOUND},
    {"param_never_empty_inside", HTTP_METHOD_GET, "/users//posts", NOT_FOUND},
    {"max_params",
     HTTP_METHOD_GET,
     "/deep/1/2/3/4/5/6/7/8",
     FOUND,
     deep,
     GET | HEAD,
     "/deep/:p1/:p2/:p3/:p4/:p5/:p6/:p7/:p8",
     {{"p1", "1"},
      {"p2", "2"},
      {"p3", "3"},
      {"p4", "4"},
      {"p5", "5"},
      {"p6", "6"},
      {"p7", "7"},
      {"p8", "8"}}},
    {"max_params_one_short", HTTP_METHOD_GET, "/deep/1/2/3/4/5/6/7", NOT_FOUND},

    /* Wildcards: the rest of the path, empty or with slashes. */
    {"wildcard_empty",
     HTTP_METHOD_GET,
     "/files/",
     FOUND,
     serve_file,
     GET | HEAD,
     "/files/*path",
     {{"path", ""}}},
    {"wildcard_slashes",
     HTTP_METHOD_GET,
     "/files/css/site/main.css",
     FOUND,
     serve_file,
     GET | HEAD,
     "/files/*path",
     {{"path", "css/site/main.css"}}},
    {"wildcard_empty_segments",
     HTTP_METHOD_GET,
     "/files//x//",
     FOUND,
     serve_file,
     GET | HEAD,
     "/files/*path",
     {{"path", "/x//"}}},
    {"wildcard_needs_its_slash", HTTP_METHOD_GET, "/files", NOT_FOUND},

    /* Precedence: static, then parameter, then wildcard; from the left. */
    {"static_beats_param", HTTP_METHOD_GET, "/users/me", FOUND, show_me, GET | HEAD, "/users/me"},
    {"static_beats_wildcard", HTTP_METHOD_GET, "/files/readme", FOUND, files_readme, GET | HEAD,
     "/files/readme"},
    {"param_beats_wildcard",
     HTTP_METHOD_GET,
     "/files/x.txt/info",
     FOUND,
     file_info,
     GET | HEAD,
     "/files/:name/info",
     {{"name", "x.txt"}}},
    {"leftmost_static_wins",
     HTTP_METHOD_GET,
     "/a/b/c",
     FOUND,
     a_x_c,
     GET | HEAD,
     "/a/:x/c",
     {{"x", "b"}}},
    {"root_param", HTTP_METHOD_GET, "/z/b/c", FOUND, y_b_c, GET | HEAD, "/:y/b/c", {{"y", "z"}}},

    /* Backtracking out of dead ends. */
    {"backtrack_static_to_param",
     HTTP_METHOD_GET,
     "/users/me/posts",
     FOUND,
     user_posts,
     GET | HEAD,
     "/users/:id/posts",
     {{"id", "me"}}},
    {"backtrack_to_deeper_param",
     HTTP_METHOD_GET,
     "/users/me/posts/first",
     FOUND,
     user_post,
     GET | HEAD,
     "/users/:id/posts/:post",
     {{"id", "me"}, {"post", "first"}}},
    {"backtrack_static_still_first", HTTP_METHOD_GET, "/users/me/settings", FOUND, my_settings,
     GET | HEAD, "/users/me/settings"},
    {"backtrack_static_to_wildcard",
     HTTP_METHOD_GET,
     "/files/readme/old",
     FOUND,
     serve_file,
     GET | HEAD,
     "/files/*path",
     {{"path", "readme/old"}}},
    {"backtrack_param_to_wildcard",
     HTTP_METHOD_GET,
     "/files/x/y/info",
     FOUND,
     serve_file,
     GET | HEAD,
     "/files/*path",
     {{"path", "x/y/info"}}},
    {"backtrack_drops_params",
     HTTP_METHOD_GET,
     "/files/x/other",
     FOUND,
     serve_file,
     GET | HEAD,
     "/files/*path",
     {{"path", "x/other"}}},
    {"backtrack_across_root",
     HTTP_METHOD_GET,
     "/users/b/c",
     FOUND,
     y_b_c,
     GET | HEAD,
     "/:y/b/c",
     {{"y", "users"}}},
    {"backtrack_into_compressed",
     HTTP_METHOD_GET,
     "/gitignore/b/c",
     FOUND,
     y_b_c,
     GET | HEAD,
     "/:y/b/c",
     {{"y", "gitignore"}}},
    {"root_param_dead_end", HTTP_METHOD_GET, "/users/b/d", NOT_FOUND},
};

static size_t expected_param_count(const struct lookup_case *c)
{
    size_t n = 0;
    while (n < ROUTER_MAX_PARAMS && c->params[n].name != NULL)
        n++;
    return n;
}

static bool slice_is(struct http_slice s, const char *text)
{
    return s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0;
}

static bool check_lookup(const struct router *r, const struct lookup_case *c)
{
    size_t len = c->len ? c->len : strlen(c->path);
    struct route_match m;
    memset(&m, 0xA5, sizeof m); /* garbage: the lookup must not rely on what is in it */
    enum route_result result = router_lookup(r, c->method, c->path, len, &m);
    if (result != c->result)
        return failure(c->name, "result %d, expected %d", (int)result, (int)c->result);
    if (result == ROUTE_NOT_FOUND) {
        if (m.allowed != 0 || m.handler != NULL || m.pattern != NULL || m.param_count != 0)
            return failure(c->name, "404 with a handler, methods, a pattern or parameters");
        return true;
    }
    if (m.allowed != c->allowed)
        return failure(c->name, "allowed 0x%x, expected 0x%x", m.allowed, c->allowed);
    if (m.pattern == NULL || strcmp(m.pattern, c->pattern) != 0)
        return failure(c->name, "pattern \"%s\", expected \"%s\"", m.pattern ? m.pattern : "(null)",
                       c->pattern);
    if (result == ROUTE_METHOD_NOT_ALLOWED) {
        if (m.handler != NULL)
            return failure(c->name, "405 with a handler");
        return true;
    }
    if (m.handler != c->handler)
        return failure(c->name, "wrong handler");
    if (m.param_count != expected_param_count(c))
        return failure(c->name, "%zu parameters, expected %zu", m.param_count,
                       expected_param_count(c));
    for (size_t i = 0; i < m.param_count; i++) {
        const struct route_param *p = &m.params[i];
        if (!slice_is(p->name, c->params[i].name) || !slice_is(p->value, c->params[i].value))
            return failure(c->name, "parameter %zu is %.*s=\"%.*s\", expected %s=\"%s\"", i,
                           (int)p->name.len, p->name.ptr, (int)p->value.len, p->value.ptr,
                           c->params[i].name, c->params[i].value);
        /* Zero-copy: the value must point into the path itself. */
        if (p->value.ptr < c->path || p->value.ptr + p->value.len > c->path + len)
            return failure(c->name, "parameter %zu is not a slice of the path", i);
    }
    return true;
}

static struct router *build_app(void)
{
    struct router *r = router_create();
    if (r == NULL)
        return NULL;
    for (size_t i = 0; i < ROUTE_COUNT(app_routes); i++) {
        char err[256];
        const struct route *route = &app_routes[i];
        if (!router_add(r, route->method, route->pattern, route->handler, err, sizeof err)) {
            failure("build_app", "%s", err);
            router_destroy(r);
            return NULL;
        }
    }
    return r;
}

static void run_lookup_cases(const struct router *r)
{
    for (size_t i = 0; i < ROUTE_COUNT(lookup_cases); i++)
        report(lookup_cases[i].name, check_lookup(r, &lookup_cases[i]));
}

/* Every case again, with allocations counted around the lookups alone. */
static void check_lookups_do_not_allocate(const struct router *r)
{
    unsigned long before = allocations;
    for (int round = 0; round < 100; round++) {
        for (size_t i = 0; i < ROUTE_COUNT(lookup_cases); i++) {
            const struct lookup_case *c = &lookup_cases[i];
            struct route_match m;
            router_lookup(r, c->method, c->path, c->len ? c->len : strlen(c->path), &m);
        }
    }
    unsigned long during = allocations - before;
    report("lookup_does_not_allocate",
           during == 0 || failure("lookup_does_not_allocate", "%lu allocations", during));
}

/* The counter itself works (else the test above proves nothing). */
static void check_allocation_counter(void)
{
    unsigned long before = allocations;
    struct router *r = router_create();
    bool counted = allocations > before;
    router_destroy(r);
    report("allocation_counter_works",
           counted || failure("allocation_counter_works", "router_create() was not counted"));
}

/* ---- router_add: what it takes and what it rejects ---- */

struct add_case {
    const char *name;
    const char *before[4]; /* GET routes added first */
    enum http_method method;
    const char *pattern;
    bool accepted;
    const char *found[4]; /* paths a GET must find afterwards */
    size_t nodes; /* the trie's node count afterwards, if not 0 */
};

#define ACCEPTED .accepted = true
#define REJECTED .accepted = false

static const struct add_case add_cases[] = {
    {"add_duplicate", {"/users/:id"}, HTTP_METHOD_GET, "/users/:id", REJECTED, {"/users/1"}},
    {"add_duplicate_static", {"/users"}, HTTP_METHOD_GET, "/users", REJECTED, {"/users"}},
    {"add_same_pattern_other_method", {"/users/:id"}, HTTP_METHOD_DELETE, "/users/:id", ACCEPTED},
    {"add_explicit_head", {"/users/:id"}, HTTP_METHOD_HEAD, "/users/:id", ACCEPTED},
    {"add_param_name_conflict",
     {"/users/:id"},
     HTTP_METHOD_GET,
     "/users/:name/posts",
     REJECTED,
     {"/users/1"}},
    {"add_param_name_conflict_deep",
     {"/a/:x/b/:y"},
     HTTP_METHOD_POST,
     "/a/:x/b/:z",
     REJECTED,
     {"/a/1/b/2"}},
    {"add_wildcard_name_conflict",
     {"/files/*path"},
     HTTP_METHOD_GET,
     "/files/*rest",
     REJECTED,
     {"/files/x"}},
    {"add_wildcard_not_last", {0}, HTTP_METHOD_GET, "/files/*path/edit", REJECTED},
    {"add_wildcard_no_name", {0}, HTTP_METHOD_GET, "/files/*", REJECTED},
    {"add_param_no_name", {0}, HTTP_METHOD_GET, "/users/:", REJECTED},
    {"add_param_no_name_middle", {0}, HTTP_METHOD_GET, "/users/:/posts", REJECTED},
    {"add_no_leading_slash", {0}, HTTP_METHOD_GET, "users", REJECTED},
    {"add_empty_pattern", {0}, HTTP_METHOD_GET, "", REJECTED},
    {"add_empty_segment", {0}, HTTP_METHOD_GET, "/users//posts", REJECTED},
    {"add_double_slash_root", {0}, HTTP_METHOD_GET, "//", REJECTED},
    {"add_name_twice", {0}, HTTP_METHOD_GET, "/:a/x/:a", REJECTED},
    {"add_name_twice_wildcard", {0}, HTTP_METHOD_GET, "/:a/*a", REJECTED},
    {"add_nine_params", {0}, HTTP_METHOD_GET, "/:a/:b/:c/:d/:e/:f/:g/:h/:i", REJECTED},
    {"add_eight_params",
     {0},
     HTTP_METHOD_GET,
     "/:a/:b/:c/:d/:e/:f/:g/*h",
     ACCEPTED,
     {"/1/2/3/4/5/6/7/8/9"}},
    {"add_unknown_method", {0}, (enum http_method)99, "/x", REJECTED},
    {"add_static_next_to_param",
     {"/users/:id"},
     HTTP_METHOD_GET,
     "/users/me",
     ACCEPTED,
     {"/users/1"}},
    {"add_param_next_to_static",
     {"/users/me"},
     HTTP_METHOD_GET,
     "/users/:id",
     ACCEPTED,
     {"/users/me"}},
    {"add_param_and_wildcard_same_place",
     {"/files/:name"},
     HTTP_METHOD_GET,
     "/files/*path",
     ACCEPTED,
     {"/files/a", "/files/a/b"}},
    {"add_marker_inside_segment_is_static",
     {0},
     HTTP_METHOD_GET,
     "/a:b/c*d",
     ACCEPTED,
     {"/a:b/c*d"}},
    /* Node counts show the compression: root, then one node per unbranched run of statics. */
    {"compress_chain", {0}, HTTP_METHOD_GET, "/gitignore/templates/list", ACCEPTED, {0}, 2},
    {"split_in_the_middle", {"/a/b/c"}, HTTP_METHOD_GET, "/a/x", ACCEPTED, {"/a/b/c"}, 4},
    {"split_at_the_end", {"/a/b/c"}, HTTP_METHOD_GET, "/a/b", ACCEPTED, {"/a/b/c"}, 3},
    {"split_for_a_param", {"/a/b/c"}, HTTP_METHOD_GET, "/a/:p", ACCEPTED, {"/a/b/c", "/a/q"}, 4},
    {"split_for_trailing_slash", {"/docs"}, HTTP_METHOD_GET, "/docs/", ACCEPTED, {"/docs"}, 3},
    {"extend_trailing_slash", {"/docs/"}, HTTP_METHOD_GET, "/docs/intro", ACCEPTED, {"/docs/"}, 4},
    {"root_next_to_others", {"/a", "/b"}, HTTP_METHOD_GET, "/", ACCEPTED, {"/a", "/b"}, 4},
};

static char *dot_text(const struct router *r)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (out == NULL)
        return NULL;
    router_write_dot(r, out);
    fclose(out);
    return text;
}

// clang-format off
static void dummy(struct exchange *x) { (void)x; }
// clang-format on

/* Whether a GET of path finds a route. */
static bool is_found(const struct router *r, const char *path)
{
    struct route_match m;
    return router_lookup(r, HTTP_METHOD_GET, path, strlen(path), &m) == ROUTE_FOUND;
}

static bool check_add(const struct add_case *c)
{
    struct router *r = router_create();
    char err[256] = "";
    for (size_t i = 0; i < 4 && c->before[i] != NULL; i++) {
        if (!router_add(r, HTTP_METHOD_GET, c->before[i], dummy, err, sizeof err)) {
            router_destroy(r);
            return failure(c->name, "setup: %s", err);
        }
    }
    char *dot_before = dot_text(r);
    err[0] = '\0';
    bool accepted = router_add(r, c->method, c->pattern, dummy, err, sizeof err);
    char *dot_after = dot_text(r);
    bool ok = true;

    if (accepted != c->accepted)
        ok = failure(c->name, "%s \"%s\"%s%s", accepted ? "accepted" : "rejected", c->pattern,
                     err[0] ? ": " : "", err);
    else if (!accepted && err[0] == '\0')
        ok = failure(c->name, "rejected with no message");
    else if (!accepted && strcmp(dot_before, dot_after) != 0)
        ok = failure(c->name, "a rejected pattern changed the trie");

    for (size_t i = 0; ok && i < 4 && c->found[i] != NULL; i++) {
        if (!is_found(r, c->found[i]))
            ok = failure(c->name, "GET %s not found afterwards", c->found[i]);
    }
    struct router_stats stats;
    router_get_stats(r, &stats);
    if (ok && c->nodes != 0 && stats.nodes != c->nodes)
        ok = failure(c->name, "%zu nodes, expected %zu", stats.nodes, c->nodes);

    free(dot_before);
    free(dot_after);
    router_destroy(r);
    return ok;
}

static void run_add_cases(void)
{
    for (size_t i = 0; i < ROUTE_COUNT(add_cases); i++)
        report(add_cases[i].name, check_add(&add_cases[i]));
}

/* Without err: a rejected pattern must not write through a NULL pointer. */
static void check_add_without_err(void)
{
    struct router *r = router_create();
    bool accepted = router_add(r, HTTP_METHOD_GET, "no-slash", dummy, NULL, 0);
    bool null_handler = router_add(r, HTTP_METHOD_GET, "/x", NULL, NULL, 0);
    router_destroy(r);
    report("add_without_err",
           (!accepted && !null_handler) || failure("add_without_err", "a bad route was accepted"));
}

/* ---- router_allow_header ---- */

struct allow_case {
    const char *name;
    unsigned allowed;
    size_t size;
    const char *text; /* what buf must hold */
    size_t length; /* what it must return */
};

static const struct allow_case allow_cases[] = {
    {"allow_get", GET | HEAD, 64, "GET, HEAD", 9},
    {"allow_all", GET | HEAD | POST | PUT | DELETE | OPTIONS | PATCH, ROUTER_ALLOW_HEADER_SIZE,
     "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH", 44},
    {"allow_order_is_fixed", PATCH | POST, 64, "POST, PATCH", 11},
    {"allow_none", 0, 64, "", 0},
    {"allow_truncated", GET | HEAD, 5, "GET,", 9},
    {"allow_exact_fit", GET | HEAD, 10, "GET, HEAD", 9},
    {"allow_one_short", GET | HEAD, 9, "GET, HEA", 9},
};

static void run_allow_cases(void)
{
    for (size_t i = 0; i < ROUTE_COUNT(allow_cases); i++) {
        const struct allow_case *c = &allow_cases[i];
        char buf[64];
        memset(buf, 'x', sizeof buf);
        size_t length = router_allow_header(c->allowed, buf, c->size);
        bool ok = true;
        if (length != c->length)
            ok = failure(c->name, "returned %zu, expected %zu", length, c->length);
        else if (strcmp(buf, c->text) != 0)
            ok = failure(c->name, "wrote \"%s\", expected \"%s\"", buf, c->text);
        report(c->name, ok);
    }
    /* size 0: nothing written, not even a NUL, so buf may be NULL. */
    size_t length = router_allow_header(GET | HEAD, NULL, 0);
    report("allow_size_zero", length == 9 || failure("allow_size_zero", "returned %zu", length));
}

/* ---- router_write_dot ---- */

/* Sane DOT: a digraph, braces balanced and never below zero, quotes closed, an edge per node
 * but the root, and the methods shown. Graphviz itself is not needed for the test. */
static bool check_dot(const struct router *r)
{
    char *text = dot_text(r);
    if (text == NULL)
        return failure("dot", "open_memstream failed");
    bool ok = true;
    int depth = 0, min_depth = 0;
    bool in_string = false;
    size_t edges = 0, nodes = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (in_string) {
            if (*p == '\\' && p[1] != '\0')
                p++;
            else if (*p == '"')
                in_string = false;
            continue;
        }
        if (*p == '"')
            in_string = true;
        else if (*p == '{')
            depth++;
        else if (*p == '}' && --depth < min_depth)
            min_depth = depth;
        else if (p[0] == '-' && p[1] == '>')
            edges++;
        else if (strncmp(p, "[label=", 7) == 0)
            nodes++;
    }
    struct router_stats stats;
    router_get_stats(r, &stats);
    if (strncmp(text, "digraph", 7) != 0)
        ok = failure("dot", "does not start with \"digraph\"");
    else if (depth != 0 || min_depth < 0 || in_string)
        ok = failure("dot", "unbalanced braces or quotes");
    else if (nodes != stats.nodes || edges != stats.nodes - 1)
        ok =
            failure("dot", "%zu nodes and %zu edges for %zu trie nodes", nodes, edges, stats.nodes);
    else if (strstr(text, "GET, HEAD, PUT, DELETE, PATCH") == NULL)
        ok = failure("dot", "the methods of \"/users/:id\" are not shown");
    else if (strstr(text, "/gitignore/templates") == NULL)
        ok = failure("dot", "the compressed node \"/gitignore/templates\" is not shown");
    free(text);
    return ok;
}

/* Labels with '"' and '\' must be escaped. */
static bool check_dot_escapes(void)
{
    struct router *r = router_create();
    router_add(r, HTTP_METHOD_GET, "/say\"hi\\", dummy, NULL, 0);
    char *text = dot_text(r);
    bool ok = strstr(text, "/say\\\"hi\\\\") != NULL ||
              failure("dot_escapes", "label not escaped in:\n%s", text);
    free(text);
    router_destroy(r);
    return ok;
}

int main(void)
{
    check_allocation_counter();
    struct router *app = build_app();
    report("build_app", app != NULL);
    if (app != NULL) {
        run_lookup_cases(app);
        check_lookups_do_not_allocate(app);
        report("dot", check_dot(app));
        if (getenv("ROUTER_TEST_DOT") != NULL)
            router_write_dot(app, stderr);
        router_destroy(app);
    }
    report("dot_escapes", check_dot_escapes());
    run_add_cases();
    check_add_without_err();
    run_allow_cases();

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
