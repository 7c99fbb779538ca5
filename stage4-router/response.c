/*
 * response.c - writing HTTP/1.1 responses into a connection's output.
 *
 * The head is assembled with memcpy into one stack buffer and queued together with the
 * body, so a small response costs one write() (the loop's, after the callback). No
 * snprintf on this path: formatting a number is the only work that is not a copy.
 */
#include "response.h"
#include "clock_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The longest head we write: fixed headers plus extra ones (a Location can hold a target). */
enum { RESPONSE_HEAD_MAX = 4096 };

const char *http_reason(int status)
{
    /* A table reads best as one: */
    // clang-format off
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
    // clang-format on
}

/* The Date header (RFC 9110 section 6.6.1: an origin server with a clock must send it). */
static const char *http_date(void)
{
    static struct clock_text date;
    return clock_text_now(&date, "%a, %d %b %Y %H:%M:%S GMT");
}

struct head {
    char bytes[RESPONSE_HEAD_MAX];
    size_t len;
};

static void put(struct head *h, const char *text, size_t len)
{
    /* Our own headers are bounded; overflowing means a bug here, not a bad request. */
    if (h->len + len > sizeof h->bytes)
        abort();
    memcpy(h->bytes + h->len, text, len);
    h->len += len;
}

static void put_str(struct head *h, const char *text)
{
    put(h, text, strlen(text));
}

static void put_number(struct head *h, unsigned long long n)
{
    char digits[20];
    size_t i = sizeof digits;
    do {
        digits[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    put(h, digits + i, sizeof digits - i);
}

static void send_head(struct conn *c, int status, const char *content_type,
                      const char *extra_headers, size_t body_len, unsigned flags)
{
    struct head h = {.len = 0};
    put_str(&h, "HTTP/1.1 ");
    put_number(&h, (unsigned)status);
    put_str(&h, " ");
    put_str(&h, http_reason(status));
    put_str(&h, "\r\nDate: ");
    put_str(&h, http_date());
    if (content_type != NULL) {
        put_str(&h, "\r\nContent-Type: ");
        put_str(&h, content_type);
    }
    /* Always a length, also for HEAD (the GET body's) and errors: the client never has to
     * wait for a close to know where a response ends. A 204 has neither a body nor a
     * Content-Length (RFC 9110 8.6). */
    if (status != 304 && status != 204) {
        put_str(&h, "\r\nContent-Length: ");
        put_number(&h, body_len);
    }
    if (flags & RESPONSE_CLOSE)
        put_str(&h, "\r\nConnection: close");
    else if (flags & RESPONSE_KEEP_ALIVE)
        put_str(&h, "\r\nConnection: keep-alive");
    put_str(&h, "\r\n");
    if (extra_headers != NULL)
        put_str(&h, extra_headers);
    put_str(&h, "\r\n");
    conn_send(c, h.bytes, h.len);
}

void respond(struct exchange *x, int status, const char *content_type, const char *extra_headers,
             const void *body, size_t body_len)
{
    send_head(x->conn, status, content_type, extra_headers, body_len, x->flags);
    x->status = status;
    if (!(x->flags & RESPONSE_NO_BODY) && status != 304 && status != 204) {
        conn_send(x->conn, body, body_len);
        x->body_bytes = body_len;
    }
}

void respond_file(struct exchange *x, int status, const char *content_type,
                  const char *extra_headers, int fd, off_t offset, size_t len)
{
    send_head(x->conn, status, content_type, extra_headers, len, x->flags);
    x->status = status;
    if (x->flags & RESPONSE_NO_BODY) {
        close(fd);
        return;
    }
    conn_send_file(x->conn, fd, offset, len);
    x->body_bytes = len;
    x->file_queued = true;
}

void respond_status(struct exchange *x, int status, const char *extra_headers)
{
    char body[64];
    int len = snprintf(body, sizeof body, "%d %s\n", status, http_reason(status));
    respond(x, status, "text/plain", extra_headers, body, (size_t)len);
}

void respond_error(struct conn *c, int status)
{
    char body[64];
    int len = snprintf(body, sizeof body, "%d %s\n", status, http_reason(status));
    send_head(c, status, "text/plain", NULL, (size_t)len, RESPONSE_CLOSE);
    conn_send(c, body, (size_t)len);
}
