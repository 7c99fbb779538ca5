/*
 * parse_ours.c - the benchmark's driver for shared/http_parse.c.
 *
 * Each driver parses every request head in buf[0..len) (one, or several pipelined) and returns a
 * checksum of what it found, so that the compiler cannot skip the work.
 */
#include "../../../shared/http_parse.h"

size_t parse_with_ours(const char *buf, size_t len, size_t *requests)
{
    struct http_request_parser parser;
    struct http_request req;
    size_t offset = 0, checksum = 0;

    *requests = 0;
    while (offset < len) {
        http_request_parser_init(&parser);
        ssize_t n = http_parse_request(&parser, buf + offset, len - offset, &req);
        if (n <= 0)
            return 0; /* the harness checks the count */
        checksum += req.method + req.path.len + req.field_count + req.host.len;
        checksum += req.fields[req.field_count - 1].value.len;
        offset += (size_t)n;
        ++*requests;
    }
    return checksum;
}
