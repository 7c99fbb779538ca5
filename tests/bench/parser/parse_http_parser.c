/*
 * parse_http_parser.c - the benchmark's driver for Node's former parser, http_parser
 * (libhttp-parser-dev). It is a callback machine, so, to compare fairly, the callbacks record
 * what a server needs, as the other parsers return it: the method, the URL, and each header's
 * name and value.
 */
#include <http_parser.h>

struct recorded {
    const char *url;
    size_t url_len;
    struct {
        const char *name, *value;
        size_t name_len, value_len;
    } headers[64];
    size_t header_count;
    size_t messages;
    size_t checksum;
};

static int on_message_begin(http_parser *parser)
{
    struct recorded *r = parser->data;
    r->header_count = 0;
    return 0;
}

static int on_url(http_parser *parser, const char *at, size_t len)
{
    struct recorded *r = parser->data;
    r->url = at;
    r->url_len = len;
    return 0;
}

static int on_header_field(http_parser *parser, const char *at, size_t len)
{
    struct recorded *r = parser->data;
    if (r->header_count == 64)
        return 1;
    r->headers[r->header_count].name = at;
    r->headers[r->header_count].name_len = len;
    return 0;
}

static int on_header_value(http_parser *parser, const char *at, size_t len)
{
    struct recorded *r = parser->data;
    r->headers[r->header_count].value = at;
    r->headers[r->header_count].value_len = len;
    r->header_count++;
    return 0;
}

static int on_message_complete(http_parser *parser)
{
    struct recorded *r = parser->data;
    r->checksum += parser->method + r->url_len + r->header_count + parser->http_minor;
    r->checksum += r->headers[r->header_count - 1].value_len;
    r->messages++;
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_message_complete = on_message_complete,
};

size_t parse_with_http_parser(const char *buf, size_t len, size_t *requests)
{
    http_parser parser;
    struct recorded r = {0};

    /* One parser for the whole buffer: it handles pipelined messages itself. */
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = &r;
    if (http_parser_execute(&parser, &settings, buf, len) != len)
        return 0;
    *requests = r.messages;
    return r.checksum;
}
