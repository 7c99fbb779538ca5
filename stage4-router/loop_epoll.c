/*
 * loop_epoll.c - the epoll backend: readiness. The kernel says which sockets are ready,
 * and this file makes the calls that do the work.
 *
 * The loop asks epoll_wait() which of its descriptors are ready, handles each ready one
 * without blocking, and asks again. Every socket is non-blocking: a call that would block
 * fails with EAGAIN instead, and the loop moves on to the next client. What to do with
 * the bytes, and when, is conn.c's business; this file only moves them.
 *
 * Level-triggered, not edge-triggered. epoll keeps reporting a socket for as long as it
 * is readable, so the backend reads once per wakeup and trusts epoll to come back: one
 * busy client cannot starve the others, and no read() is spent learning that a socket is
 * empty. (Edge-triggered mode reports a socket only when new data arrives, so the loop
 * would have to read until EAGAIN every time.) The cost is an epoll_ctl() whenever the
 * interest changes (backpressure, waiting to write), which is the rare case.
 *
 * Each event carries its connection's slot and generation (event_data()), so an event for
 * a connection that was closed earlier in the same batch is recognised even when a new
 * connection has already taken its slot.
 *
 * Memory: the backend reads into one buffer that all the loop's connections share;
 * conn.c copies only what its protocol leaves unconsumed. A large request body, whose
 * length the protocol has said (conn_expect_input()), is read straight into the room its
 * connection keeps for it instead.
 *
 * Sending: bytes are written at once, as far as the socket buffer takes them, and EPOLLOUT
 * is watched only while some are left. A file goes after them with sendfile(), straight
 * from the page cache to the socket (file_send.c). The bytes before a file (the response's
 * head) are sent with MSG_MORE, as if the socket were corked: the kernel holds them back
 * for the file's first bytes, so that the head does not travel, and wake the client,
 * alone. (nginx does the same with tcp_nopush, lighttpd with TCP_CORK.)
 */
#include "backend.h"
#include "file_send.h"
#include "listener.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    READ_SIZE = 64 * 1024, /* the most one read() takes from one client */
    MAX_EVENTS = 256, /* events taken from the kernel per epoll_wait() */
};

/*
 * What an epoll event's data names: one of the two special descriptors, or a connection
 * as (generation << 32 | slot), see event_data().
 */
#define EVENT_LISTENER UINT64_MAX
#define EVENT_WAKE     (UINT64_MAX - 1)

struct epoll_loop {
    int epoll_fd;
    char read_buffer[READ_SIZE];
};

static struct epoll_loop *io_of(const struct loop *loop)
{
    return loop->io;
}

static uint64_t event_data(const struct conn *c)
{
    return (uint64_t)c->generation << 32 | c->slot;
}

static bool watch(struct loop *loop, int op, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};
    if (epoll_ctl(io_of(loop)->epoll_fd, op, fd, &ev) < 0) {
        int err = errno;
        log_error("epoll_ctl: %s", strerror(err));
        errno = err; /* for a caller that says more */
        return false;
    }
    return true;
}

/* --- Connections ----------------------------------------------------------------------- */

static bool epoll_open(struct conn *c)
{
    c->epoll_events = EPOLLIN;
    return watch(c->loop, EPOLL_CTL_ADD, c->fd, EPOLLIN, event_data(c));
}

/*
 * Writes queued output until it is all sent or the socket's send buffer is full. Returns
 * false if the client is gone (EPIPE, ECONNRESET).
 */
static bool epoll_send(struct conn *c)
{
    struct buffer *b;
    while ((b = conn_outgoing(c)) != NULL) {
        int more = c->file_fd >= 0 ? MSG_MORE : 0; /* a file follows: wait for it */
        ssize_t n = send(c->fd, buffer_data(b), buffer_length(b), more);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return true; /* full: EPOLLOUT will say when there is room again */
            conn_failed(c, errno, "write");
            return false;
        }
        conn_sent(c, (size_t)n);
    }
    /* The bytes are out; now the file, from the page cache to the socket without a copy. */
    return file_send_now(c);
}

/* Tells epoll what this connection waits for now, if that changed. */
static bool epoll_update(struct conn *c)
{
    uint32_t want = 0;
    if (conn_wants_input(c))
        want |= EPOLLIN;
    if (conn_has_output(c))
        want |= EPOLLOUT;
    if (want == c->epoll_events)
        return true;
    if (!watch(c->loop, EPOLL_CTL_MOD, c->fd, want, event_data(c)))
        return false;
    c->epoll_events = want;
    return true;
}

/* close() also takes the socket out of epoll; nothing of ours is left in the kernel. */
static void epoll_close(struct conn *c)
{
    close(c->fd);
    conn_closed(c);
}

/*
 * Reads once into the loop's shared buffer; or, for a large request still arriving, into
 * the room its connection keeps for it (conn_input_room()), which saves copying it there.
 */
