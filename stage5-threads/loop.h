/*
 * loop.h - an event loop, as main.c and the worker threads see it: create, run, stop,
 * post a message.
 *
 * One loop serves the clients of one listening socket on one thread. What it does with
 * them is conn.h's business; how it waits for the kernel is its backend's (backend.h).
 */
#ifndef LOOP_H
#define LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct backend; /* how a loop waits for the kernel (backend.h) */

/* The backend every stage from 2 on has: epoll (loop_epoll.c). */
extern const struct backend epoll_backend;

/*
 * Something another thread hands to a loop for one of its connections: a worker's
 * finished job, say. It is the first member of the sender's own struct, malloc'd as a
 * whole, so that the loop can free a message it cannot deliver without knowing its type.
 */
struct loop_message {
    struct loop_message *next; /* in the loop's inbox */
    uint64_t conn; /* conn_id() of the connection it is for */
};

/*
 * A loop serving the clients of listen_fd (non-blocking) with the given backend, one per
 * thread; index names it in messages. NULL with a message in err if it cannot be set up.
 */
struct loop *loop_create(const struct backend *backend, int listen_fd, int index, char *err,
                         size_t errlen);

/* Runs, on the calling thread, until stopped. Closes listen_fd. */
void loop_run(struct loop *loop);

/* How many connections the loop has accepted so far. */
size_t loop_accepted(const struct loop *loop);

/*
 * From any thread: stop the count loops. At once (now) closes every connection; otherwise
 * each stops accepting and lets connections finish what they are doing.
 */
void loop_stop_all(struct loop **loops, int count, bool now);

/*
 * From any thread: hand m to the loop, which passes it to protocol_on_message() on its
 * own thread, or frees it if the connection has gone.
 */
void loop_post(struct loop *loop, struct loop_message *m);

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

/* Frees the loop, and any message posted to it too late to be delivered. */
void loop_destroy(struct loop *loop);

#endif
