/*
 * echo.c - the echo protocol: send back whatever arrives.
 *
 * This is all the protocol there is; the event loop (loop_epoll.c) does the rest.
 */
#include "conn.h"

size_t protocol_on_data(struct conn *c, char *data, size_t len)
{
    conn_send(c, data, len);
    return len;
}

/* A half-close: the client sent everything. Send the rest of the echo, then close. */
void protocol_on_eof(struct conn *c)
{
    conn_close(c);
}

/*
 * Echo has no message boundaries, so the server cannot tell a client pausing between two
 * sends from one that is done: on stop it lets every client finish and hang up, until the
 * loop's drain period ends. (HTTP, in stage 3, knows when a connection is between requests
 * and closes those at once.)
 */
void protocol_on_stop(struct conn *c)
{
    (void)c;
}
