/*
 * loop.h - the event loop, and the protocol it drives.
 *
 * This is the seam between waiting for I/O and handling it. The loop owns the sockets:
 * it accepts, reads, writes, buffers and closes. The protocol (echo.c here, HTTP from
 * stage 3) only ever sees bytes that have arrived, and hands back bytes to send. It
 * never calls read() or write(), so the loop can change underneath it: stage 6 replaces
 * epoll with io_uring and the protocol code does not change.
 */
#ifndef LOOP_H
#define LOOP_H

#include <stddef.h>

struct loop;
struct conn;

/*
 * A loop serving the clients of listen_fd (non-blocking) until a stop signal arrives on
 * signal_fd. NULL with a message in err if it cannot be set up.
 */
struct loop *loop_create(int listen_fd, int signal_fd, char *err, size_t errlen);

/* Runs until stopped: the first signal stops accepting and lets clients finish, until the
 * drain period ends (loop_set_shutdown_timeout()); a second one closes them all at once.
 * Closes listen_fd. */
void loop_run(struct loop *loop);

/*
 * --max-conns: hold at most max connections at once (0, the default: as many as the
 * descriptor limit allows). At the limit the loop stops accepting; new clients wait in the
 * kernel's accept queue (the listen() backlog) until a connection closes.
 */
void loop_set_max_conns(struct loop *loop, size_t max);

/*
 * --shutdown-timeout: after the first stop signal, connections still open after ms
 * milliseconds (a request half received, an answer the client does not read) are closed,
 * so the loop returns within that bound whatever its clients do.
 */
void loop_set_shutdown_timeout(struct loop *loop, unsigned ms);

void loop_destroy(struct loop *loop);

/*
 * For the protocol: queue bytes for the client. The loop copies them, so the caller's
 * memory is free again on return; it writes them once the current callback returns, and
 * keeps what the kernel does not take until the socket is writable again.
 */
void conn_send(struct conn *c, const void *data, size_t len);

/* For the protocol: close the connection once everything queued has been sent. */
void conn_close(struct conn *c);

/*
 * The protocol implements these; the loop calls them. After each call the loop sends what
 * was queued.
 */

/*
 * Bytes have arrived: data[0..len) holds every byte received and not yet consumed, oldest
 * first. Returns how many of them the protocol consumed; the loop keeps the rest and
 * passes them again, followed by newer bytes, next time. The memory is the loop's and is
 * valid only during the call (the protocol may modify it).
 */
size_t protocol_on_data(struct conn *c, char *data, size_t len);

/* The client closed its side of the connection: nothing more will arrive. */
void protocol_on_eof(struct conn *c);

/* The server is stopping: finish what is in flight, close what is idle. */
void protocol_on_stop(struct conn *c);

#endif
