/*
 * bench_router.c - how fast stage 4's router finds a route, on the GitHub API's 203 routes (the
 * set HTTP router benchmarks have long used, so figures compare across routers and languages).
 *
 * Each route gets a request: its method, and its pattern with every parameter replaced by a
 * realistic value ("/repos/julienschmidt/httprouter/stargazers"). First a correctness pass: every
 * request must be ROUTE_FOUND, with the handler, the pattern, the methods and every parameter
 * right. Then the timing, for three request sets: all 203 in turn, a static path alone and a
 * path with parameters alone. For each: a warm-up (caches, branch predictors, CPU clock), a
 * calibration that sizes a round to about a second, then several rounds; reported is the median
 * time per lookup, and the fastest and slowest round. Time is the thread's CPU time, which does
 * not count while another process has the CPU.
 *
 * The compiler cannot drop a lookup: router.c is compiled separately (no LTO), so it cannot see
 * that router_lookup() has no side effects, and every result is folded into a volatile sink.
 * Allocations are counted by wrapping malloc, calloc and realloc at link time (see the Makefile):
 * the count must not move during the timed rounds.
 *
 * With --dot, it writes the GitHub API's trie as Graphviz DOT instead, and stops.
 */
#include "github_routes.h"
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ROUNDS = 7 };

static const double round_seconds = 1.0;
static const double warm_up_seconds = 0.3;

/* ---- counting allocations ---- */

/* -Wl,--wrap=malloc turns our calls to malloc() into calls to __wrap_malloc(), and
 * __real_malloc() into the real malloc(). Only calls from our object files go through here, which
 * is what we want: the router's. */
void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *ptr, size_t size);

static unsigned long long allocations, allocated_bytes;

void *__wrap_malloc(size_t size)
{
    allocations++;
    allocated_bytes += size;
    return __real_malloc(size);
}

void *__wrap_calloc(size_t count, size_t size)
{
    allocations++;
    allocated_bytes += count * size;
    return __real_calloc(count, size);
}

void *__wrap_realloc(void *ptr, size_t size)
{
    allocations++;
    allocated_bytes += size;
    return __real_realloc(ptr, size);
}

/* ---- the requests ---- */

/* What each parameter name stands for in a request, as the real API would see it. */
static const struct {
    const char *name, *value;
} param_values[] = {
    {"owner", "julienschmidt"},
    {"repo", "httprouter"},
    {"user", "octocat"},
    {"org", "golang"},
    {"id", "1296269"},
    {"number", "1347"},
    {"sha", "6dcb09b5b57875f334f61aebed695e2e4193db5e"},
    {"ref", "v1.3.0"},
    {"name", "bug"},
    {"client_id", "Iv1.8a61f9b3a7aba766"},
    {"access_token", "e72e16c7e42f292c6912e7710c838347ae178b4a"},
    {"assignee", "hubot"},
    {"branch", "master"},
    {"email", "octocat@github.com"},
    {"keyword", "router"},
    {"repository", "linux"},
    {"state", "open"},
    {"target_user", "torvalds"},
};

struct request {
    enum http_method method;
    const char *pattern;
    char path[256];
    size_t len;
    unsigned allowed; /* what the lookup must report: every method of this pattern */
};

static struct request requests[GITHUB_ROUTE_COUNT];

/* The value of parameter name (name_len bytes, no ':'); NULL if the table has none. */
static const char *value_of(const char *name, size_t name_len)
{
    for (size_t i = 0; i < sizeof param_values / sizeof param_values[0]; i++) {
        if (strlen(param_values[i].name) == name_len &&
            memcmp(param_values[i].name, name, name_len) == 0)
            return param_values[i].value;
    }
    return NULL;
}

/* Writes pattern into path with each ":name" replaced by its value. False if it does not fit,
 * or a name has no value. */
