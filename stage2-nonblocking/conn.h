/*
 * conn.h - a connection, as the protocol sees it.
 *
 * This is the seam between moving bytes and understanding them. The connection layer
 * (conn.c) owns the sockets: it accepts, receives, sends, buffers and closes. The
 * protocol (echo.c here, HTTP from stage 3) only ever sees bytes that have arrived, and hands back
 * bytes to send. It never calls read() or write(), so what moves the bytes can change underneath
 * it: stage 6 adds io_uring beside epoll, and the protocol code does not change.
 */
#ifndef CONN_H
#define CONN_H

#include <stddef.h>

struct loop;
struct conn;

/*
 * For the protocol: queue bytes for the client. The connection copies them, so the
 * caller's memory is free again on return; they are sent once the current callback
 * returns, and what the kernel does not take yet is kept until it does.
 */
void conn_send(struct conn *c, const void *data, size_t len);

/* For the protocol: close the connection once everything queued has been sent. */
void conn_close(struct conn *c);

/*
 * The protocol implements these; the connection layer calls them. After each call it
 * sends what was queued.
 */

/*
 * Bytes have arrived: data[0..len) holds every byte received and not yet consumed, oldest
 * first. Returns how many of them the protocol consumed; the rest are kept and passed
 * again, followed by newer bytes, next time. The memory is the connection layer's and is
 * valid only during the call (the protocol may modify it).
 */
size_t protocol_on_data(struct conn *c, char *data, size_t len);

/* The client closed its side of the connection: nothing more will arrive. */
void protocol_on_eof(struct conn *c);

/* The server is stopping: finish what is in flight, close what is idle. */
void protocol_on_stop(struct conn *c);

#endif
