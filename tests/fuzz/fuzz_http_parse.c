/*
 * fuzz_http_parse.c - libFuzzer target for shared/http_parse.c.
 *
 * Each input is taken as the bytes a client sent:
 *   1. parsed as a request head in one call; every slice must lie inside the input, and what the
 *      parser reports must be self-consistent;
 *   2. parsed again in two calls, split at a point taken from the input, each call on a fresh
 *      copy (so the bytes move between calls, as they may in the server): same answer, same
 *      slices (as offsets);
 *   3. if the head is complete and its body is chunked, the rest of the input is scanned as the
 *      body the same two ways, and squeezed; the decoded length must match the scan's.
 * Over-reads are caught by AddressSanitizer: every buffer is allocated at its exact size.
 */
#include "../../shared/http_parse.h"
#include "fuzz_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_known_error(ssize_t n)
{
    return n == -400 || n == -413 || n == -414 || n == -417 || n == -431 || n == -501 || n == -505;
}

/* Where a slice is, as an offset into its buffer; -1 for an absent one (ptr NULL). */
static long offset_of(struct http_slice s, const char *buf, size_t len)
{
    if (s.ptr == NULL) {
        check(s.len == 0, "absent slice with a length");
        return -1;
    }
    check(s.ptr >= buf && s.ptr <= buf + len && s.len <= (size_t)(buf + len - s.ptr),
          "slice outside the buffer");
    return s.ptr - buf;
}

/* Every slice of a request, as (offset, length) pairs, for comparing two parses. */
struct layout {
    long offsets[5 + 2 * HTTP_MAX_FIELDS];
    size_t lengths[5 + 2 * HTTP_MAX_FIELDS];
    size_t count;
};

static void add_slice(struct layout *l, struct http_slice s, const char *buf, size_t len)
{
    l->offsets[l->count] = offset_of(s, buf, len);
    l->lengths[l->count] = s.len;
    l->count++;
}

/* Checks what a complete head reports, and records where its slices are. */
static void check_request(const struct http_request *req, size_t head_len, const char *buf,
                          struct layout *l)
{
    l->count = 0;
    add_slice(l, req->method_name, buf, head_len);
    add_slice(l, req->target, buf, head_len);
    add_slice(l, req->path, buf, head_len);
    add_slice(l, req->query, buf, head_len);
    add_slice(l, req->host, buf, head_len);
    check(req->field_count <= HTTP_MAX_FIELDS, "too many fields");
    for (size_t i = 0; i < req->field_count; i++) {
        add_slice(l, req->fields[i].name, buf, head_len);
        add_slice(l, req->fields[i].value, buf, head_len);
        check(req->fields[i].name.len > 0, "empty field name");
    }

    check(req->method >= HTTP_METHOD_GET && req->method <= HTTP_METHOD_PATCH, "bad method");
    check(req->minor_version == 0 || req->minor_version == 1, "bad version");
    check(req->method_name.len > 0 && req->target.len > 0 && req->path.len > 0, "empty part");
    check(req->target.len <= HTTP_MAX_TARGET_LEN, "target over the limit");
    check(req->minor_version == 0 || req->host.ptr != NULL, "HTTP/1.1 without a host");
    check(req->body_framing != HTTP_BODY_LENGTH || req->content_length <= HTTP_MAX_BODY_LEN,
          "Content-Length over the limit");
    check(req->body_framing != HTTP_BODY_CHUNKED || req->minor_version == 1, "chunked in HTTP/1.0");
    check(!req->expect_continue || req->minor_version == 1, "100-continue in HTTP/1.0");
}

static bool same_layout(const struct layout *a, const struct layout *b)
{
    return a->count == b->count &&
           memcmp(a->offsets, b->offsets, a->count * sizeof a->offsets[0]) == 0 &&
           memcmp(a->lengths, b->lengths, a->count * sizeof a->lengths[0]) == 0;
}

/* Parses the head in one call, then in two calls split at `cut`. Returns the one-call answer. */
static ssize_t fuzz_head(const uint8_t *data, size_t size, size_t cut, struct http_request *req)
{
    struct http_request_parser p;
    struct http_request split_req;
    struct layout whole_layout, split_layout;

    char *whole = copy_of(data, size);
    http_request_parser_init(&p);
    ssize_t n = http_parse_request(&p, whole, size, req);
    check(n == HTTP_NEED_MORE || is_known_error(n) || (n > 0 && (size_t)n <= size),
          "unexpected return value");
    if (n > 0)
        check_request(req, (size_t)n, whole, &whole_layout);

    char *first = copy_of(data, cut), *second = copy_of(data, size);
    http_request_parser_init(&p);
    ssize_t early = http_parse_request(&p, first, cut, &split_req);
    ssize_t late =
        early != HTTP_NEED_MORE ? early : http_parse_request(&p, second, size, &split_req);
    check(late == n, "split parse disagrees with the one-call parse");
    if (n > 0) {
        check_request(&split_req, (size_t)n, early > 0 ? first : second, &split_layout);
        check(same_layout(&whole_layout, &split_layout), "split parse found other slices");
    }

    free(first);
    free(second);
    free(whole);
    return n;
}

/* Scans a chunked body in one call, then in two; squeezes it if complete. */
static void fuzz_chunked_body(const uint8_t *body, size_t size, size_t cut)
{
    struct http_chunked_parser c;

    char *whole = copy_of(body, size);
    http_chunked_parser_init(&c);
    ssize_t n = http_chunked_scan(&c, whole, size);
    check(n == HTTP_NEED_MORE || n == -400 || n == -413 || n == -431 ||
              (n > 0 && (size_t)n <= size),
          "unexpected chunked return value");
    /* body_len is private; read here only as a cross-check of the squeeze. */
    uint32_t scanned_body_len = c.body_len;

    char *first = copy_of(body, cut), *second = copy_of(body, size);
    http_chunked_parser_init(&c);
    ssize_t early = http_chunked_scan(&c, first, cut);
    ssize_t late = early != HTTP_NEED_MORE ? early : http_chunked_scan(&c, second, size);
    check(late == n, "split chunked scan disagrees with the one-call scan");

    if (n > 0) {
        size_t decoded = http_chunked_squeeze(whole, (size_t)n);
        check(decoded == scanned_body_len, "squeeze and scan disagree on the body length");
        check(decoded <= HTTP_MAX_BODY_LEN && decoded < (size_t)n, "decoded body too long");
    }
    free(first);
    free(second);
    free(whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The split point: the last byte picks it, in proportion to the input's length. */
    size_t cut = size == 0 ? 0 : (size_t)data[size - 1] * size / 256;
    struct http_request req;

    ssize_t n = fuzz_head(data, size, cut, &req);
    if (n > 0 && req.body_framing == HTTP_BODY_CHUNKED) {
        size_t body_size = size - (size_t)n;
        fuzz_chunked_body(data + n, body_size, cut * body_size / (size ? size : 1));
    }
    return 0;
}