static bool expand_pattern(const char *pattern, char *path, size_t size, size_t *len)
{
    size_t out = 0;
    for (const char *p = pattern; *p != '\0';) {
        const char *text = p;
        size_t text_len = 1;
        if (*p == ':') {
            size_t name_len = strcspn(p + 1, "/");
            text = value_of(p + 1, name_len);
            if (text == NULL)
                return false;
            text_len = strlen(text);
            p += 1 + name_len;
        } else {
            p++;
        }
        if (out + text_len >= size)
            return false;
        memcpy(path + out, text, text_len);
        out += text_len;
    }
    path[out] = '\0';
    *len = out;
    return true;
}

/* The methods a pattern accepts: the union over the table, and HEAD wherever GET is. */
static unsigned methods_of(const char *pattern)
{
    unsigned allowed = 0;
    for (size_t i = 0; i < GITHUB_ROUTE_COUNT; i++) {
        if (strcmp(github_routes[i].pattern, pattern) == 0)
            allowed |= 1u << github_routes[i].method;
    }
    if (allowed & (1u << HTTP_METHOD_GET))
        allowed |= 1u << HTTP_METHOD_HEAD;
    return allowed;
}

static bool make_requests(void)
{
    for (size_t i = 0; i < GITHUB_ROUTE_COUNT; i++) {
        struct request *q = &requests[i];
        q->method = github_routes[i].method;
        q->pattern = github_routes[i].pattern;
        q->allowed = methods_of(q->pattern);
        if (!expand_pattern(q->pattern, q->path, sizeof q->path, &q->len)) {
            fprintf(stderr, "cannot make a path for %s\n", q->pattern);
            return false;
        }
    }
    return true;
}

/* ---- the router ---- */

static void github_handler(struct exchange *x)
{
    (void)x;
}

static struct router *build_router(void)
{
    struct router *r = router_create();
    if (r == NULL)
        return NULL;
    for (size_t i = 0; i < GITHUB_ROUTE_COUNT; i++) {
        char err[256];
        const struct github_route *route = &github_routes[i];
        if (!router_add(r, route->method, route->pattern, github_handler, err, sizeof err)) {
            fprintf(stderr, "router_add: %s\n", err);
            router_destroy(r);
            return NULL;
        }
    }
    return r;
}

/* Whether the parameters match the pattern's names, in order, with the values from the table. */
static bool params_are_right(const struct route_match *m, const char *pattern)
{
    size_t count = 0;
    for (const char *p = strchr(pattern, ':'); p != NULL; p = strchr(p + 1, ':')) {
        size_t name_len = strcspn(p + 1, "/");
        if (count == m->param_count)
            return false;
        const struct route_param *param = &m->params[count++];
        const char *value = value_of(p + 1, name_len);
        if (param->name.len != name_len || memcmp(param->name.ptr, p + 1, name_len) != 0 ||
            param->value.len != strlen(value) ||
            memcmp(param->value.ptr, value, param->value.len) != 0)
            return false;
    }
    return count == m->param_count;
}

/* The correctness pass: every request finds its own route. */
static bool check_every_route(const struct router *r)
{
    bool ok = true;
    for (size_t i = 0; i < GITHUB_ROUTE_COUNT; i++) {
        const struct request *q = &requests[i];
        struct route_match m;
        enum route_result result = router_lookup(r, q->method, q->path, q->len, &m);
        if (result != ROUTE_FOUND || m.handler != github_handler ||
            strcmp(m.pattern, q->pattern) != 0 || m.allowed != q->allowed ||
            !params_are_right(&m, q->pattern)) {
            fprintf(stderr, "wrong match for %s (pattern %s): result %d, pattern %s\n", q->path,
                    q->pattern, (int)result, result == ROUTE_NOT_FOUND ? "-" : m.pattern);
            ok = false;
        }
    }
    return ok;
}

/* ---- timing ---- */

static volatile size_t sink;

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Looks up each of the requests in turn, passes times over. */
static void look_up(const struct router *r, const struct request *set, size_t count, long passes)
{
    size_t checksum = 0;
    struct route_match m;
    for (long pass = 0; pass < passes; pass++) {
        for (size_t i = 0; i < count; i++) {
            enum route_result result = router_lookup(r, set[i].method, set[i].path, set[i].len, &m);
            checksum += (size_t)result + m.param_count;
        }
    }
    sink += checksum;
}

