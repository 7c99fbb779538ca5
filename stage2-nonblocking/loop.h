/*
 * loop.h - the event loop, as main.c sees it: create, run.
 *
 * One loop serves the clients of one listening socket. What it does with
 * them is conn.h's business; how it waits for the kernel is its backend's (backend.h).
 */
#ifndef LOOP_H
#define LOOP_H

#include <stddef.h>

struct loop;
struct backend; /* how a loop waits for the kernel (backend.h) */

/* The backend every stage from 2 on has: epoll (loop_epoll.c). */
extern const struct backend epoll_backend;

/*
 * A loop serving the clients of listen_fd (non-blocking) with the given backend until a
 * stop signal arrives on signal_fd. NULL with a message in err if it cannot be set up.
 */
struct loop *loop_create(const struct backend *backend, int listen_fd, int signal_fd, char *err,
                         size_t errlen);

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

/* Frees the loop. */
void loop_destroy(struct loop *loop);

#endif
