/*
 * fuzz_scan_paths.c - libFuzzer target: the parser's SSE2 scans against its byte loops.
 *
 * On x86-64, shared/http_parse.c tests field values, field names, host names and request-targets
 * 16 bytes at a time with SSE2, and leaves the rest to byte loops: the last bytes of a buffer, and
 * the rarer characters; and it parses a short GET request line on a path of its own
 * (parse_short_get()). Other CPUs run the byte loops and the general path alone. Both must give
 * the same answers to the byte. This target links the parser twice: as built for x86-64, and
 * built without SSE2, its public names prefixed scalar_ (see the Makefile). Each input is given
 * to both:
 *   1. as a request head, in one call and then in two calls split where the input's last byte
 *      says: the same return values, and a complete head with the same slices (as offsets) and
 *      the same summary;
 *   2. if the head is complete and its body chunked, the rest as the body, the same two ways
 *      (trailer lines are scanned as field lines): the same return values.
 * Every buffer is allocated at its exact size, so AddressSanitizer catches an over-read.
 */
#include "../../shared/http_parse.h"
#include "fuzz_check.h"

/* The byte-loop build of the same parser. */
void scalar_http_request_parser_init(struct http_request_parser *p);
ssize_t scalar_http_parse_request(struct http_request_parser *p, const char *buf, size_t len,
                                  struct http_request *req);
void scalar_http_chunked_parser_init(struct http_chunked_parser *c);
ssize_t scalar_http_chunked_scan(struct http_chunked_parser *c, const char *buf, size_t len);

/* Whether slice x of a request parsed in buf_x is slice y of one parsed in buf_y: the same
 * offset (or both absent) and length. */
static bool same_slice(struct http_slice x, const char *buf_x, struct http_slice y,
                       const char *buf_y)
{
    if (x.ptr == NULL || y.ptr == NULL)
        return x.ptr == y.ptr && x.len == y.len;
    return x.ptr - buf_x == y.ptr - buf_y && x.len == y.len;
}

static bool same_request(const struct http_request *x, const char *buf_x,
                         const struct http_request *y, const char *buf_y)
{
    if (!same_slice(x->method_name, buf_x, y->method_name, buf_y) ||
        !same_slice(x->target, buf_x, y->target, buf_y) ||
        !same_slice(x->path, buf_x, y->path, buf_y) ||
        !same_slice(x->query, buf_x, y->query, buf_y) ||
        !same_slice(x->host, buf_x, y->host, buf_y))
        return false;
    if (x->method != y->method || x->minor_version != y->minor_version ||
        x->field_count != y->field_count || x->body_framing != y->body_framing ||
        x->content_length != y->content_length || x->keep_alive != y->keep_alive ||
        x->expect_continue != y->expect_continue)
        return false;
    for (size_t i = 0; i < x->field_count && i < HTTP_MAX_FIELDS; i++) {
        if (!same_slice(x->fields[i].name, buf_x, y->fields[i].name, buf_y) ||
            !same_slice(x->fields[i].value, buf_x, y->fields[i].value, buf_y))
            return false;
    }
    return true;
}

/* The head in one call, then in two calls split at `cut`, by both builds. Returns the answer. */
static ssize_t compare_heads(const uint8_t *data, size_t size, size_t cut, struct http_request *req)
{
    struct http_request_parser p, sp;
    struct http_request scalar_req;

    char *whole = copy_of(data, size);
    http_request_parser_init(&p);
    scalar_http_request_parser_init(&sp);
    ssize_t n = http_parse_request(&p, whole, size, req);
    check(scalar_http_parse_request(&sp, whole, size, &scalar_req) == n,
          "one call: SSE2 and byte loops disagree");
    if (n > 0)
        check(same_request(req, whole, &scalar_req, whole),
              "one call: SSE2 and byte loops found other slices");

    char *first = copy_of(data, cut), *second = copy_of(data, size);
    struct http_request split_req;
    http_request_parser_init(&p);
    scalar_http_request_parser_init(&sp);
    ssize_t early = http_parse_request(&p, first, cut, &split_req);
    check(scalar_http_parse_request(&sp, first, cut, &scalar_req) == early,
          "first of two calls: SSE2 and byte loops disagree");
    if (early == HTTP_NEED_MORE) {
        ssize_t late = http_parse_request(&p, second, size, &split_req);
        check(scalar_http_parse_request(&sp, second, size, &scalar_req) == late,
              "second of two calls: SSE2 and byte loops disagree");
        if (late > 0)
            check(same_request(&split_req, second, &scalar_req, second),
                  "two calls: SSE2 and byte loops found other slices");
    }

    free(first);
    free(second);
    free(whole);
    return n;
}

/* The chunked body in one call, then in two, by both builds. */
static void compare_chunked(const uint8_t *body, size_t size, size_t cut)
{
    struct http_chunked_parser c, sc;

    char *whole = copy_of(body, size);
    http_chunked_parser_init(&c);
    scalar_http_chunked_parser_init(&sc);
    check(http_chunked_scan(&c, whole, size) == scalar_http_chunked_scan(&sc, whole, size),
          "chunked, one call: SSE2 and byte loops disagree");

    char *first = copy_of(body, cut), *second = copy_of(body, size);
    http_chunked_parser_init(&c);
    scalar_http_chunked_parser_init(&sc);
    ssize_t early = http_chunked_scan(&c, first, cut);
    check(scalar_http_chunked_scan(&sc, first, cut) == early,
          "chunked, first of two calls: SSE2 and byte loops disagree");
    if (early == HTTP_NEED_MORE)
        check(http_chunked_scan(&c, second, size) == scalar_http_chunked_scan(&sc, second, size),
              "chunked, second of two calls: SSE2 and byte loops disagree");

    free(first);
    free(second);
    free(whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The split point: the last byte picks it, in proportion to the input's length. */
    size_t cut = size == 0 ? 0 : (size_t)data[size - 1] * size / 256;
    struct http_request req;

    ssize_t n = compare_heads(data, size, cut, &req);
    if (n > 0 && req.body_framing == HTTP_BODY_CHUNKED) {
        size_t body_size = size - (size_t)n;
        compare_chunked(data + n, body_size, cut * body_size / (size ? size : 1));
    }
    return 0;
}