/* Seconds for passes passes. */
static double time_passes(const struct router *r, const struct request *set, size_t count,
                          long passes)
{
    double start = cpu_seconds();
    look_up(r, set, count, passes);
    return cpu_seconds() - start;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Times lookups of the set and prints one line. Returns the allocations during the rounds. */
static unsigned long long benchmark(const struct router *r, const char *name,
                                    const struct request *set, size_t count)
{
    /* Warm up, and find how many passes take about round_seconds. */
    long passes = 1;
    double seconds;
    while ((seconds = time_passes(r, set, count, passes)) < warm_up_seconds)
        passes *= 2;
    passes = (long)((double)passes * round_seconds / seconds) + 1;

    double ns_per_lookup[ROUNDS];
    unsigned long long allocations_before = allocations;
    for (int i = 0; i < ROUNDS; i++) {
        seconds = time_passes(r, set, count, passes);
        ns_per_lookup[i] = seconds * 1e9 / ((double)passes * (double)count);
    }
    unsigned long long allocations_during = allocations - allocations_before;
    double lookups = (double)passes * (double)count * ROUNDS;

    qsort(ns_per_lookup, ROUNDS, sizeof ns_per_lookup[0], compare_doubles);
    printf("%7.1f ns/lookup (rounds %.1f .. %.1f), %.3g allocations/lookup: %s\n",
           ns_per_lookup[ROUNDS / 2], ns_per_lookup[0], ns_per_lookup[ROUNDS - 1],
           (double)allocations_during / lookups, name);
    return allocations_during;
}

static const struct request *find_request(const char *pattern, enum http_method method)
{
    for (size_t i = 0; i < GITHUB_ROUTE_COUNT; i++) {
        if (requests[i].method == method && strcmp(requests[i].pattern, pattern) == 0)
            return &requests[i];
    }
    return NULL;
}

int main(int argc, char **argv)
{
    bool dot_only = argc == 2 && strcmp(argv[1], "--dot") == 0;
    if (argc > 1 && !dot_only) {
        fprintf(stderr, "usage: %s [--dot]\n", argv[0]);
        return 2;
    }
    if (!make_requests())
        return 1;

    unsigned long long allocations_before = allocations, bytes_before = allocated_bytes;
    struct router *r = build_router();
    if (r == NULL)
        return 1;
    unsigned long long build_allocations = allocations - allocations_before;
    unsigned long long build_bytes = allocated_bytes - bytes_before;

    if (dot_only) { /* the trie as a picture: ./bench_router --dot | dot -Tsvg >github.svg */
        router_write_dot(r, stdout);
        router_destroy(r);
        return 0;
    }
    if (!check_every_route(r)) {
        router_destroy(r);
        return 1;
    }
    struct router_stats stats;
    router_get_stats(r, &stats);
    printf("GitHub API: %d routes, all found with the right handler, pattern, methods and "
           "parameters\n",
           GITHUB_ROUTE_COUNT);
    printf("trie: %zu nodes, %zu bytes of arena (%llu allocations, %llu bytes, while adding)\n\n",
           stats.nodes, stats.arena_bytes, build_allocations, build_bytes);

    const struct request *static_request = find_request("/user/repos", HTTP_METHOD_GET);
    const struct request *param_request =
        find_request("/repos/:owner/:repo/pulls/:number/comments", HTTP_METHOD_GET);

    char static_name[300], param_name[300];
    snprintf(static_name, sizeof static_name, "GET %s alone (static)", static_request->path);
    snprintf(param_name, sizeof param_name, "GET %s alone (3 parameters)", param_request->path);

    unsigned long long timed_allocations = 0;
    timed_allocations += benchmark(r, "all 203 routes, in turn", requests, GITHUB_ROUTE_COUNT);
    timed_allocations += benchmark(r, static_name, static_request, 1);
    timed_allocations += benchmark(r, param_name, param_request, 1);

    router_destroy(r);
    if (timed_allocations != 0) {
        fprintf(stderr, "lookups allocated memory %llu times\n", timed_allocations);
        return 1;
    }
    return 0;
}
