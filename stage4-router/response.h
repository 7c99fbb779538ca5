/*
 * response.h - writing HTTP/1.1 responses into a connection's output.
 */
#ifndef RESPONSE_H
#define RESPONSE_H

#include "exchange.h"
#include "conn.h"

#include <stddef.h>
#include <sys/types.h>

enum response_flags {
    RESPONSE_NO_BODY = 1 << 0, /* HEAD: the headers describe a body that is not sent */
    RESPONSE_CLOSE = 1 << 1, /* "Connection: close": the last response on this connection */
    RESPONSE_KEEP_ALIVE = 1 << 2, /* "Connection: keep-alive": an HTTP/1.0 client asked for it */
};

/*
 * Queues a whole response to x: status line, Date, Content-Type (if not NULL),
 * Content-Length, Connection as x->flags say, extra_headers (complete "Name: value\r\n"
 * lines, or NULL), then the body. The loop writes it with one write() once the callback
 * returns. A 304 gets no Content-Length: it would describe a body that is not there.
 */
void respond(struct exchange *x, int status, const char *content_type, const char *extra_headers,
             const void *body, size_t body_len);

/*
 * The same with len bytes of the open file fd, from offset, as the body: sent with
 * sendfile() after the head. Takes fd over (closes it when sent, or at once for HEAD).
 */
void respond_file(struct exchange *x, int status, const char *content_type,
                  const char *extra_headers, int fd, off_t offset, size_t len);

/* Queues a short text/plain response to x whose body is its status ("404 Not Found"). */
void respond_status(struct exchange *x, int status, const char *extra_headers);

/* Queues a short text/plain error response ("400 Bad Request") with Connection: close. */
void respond_error(struct conn *c, int status);

/* The reason phrase of a status code ("Not Found"). */
const char *http_reason(int status);

#endif