static void receive(struct conn *c)
{
    size_t room = READ_SIZE;
    char *in_place = conn_input_room(c, &room);
    char *buffer = in_place != NULL ? in_place : io_of(c->loop)->read_buffer;
    ssize_t n = read(c->fd, buffer, room);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return; /* level-triggered: epoll reports the socket again if it is readable */
        conn_failed(c, errno, "read");
        return;
    }
    if (n == 0)
        conn_peer_closed(c);
    else if (in_place != NULL)
        conn_received_in_place(c, (size_t)n);
    else
        conn_received(c, buffer, (size_t)n);
    conn_settle(c);
}

static void handle_conn_event(struct conn *c, uint32_t events)
{
    if (events & EPOLLERR) {
        /* A pending socket error, typically a reset: nothing more can be sent or read. */
        conn_failed(c, ECONNRESET, "socket");
        return;
    }
    /* EPOLLHUP without EPOLLIN: both directions are shut; read() will say how. */
    if ((events & (EPOLLIN | EPOLLHUP)) && !c->peer_closed) {
        receive(c); /* which settles, and so also writes */
        return;
    }
    if (events & (EPOLLOUT | EPOLLHUP))
        conn_settle(c);
}

/* --- Accepting ------------------------------------------------------------------------- */

/* Accepts every client waiting in the queue: one wakeup may stand for many connections. */
static void accept_clients(struct loop *loop)
{
    while (loop->accepting) {
        int fd = accept4(loop->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            loop_accepted_fd(loop, fd);
            continue;
        }
        if (errno == EAGAIN || !loop_accept_failed(loop, errno))
            break; /* EAGAIN: the queue is empty */
    }
}

/*
 * Not accepting (at --max-conns, or out of descriptors): the listening socket leaves
 * epoll's interest (events 0). Level-triggered, it would otherwise be reported at every
 * epoll_wait() while clients wait, and the loop would spin. If epoll cannot be told,
 * accepting past the limit is the lesser evil than spinning.
 */
static void epoll_update_accepting(struct loop *loop)
{
    if (loop->listen_fd >= 0)
        watch(loop, EPOLL_CTL_MOD, loop->listen_fd, loop->accepting ? EPOLLIN : 0, EVENT_LISTENER);
}

/* close() takes the socket out of epoll, and new clients are refused by the kernel. */
static void epoll_stop_accepting(struct loop *loop)
{
    if (loop->listen_fd >= 0)
        close(loop->listen_fd);
    loop->listen_fd = -1;
}

/* --- Waiting --------------------------------------------------------------------------- */

static void dispatch(struct loop *loop, const struct epoll_event *ev)
{
    if (ev->data.u64 == EVENT_LISTENER) {
        if (loop->listen_fd >= 0)
            accept_clients(loop);
        return;
    }
    if (ev->data.u64 == EVENT_WAKE) {
        loop_woken(loop);
        return;
    }
    struct conn *c = loop_find_conn(loop, (uint32_t)ev->data.u64, (uint32_t)(ev->data.u64 >> 32));
    if (c == NULL || c->state != CONN_OPEN)
        return; /* closed earlier in this batch; the slot may be someone else's now */
    handle_conn_event(c, ev->events);
}

static void epoll_wait_and_handle(struct loop *loop, int timeout_ms)
{
    struct epoll_event events[MAX_EVENTS];
    int n = epoll_wait(io_of(loop)->epoll_fd, events, MAX_EVENTS, timeout_ms);
    if (n < 0) {
        if (errno == EINTR)
            return;
        die("epoll_wait: %s", strerror(errno));
    }
    loop_begin_batch(loop);
    for (int i = 0; i < n; i++)
        dispatch(loop, &events[i]);
}

/* --- Set-up ---------------------------------------------------------------------------- */

static bool epoll_create_loop(struct loop *loop, char *err, size_t errlen)
{
    struct epoll_loop *io = malloc(sizeof *io);
    if (io == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    loop->io = io;
    listener_no_delay(loop->listen_fd); /* for every connection accepted from it */
    io->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (io->epoll_fd < 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        return false;
    }
    if (!watch(loop, EPOLL_CTL_ADD, loop->listen_fd, EPOLLIN, EVENT_LISTENER) ||
        !watch(loop, EPOLL_CTL_ADD, loop->wake_fd, EPOLLIN, EVENT_WAKE)) {
        snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
        return false;
    }
    return true;
}

/* Everything is watched from the start (epoll_create_loop()). */
static void epoll_start(struct loop *loop)
{
    (void)loop;
}

static void epoll_finish(struct loop *loop)
{
    epoll_stop_accepting(loop);
}

static void epoll_destroy(struct loop *loop)
{
    struct epoll_loop *io = io_of(loop);
    if (io->epoll_fd >= 0)
        close(io->epoll_fd);
    free(io);
    loop->io = NULL;
}

const struct backend epoll_backend = {
    .name = "epoll",
    .create = epoll_create_loop,
    .start = epoll_start,
    .wait = epoll_wait_and_handle,
    .update_accepting = epoll_update_accepting,
    .stop_accepting = epoll_stop_accepting,
    .open = epoll_open,
    .send = epoll_send,
    .update = epoll_update,
    .close = epoll_close,
    .finish = epoll_finish,
    .destroy = epoll_destroy,
};
