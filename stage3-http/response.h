/*
 * response.h - writing HTTP/1.1 responses into a connection's output.
 */
#ifndef RESPONSE_H
#define RESPONSE_H

#include "conn.h"

#include <stddef.h>

enum response_flags {
    RESPONSE_NO_BODY = 1 << 0, /* HEAD: the headers describe a body that is not sent */
    RESPONSE_CLOSE = 1 << 1, /* "Connection: close": the last response on this connection */
    RESPONSE_KEEP_ALIVE = 1 << 2, /* "Connection: keep-alive": an HTTP/1.0 client asked for it */
};

/*
 * Queues a whole response: status line, Date, Content-Type (if not NULL), Content-Length,
 * Connection as the flags say, extra_headers (complete "Name: value\r\n" lines, or NULL),
 * then the body. The loop writes it with one write() once the callback returns.
 */
void respond(struct conn *c, int status, const char *content_type, const char *extra_headers,
             const void *body, size_t body_len, unsigned flags);

/* Queues a short text/plain error response ("400 Bad Request") with Connection: close. */
void respond_error(struct conn *c, int status);

/* The reason phrase of a status code ("Not Found"). */
const char *http_reason(int status);

#endif
