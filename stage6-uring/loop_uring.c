/*
 * loop_uring.c - the io_uring backend: completion. The loop hands the kernel the work,
 * and hears later that it is done.
 *
 * epoll tells a loop which sockets are ready, and the loop then makes the system calls
 * that do the work: accept, read, write. io_uring takes the work itself. The loop writes
 * requests ("receive on this socket", "send these bytes") into a submission queue in
 * memory it shares with the kernel, and finds their results in a completion queue there.
 * One io_uring_enter() hands the kernel every request queued since the last one and waits
 * for completions, so a whole round of clients costs one system call:
 *
 *     for (;;) {
 *         io_uring_enter()            submit what was queued, wait for completions
 *         for each completion:        handle_*(), which may queue new requests
 *         io_uring_cq_advance()       mark the whole batch seen: one store
 *     }
 *
 * The rules of a connection (what is buffered, when input is wanted, when it closes or
 * times out) are conn.c's, the same as with epoll; this file holds only the mechanics.
 * What it shows:
 * - One ring per thread, set up with SINGLE_ISSUER and DEFER_TASKRUN (create_ring()):
 *   the kernel finishes our operations only when we wait for them, in our own thread.
 * - user_data names each operation's type, connection slot and generation (op_data()),
 *   and each type has its handle_*() function. A completion for a connection that has
 *   been closed is recognised, and its receive buffer is still returned to the kernel.
 * - Multishot accept (arm_accept()) and multishot receive (arm_receive()): armed once,
 *   they complete again and again, until a completion without IORING_CQE_F_MORE says
 *   the operation has ended and must be armed again if still wanted.
 * - The rest of a large request body received straight into the room its connection
 *   keeps for it (arm_receive_in_place()), a piece per completion, not a buffer's worth.
 * - A provided buffer ring (setup_receive_buffers()): the kernel picks a receive buffer
 *   only when data arrives, so an idle connection holds none. The protocol parses in
 *   that buffer, which goes back to the ring as soon as conn_received() returns.
 * - One send in flight per connection, short sends finished by the loop (uring_send(),
 *   handle_send()), so responses leave whole and in order.
 * - Small files read into the send buffer behind the response's head, large ones sent
 *   with sendfile() from the loop, and a poll for room when the socket is full
 *   (uring_send()).
 * - Cancellation before close (uring_close()), other threads waking the loop through a
 *   multishot poll on the eventfd (arm_wake()).
 * - Completions handled in batches (handle_completions()), and a wait that does not
 *   wake up for completions that need nothing from us (uring_wait()).
 *
 * Memory: each loop owns one buffer ring of RECEIVE_BUFFER_COUNT buffers, shared by all
 * its connections. A receive completion names the buffer the kernel filled; the loop
 * hands those bytes straight to conn.c and returns the buffer to the ring right after.
 * Only bytes the protocol could not use yet (half a request) are copied, by conn.c, into
 * a buffer of the connection's own. Sends come from conn.c's `outgoing` buffer, which
 * nothing touches while the kernel reads it.
 *
 * Pausing and backpressure are conn.c's (conn_wants_input()): the receive stays armed
 * while input is wanted, and is cancelled when it is not, so TCP's flow control holds
 * the client back. Cancelling at every pause would cost two more operations for every
 * static file and every slow request, which is why conn.c holds input while paused.
 *
 * Closing: the kernel keeps a socket alive while an operation on it is pending, even
 * after close(): a multishot receive would go on receiving for a descriptor number that
 * may already be someone else's, and a pending send would still read our buffer. So a
 * connection conn.c is done with is first drained: its pending operations are cancelled,
 * and only when the last of them has completed are the descriptor closed and the slot
 * and buffers reused (conn_closed()).
 *
 * Registered descriptors: the ring's own is registered (uring_start()), as every
 * io_uring_enter() would look it up. The sockets are not: the listening one is looked up
 * once per multishot accept, a connection once per receive armed and once per send, and
 * direct (registered-only) descriptors would leave no ordinary descriptor for
 * getpeername(), which conn_peer_name() needs; a multishot accept cannot hand us each
 * client's address either, since all its accepts share one address buffer.
 *
 * Time: conn.c says how long a wait may last (its once-a-second deadline sweep), and the
 * wait gives up after that long: one io_uring_enter() with a timeout, no timeout operation.
 */
#include "backend.h"
#include "file_send.h"
#include "listener.h"
#include "log.h"
#include "loop_uring.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

enum {
    SQ_ENTRIES = 1024, /* requests queued between two submissions */
    CQ_ENTRIES = 8192, /* completions waiting to be handled */
    RECEIVE_BUFFER_SIZE = 4096, /* one provided buffer: a few requests' worth */
    RECEIVE_BUFFER_COUNT = 1024, /* buffers in each loop's ring (a power of 2) */
    RECEIVE_BUFFER_GROUP = 0, /* the ring's id; each io_uring has only this one */
    QUIET_SEND_MAX = 16 * 1024, /* a send at most this long may complete unwatched */
    QUIET_WAIT_USEC = 2000, /* how long a wait may sleep through them, see uring_wait() */
    SQPOLL_IDLE_MS = 100, /* --sqpoll: the kernel thread sleeps after this long idle */
    SILENCE_CHECK_MS = 1000, /* how often silent receives are looked for */
    SLOT_BITS = 24, /* connection slots a user_data can name: conn.c's MAX_SLOTS */
};

/*
 * What an operation is, in the top byte of its user_data. The first three belong to the
 * loop; the others name a connection.
 */
enum op_type {
    OP_ACCEPT = 1, /* the accept on the listening socket (multishot, or single) */
    OP_WAKE, /* the multishot poll on the eventfd other threads write to */
    OP_STOP, /* a cancellation of the loop's own operations */
    OP_RECEIVE, /* the connection's multishot receive */
    OP_RECEIVE_IN_PLACE, /* a receive into the room kept for a large request */
    OP_SEND, /* a send of the connection's outgoing buffer */
    OP_READ_FILE, /* a read of a small file, into the outgoing buffer */
    OP_POLL_OUT, /* a poll for room in the socket, to send the rest of a large file */
    OP_CANCEL, /* a cancellation of the connection's operations */
};

/*
 * The backend's state for one connection: the operations the kernel holds for it. It is
 * kept in a table of the backend's own, parallel to conn.c's slots (calloc'd, so slots
 * never used cost no memory), and so struct conn, shared with the epoll backend, does not
 * change with io_uring.
 */
struct uring_conn {
    struct conn *conn; /* the connection in this slot, set by uring_open() */
    unsigned ops_in_flight; /* operations submitted whose last completion has not come */
    bool receiving; /* a multishot receive is armed (until its last completion) */
    bool receive_cancelled; /* ... and asked to stop */
    bool receiving_in_place; /* a receive into the connection's input buffer is pending */
    bool sending; /* a send of outgoing is in flight */
    bool reading_file; /* a read of the file into outgoing is in flight */
    bool waiting_for_room; /* a poll for room to send the rest of a large file is pending */
    uint64_t last_received; /* when the receive last completed (loop clock, ms) */
};

struct uring_loop {
    struct io_uring ring;
    bool ring_created;
    bool sqpoll;
    bool accept_armed; /* an accept is pending (until its last completion) */
    bool accept_cancelled; /* ... and asked to stop */
    bool wake_armed; /* the poll on wake_fd is pending */
    bool finishing; /* uring_finish() is cancelling the loop's own operations */
    struct io_uring_buf_ring *receive_ring; /* buffer descriptors, shared with the kernel */
    char *receive_buffers; /* RECEIVE_BUFFER_COUNT buffers of RECEIVE_BUFFER_SIZE bytes */
    unsigned ops_in_flight; /* every operation submitted whose last completion has not come */
    unsigned quiet_sends; /* sends queued since the last submission that need no wakeup */
    uint64_t next_silence_check; /* see check_silent_receives() */
    struct uring_conn *conns; /* indexed by slot, like conn.c's */
};

static bool use_sqpoll;
static int first_sqpoll_ring_fd = -1; /* later rings share its polling thread */

void loop_use_sqpoll(bool on)
{
    use_sqpoll = on;
}

static struct uring_loop *io_of(const struct loop *loop)
{
    return loop->io;
}

static struct uring_conn *uring_of(const struct conn *c)
{
    return &io_of(c->loop)->conns[c->slot];
}

/* --- Operations: user_data, submission ------------------------------------------------ */

/*
 * user_data, the 64 bits the kernel hands back with each completion: the operation type
 * in the top byte, then the connection's slot (24 bits), then its generation (32 bits).
 * The loop's own operations carry slot and generation 0.
 */
static uint64_t op_data(enum op_type type, const struct conn *c)
{
    uint64_t slot = c != NULL ? c->slot : 0;
    uint64_t generation = c != NULL ? c->generation : 0;
    return (uint64_t)type << 56 | slot << 32 | generation;
}

static enum op_type op_type_of(uint64_t data)
{
    return (enum op_type)(data >> 56);
}

static uint32_t op_slot(uint64_t data)
{
    return (uint32_t)(data >> 32) & ((1u << SLOT_BITS) - 1);
}

static uint32_t op_generation(uint64_t data)
{
    return (uint32_t)data;
}

/*
 * A free submission queue entry. The queue fills only if one batch of completions asks
 * for more than SQ_ENTRIES operations; then what it holds goes to the kernel now.
 */
static struct io_uring_sqe *get_sqe(struct loop *loop)
{
    struct uring_loop *io = io_of(loop);
    struct io_uring_sqe *sqe;
    while ((sqe = io_uring_get_sqe(&io->ring)) == NULL) {
        int ret = io_uring_submit(&io->ring);
        if (ret < 0 && ret != -EBUSY && ret != -EINTR)
            die("loop %d: io_uring_submit: %s", loop->index, strerror(-ret));
        if (io->sqpoll)
            io_uring_sqring_wait(&io->ring); /* the kernel thread takes them in its time */
        io->quiet_sends = 0; /* they are submitted: their completions are on their way */
    }
    io->ops_in_flight++;
    return sqe;
}

/* Names the operation just prepared in sqe: what it is, and for which connection. */
static void tag_op(struct io_uring_sqe *sqe, enum op_type type, struct conn *c)
{
    io_uring_sqe_set_data64(sqe, op_data(type, c));
    if (c != NULL)
        uring_of(c)->ops_in_flight++;
}

/* --- Receive buffers ------------------------------------------------------------------- */

static char *receive_buffer(struct loop *loop, unsigned id)
{
    return io_of(loop)->receive_buffers + (size_t)id * RECEIVE_BUFFER_SIZE;
}

/*
 * Puts buffer id back in the ring, where the kernel may pick it for the next receive. One
 * at a time, at once: with DEFER_TASKRUN the kernel only picks buffers while we wait in
 * io_uring_enter(), so gathering the updates into one per batch would save only a store.
 */
static void recycle_buffer(struct loop *loop, unsigned id)
{
    struct io_uring_buf_ring *ring = io_of(loop)->receive_ring;
    io_uring_buf_ring_add(ring, receive_buffer(loop, id), RECEIVE_BUFFER_SIZE, (unsigned short)id,
                          io_uring_buf_ring_mask(RECEIVE_BUFFER_COUNT), 0);
    io_uring_buf_ring_advance(ring, 1);
}

/* --- Connections ----------------------------------------------------------------------- */

/* TCP_NODELAY is already set: accepted sockets inherit it from the listening one. */
static bool uring_open(struct conn *c)
{
    *uring_of(c) = (struct uring_conn){.conn = c};
    return true; /* uring_update() arms the receive once conn.c has settled the connection */
}

/*
 * A multishot receive: it completes once for each run of bytes that arrives, each time
 * in a buffer the kernel takes from the ring, until it is cancelled, fails, or the
 * client closes.
 */
static void arm_receive(struct conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(c->loop);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RECEIVE_BUFFER_GROUP;
    tag_op(sqe, OP_RECEIVE, c);
    uring_of(c)->receiving = true;
}

/* Asks the kernel to end the receive; its last completion says when it has. */
static void cancel_receive(struct conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(c->loop);
    io_uring_prep_cancel64(sqe, op_data(OP_RECEIVE, c), 0);
    tag_op(sqe, OP_CANCEL, c);
    uring_of(c)->receive_cancelled = true;
}

/*
 * A large request's body, once its head has come: one receive at a time straight into the
 * room conn.c keeps for it (conn_input_room()), instead of the multishot receive. That one
 * would deliver the body RECEIVE_BUFFER_SIZE bytes per completion, each copied by conn.c:
 * 256 completions and a copy of each for a 1 MiB body, where this takes as much of it as
 * has arrived, in one completion, and copies nothing. conn.c frees its input buffer only
 * once the socket is closed (conn_closed()), so the kernel never writes into freed memory.
 */
static void arm_receive_in_place(struct conn *c, char *room, size_t len)
{
    struct io_uring_sqe *sqe = get_sqe(c->loop);
    io_uring_prep_recv(sqe, c->fd, room, len, 0);
    tag_op(sqe, OP_RECEIVE_IN_PLACE, c);
    uring_of(c)->receiving_in_place = true;
}

/*
 * Arms or cancels the receive as conn.c asks: the multishot one, or one into the room
 * kept for a large request, once the multishot one has ended. A new receive is armed only
 * once the last one has ended, so two never race to deliver bytes.
 */
static bool uring_update(struct conn *c)
{
    struct uring_conn *u = uring_of(c);
    if (u->receiving_in_place)
        return true; /* its completion settles the connection again */
    bool want = conn_wants_input(c);
    size_t room = 0;
    char *in_place = want ? conn_input_room(c, &room) : NULL;
    if (in_place != NULL && !u->receiving)
        arm_receive_in_place(c, in_place, room);
    else if (want && !u->receiving && in_place == NULL)
        arm_receive(c);
    else if ((!want || in_place != NULL) && u->receiving && !u->receive_cancelled)
        cancel_receive(c); /* conn_settle() arms what is wanted once it has ended */
    return true;
}

/* The kernel is done with the connection: close the socket; conn.c frees the rest. */
static void free_conn(struct conn *c)
{
    close(c->fd);
    conn_closed(c);
}

/*
 * Operations still pending on the socket are cancelled, and the socket is closed when the
 * last of them has completed (see the top of this file).
 */
static void uring_close(struct conn *c)
{
    if (uring_of(c)->ops_in_flight == 0) {
        free_conn(c);
        return;
    }
    /* Every operation on the socket: a receive, a send, a poll. A file read ends by itself. */
    struct io_uring_sqe *sqe = get_sqe(c->loop);
    io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
    tag_op(sqe, OP_CANCEL, c);
}

/* --- Sending --------------------------------------------------------------------------- */

/*
 * Whether the loop may sleep through this send's completion (see uring_wait()). A small
 * send with nothing queued behind it, on a connection that is not closing and not held
 * back, asks nothing of the loop when it goes out whole. A send finishing a short one
 * (outgoing->start > 0) is not counted: the socket was full a moment ago.
 */
static bool send_is_quiet(const struct conn *c)
{
    const struct buffer *b = c->outgoing;
    return b->start == 0 && buffer_length(b) <= QUIET_SEND_MAX && c->out == NULL &&
           c->file_fd < 0 && !c->closing && conn_wants_input(c);
}

/* more: a large file follows: hold these bytes back for its first ones (MSG_MORE, as the
 * epoll backend does before sendfile()), so that the head does not leave alone. */
static void send_output(struct conn *c, struct buffer *b, bool more)
{
    struct io_uring_sqe *sqe = get_sqe(c->loop);
    io_uring_prep_send(sqe, c->fd, buffer_data(b), buffer_length(b),
                       MSG_NOSIGNAL | (more ? MSG_MORE : 0));
    tag_op(sqe, OP_SEND, c);
    uring_of(c)->sending = true;
    if (send_is_quiet(c))
        io_of(c->loop)->quiet_sends++;
}

/*
 * Files. A small one is read into the free end of the outgoing buffer, behind the bytes
 * queued before it (the response's head): it then leaves with them in one send. A read
 * from the page cache completes at once, during the submission.
 *
 * A large one would cost two copies that way, into our buffer and out of it, where
 * sendfile() costs none: at 1 MiB, 4.5 times its CPU time per request. io_uring has no
 * sendfile operation. Its splice operation, through a pipe, moves page references too,
 * but the kernel runs splices on its worker threads (io-wq), not inline, and each file
 * then costs a pipe: measured at 1 MiB, 180 us of CPU per request spliced against 149
 * with sendfile() (stage6-uring/README.md). So the loop calls sendfile() itself, as the
 * epoll backend does (file_send_now()): the socket is non-blocking (arm_accept()), so
 * the call never waits; when the socket is full, a poll operation says when there is
 * room again. The call copies nothing and returns as soon as the socket's buffer is
 * full, so the loop is held no longer than by a send.
 */
static bool file_fits_in_buffer(const struct conn *c)
{
    const struct buffer *b = c->outgoing;
    size_t room = b != NULL ? b->capacity - b->end : BUFFER_SIZE;
    return c->file_left <= room;
}

static bool read_file(struct conn *c)
{
    /* The buffer is the connection's (conn.c frees it), taken here for the file alone. */
    if (c->outgoing == NULL)
        c->outgoing = buffer_take(&c->loop->pool);
    if (c->outgoing == NULL) {
        log_error("out of memory for a file: closing the connection");
        return false;
    }
    struct buffer *b = c->outgoing;
    struct io_uring_sqe *sqe = get_sqe(c->loop);
    io_uring_prep_read(sqe, c->file_fd, b->bytes + b->end, (unsigned)c->file_left,
                       (uint64_t)c->file_offset);
    tag_op(sqe, OP_READ_FILE, c);
    uring_of(c)->reading_file = true;
    return true;
}

/* Waits for room in the socket: the rest of the file goes when the poll completes. */
static void wait_for_room(struct conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(c->loop);
    io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
    tag_op(sqe, OP_POLL_OUT, c);
    uring_of(c)->waiting_for_room = true;
}

/* A large file: as much as the socket takes now, then a poll for room if some is left. */
static bool send_file(struct conn *c)
{
    if (!file_send_now(c))
        return false;
    if (c->file_fd >= 0)
        wait_for_room(c);
    return true;
}

/*
 * Starts the next step of the connection's output, unless one is in flight: the queued
 * bytes, with a small file behind them; else a large file, as far as the socket takes it
 * now. False if it could not be started, or the client is gone.
 */
static bool uring_send(struct conn *c)
{
    if (uring_of(c)->sending || uring_of(c)->reading_file || uring_of(c)->waiting_for_room)
        return true;
    struct buffer *b = conn_outgoing(c);
    /* The file follows every byte queued before it: those must all be in outgoing. */
    if (c->file_fd >= 0 && c->out == NULL) {
        if (file_fits_in_buffer(c))
            return read_file(c);
        if (b == NULL)
            return send_file(c);
    }
    if (b != NULL)
        send_output(c, b, c->file_fd >= 0 && c->out == NULL);
    return true;
}

/* --- Completions for a connection ------------------------------------------------------ */

static void handle_receive(struct conn *c, const struct io_uring_cqe *cqe)
{
    uring_of(c)->last_received = c->loop->now;
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        uring_of(c)->receiving = false; /* ended: conn_settle() re-arms it if input is wanted */
        uring_of(c)->receive_cancelled = false;
    }
    if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
        unsigned id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        conn_received(c, receive_buffer(c->loop, id), (size_t)cqe->res);
        recycle_buffer(c->loop, id); /* always: even for a connection that has closed */
    } else if (cqe->res == 0) {
        conn_peer_closed(c);
    } else if (cqe->res != -ENOBUFS && cqe->res != -ECANCELED) {
        /* -ENOBUFS: the ring was empty; conn_settle() re-arms, and the buffers handled in
         * this batch are back in the ring before the new receive is submitted.
         * -ECANCELED: we asked for it. Anything else ends the connection. */
        conn_failed(c, -cqe->res, "receive");
    }
    conn_settle(c);
}

static void handle_receive_in_place(struct conn *c, const struct io_uring_cqe *cqe)
{
    uring_of(c)->receiving_in_place = false;
    uring_of(c)->last_received = c->loop->now;
    if (cqe->res > 0)
        conn_received_in_place(c, (size_t)cqe->res);
    else if (cqe->res == 0)
        conn_peer_closed(c);
    else if (cqe->res != -ECANCELED)
        conn_failed(c, -cqe->res, "receive");
    conn_settle(c);
}

static void handle_send(struct conn *c, const struct io_uring_cqe *cqe)
{
    uring_of(c)->sending = false;
    if (c->state != CONN_OPEN)
        return;
    if (cqe->res <= 0) {
        /* EPIPE, ECONNRESET: the client is gone. (0 bytes for a non-empty send: never.) */
        conn_failed(c, -cqe->res, "send");
        return;
    }
    /* A short send leaves the rest in outgoing: uring_send() sends it next, before
     * anything queued meanwhile. */
    conn_sent(c, (size_t)cqe->res);
    conn_settle(c);
}

static void handle_file_read(struct conn *c, const struct io_uring_cqe *cqe)
{
    uring_of(c)->reading_file = false;
    if (c->state != CONN_OPEN)
        return;
    if (cqe->res <= 0) {
        /* 0: the file shrank under us, and the promised Content-Length cannot be met. */
        conn_failed(c, -cqe->res, "reading a file");
        return;
    }
    c->outgoing->end += (size_t)cqe->res; /* the bytes the kernel wrote behind the others */
    conn_file_sent(c, (size_t)cqe->res); /* (a short read leaves the rest for the next one) */
    conn_settle(c);
}

static void handle_poll_out(struct conn *c, const struct io_uring_cqe *cqe)
{
    uring_of(c)->waiting_for_room = false;
    if (c->state != CONN_OPEN)
        return;
    /* An error or a hang-up shows in the result's events: sendfile() then says which. */
    if (cqe->res < 0) {
        conn_failed(c, -cqe->res, "polling a socket");
        return;
    }
    conn_settle(c); /* sends the file's next piece */
}

/* --- Accepting ------------------------------------------------------------------------- */

/*
 * One multishot accept serves every client that connects, until it fails or is
 * cancelled. New sockets are non-blocking: io_uring's own operations ignore the flag
 * (they never block the loop anyway), but sendfile(), called from the loop for a large
 * file (send_file()), must not wait for room in a full socket.
 *
 * Under --max-conns, one accept at a time instead, re-armed by handle_accept() while
 * there is room: a multishot accept would go on accepting past the limit until a
 * cancellation reached it. One more submission per client is the price of an exact limit.
 */
static void arm_accept(struct loop *loop)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (loop->max_conns > 0)
        io_uring_prep_accept(sqe, loop->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    else
        io_uring_prep_multishot_accept(sqe, loop->listen_fd, NULL, NULL,
                                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    tag_op(sqe, OP_ACCEPT, NULL);
    io_of(loop)->accept_armed = true;
    io_of(loop)->accept_cancelled = false;
}

static void cancel_accept(struct loop *loop)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    io_uring_prep_cancel64(sqe, op_data(OP_ACCEPT, NULL), 0);
    tag_op(sqe, OP_STOP, NULL); /* handle_accept() hears when the accept has ended */
    io_of(loop)->accept_cancelled = true;
}

/* Arms the accept, or cancels it, as loop->accepting says. */
static void uring_update_accepting(struct loop *loop)
{
    struct uring_loop *io = io_of(loop);
    if (loop->listen_fd < 0 || io->finishing)
        return;
    if (loop->accepting && !io->accept_armed)
        arm_accept(loop);
    else if (!loop->accepting && io->accept_armed && !io->accept_cancelled)
        cancel_accept(loop);
}

/* New clients are refused by the kernel once the listening socket is closed; but the
 * kernel keeps it listening while an accept is pending, so that goes first. */
static void uring_stop_accepting(struct loop *loop)
{
    if (io_of(loop)->accept_armed) {
        if (!io_of(loop)->accept_cancelled)
            cancel_accept(loop); /* handle_accept() closes the socket when it ends */
        return;
    }
    if (loop->listen_fd >= 0)
        close(loop->listen_fd);
    loop->listen_fd = -1;
}

static void handle_accept(struct loop *loop, const struct io_uring_cqe *cqe)
{
    struct uring_loop *io = io_of(loop);
    bool ended = !(cqe->flags & IORING_CQE_F_MORE);
    if (ended)
        io->accept_armed = false;
    if (cqe->res >= 0)
        loop_accepted_fd(loop, cqe->res); /* which closes it if the loop is stopping */
    else if (cqe->res != -ECANCELED)
        loop_accept_failed(loop, -cqe->res); /* may pause accepting, cancelling the accept */
    if (!ended)
        return;
    if (loop->stopping) {
        /* Only now: the kernel kept the socket listening while the accept was pending. */
        if (loop->listen_fd >= 0)
            close(loop->listen_fd);
        loop->listen_fd = -1;
    } else {
        uring_update_accepting(loop); /* a single accept, or one that failed: again if wanted */
    }
}

/* --- The loop -------------------------------------------------------------------------- */

/* A multishot poll completes each time another thread writes to the eventfd. */
static void arm_wake(struct loop *loop)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    io_uring_prep_poll_multishot(sqe, loop->wake_fd, POLLIN);
    tag_op(sqe, OP_WAKE, NULL);
    io_of(loop)->wake_armed = true;
}

static void handle_wake(struct loop *loop, const struct io_uring_cqe *cqe)
{
    struct uring_loop *io = io_of(loop);
    if (!(cqe->flags & IORING_CQE_F_MORE))
        io->wake_armed = false;
    if (cqe->res < 0 && cqe->res != -ECANCELED)
        log_error("loop %d: polling the eventfd: %s", loop->index, strerror(-cqe->res));
    if (io->finishing)
        return;
    if (cqe->res > 0)
        loop_woken(loop); /* which reads the eventfd */
    if (!io->wake_armed)
        arm_wake(loop);
}

/* A completion for a connection: find it, count the operation done, hand it over. */
static void handle_conn_completion(struct loop *loop, const struct io_uring_cqe *cqe)
{
    uint64_t data = cqe->user_data;
    struct conn *c = loop_find_conn(loop, op_slot(data), op_generation(data));
    if (c == NULL) {
        /*
         * Cannot happen: a slot is reused only after the last completion for its previous
         * connection. Were it to happen, the buffer must still go back to the ring.
         */
        log_error("loop %d: a completion for a connection that is gone", loop->index);
        if (op_type_of(data) == OP_RECEIVE && (cqe->flags & IORING_CQE_F_BUFFER))
            recycle_buffer(loop, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        return;
    }
    if (!(cqe->flags & IORING_CQE_F_MORE))
        uring_of(c)->ops_in_flight--;
    switch (op_type_of(data)) {
    case OP_RECEIVE:
        handle_receive(c, cqe);
        break;
    case OP_RECEIVE_IN_PLACE:
        handle_receive_in_place(c, cqe);
        break;
    case OP_SEND:
        handle_send(c, cqe);
        break;
    case OP_READ_FILE:
        handle_file_read(c, cqe);
        break;
    case OP_POLL_OUT:
        handle_poll_out(c, cqe);
        break;
    default: /* OP_CANCEL: its result is the cancelled operations' completions */
        break;
    }
    if (c->state == CONN_DRAINING && uring_of(c)->ops_in_flight == 0)
        free_conn(c);
}

static void handle_completion(struct loop *loop, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        io_of(loop)->ops_in_flight--;
    switch (op_type_of(cqe->user_data)) {
    case OP_ACCEPT:
        handle_accept(loop, cqe);
        break;
    case OP_WAKE:
        handle_wake(loop, cqe);
        break;
    case OP_STOP:
        break;
    default:
        handle_conn_completion(loop, cqe);
        break;
    }
}

/* Handles every completion waiting, then marks them all seen with one store. */
static void handle_completions(struct loop *loop)
{
    struct io_uring *ring = &io_of(loop)->ring;
    struct io_uring_cqe *cqe;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(ring, head, cqe)
    {
        handle_completion(loop, cqe);
        seen++;
    }
    io_uring_cq_advance(ring, seen);
}

/*
 * Submits what was queued and waits for completions, or timeout_ms (conn.c's next
 * deadline sweep; -1: none): one system call.
 *
 * A send usually completes during the submission itself. Waiting for one completion
 * would then return at once with it, though all it says is "sent", and a second system
 * call would wait for the next request: two per round instead of one. So the wait asks
 * for one completion more than the quiet sends just queued (send_is_quiet()). With
 * DEFER_TASKRUN the kernel does not even wake the thread before that many are there. If
 * a quiet send does not complete at once after all (a full socket), the wait gives up
 * after QUIET_WAIT_USEC instead of sleeping until some other event: the price of a
 * wrong guess is bounded.
 */
/*
 * A multishot receive that has just delivered a burst of buffers may never complete
 * with the client's reset, although the error is pending on the socket (measured in
 * stage6-uring/README.md): the connection would wait for the rest of its request until
 * the idle timeout. So, once a second, a connection holding part of a request, whose
 * receive is its only operation and has been silent for half a second or more, has that
 * receive cancelled; conn_settle() arms a new one, which reports the reset (or the bytes,
 * or the end) at once. An idle keep-alive connection holds nothing and is left alone.
 */
static void check_silent_receives(struct loop *loop)
{
    struct uring_loop *io = io_of(loop);
    for (size_t slot = 0; slot < loop->slots_ever; slot++) {
        struct uring_conn *u = &io->conns[slot];
        const struct conn *c = u->conn;
        if (c == NULL || c->state != CONN_OPEN || c->in == NULL || !u->receiving ||
            u->receive_cancelled || u->sending || u->reading_file || u->waiting_for_room ||
            loop->now - u->last_received < SILENCE_CHECK_MS / 2)
            continue;
        cancel_receive(u->conn);
    }
}

static void uring_wait(struct loop *loop, int timeout_ms)
{
    struct uring_loop *io = io_of(loop);
    unsigned quiet = io->quiet_sends;
    io->quiet_sends = 0;
    struct __kernel_timespec limit = {.tv_sec = timeout_ms / 1000,
                                      .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
    bool timed = timeout_ms >= 0;
    if (quiet > 0 && (!timed || limit.tv_sec > 0 || limit.tv_nsec > QUIET_WAIT_USEC * 1000)) {
        limit = (struct __kernel_timespec){.tv_nsec = QUIET_WAIT_USEC * 1000};
        timed = true;
    }
    int ret;
    if (!timed) {
        ret = io_uring_submit_and_wait(&io->ring, 1);
    } else {
        struct io_uring_cqe *cqe;
        ret = io_uring_submit_and_wait_timeout(&io->ring, &cqe, quiet + 1, &limit, NULL);
    }
    /* ETIME: time is up; EINTR: a signal; EBUSY: completions overflowed, handle them. */
    if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN)
        die("loop %d: io_uring_enter: %s", loop->index, strerror(-ret));
    loop_begin_batch(loop);
    handle_completions(loop);
    if (loop->now >= io->next_silence_check) {
        check_silent_receives(loop);
        io->next_silence_check = loop->now + SILENCE_CHECK_MS;
    }
}

/*
 * The ring was created disabled on the main thread (uring_create()), so that set-up
 * errors stop the server before it announces itself. With SINGLE_ISSUER, the thread that
 * enables it becomes the only one allowed to submit: this one. liburing 2.3, Debian 12's,
 * declares io_uring_enable_rings() but its shared library does not export it, so the one
 * system call it would make is made here.
 */
static void uring_start(struct loop *loop)
{
    struct uring_loop *io = io_of(loop);
    if (syscall(__NR_io_uring_register, io->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) <
        0)
        die("loop %d: enabling the ring: %s", loop->index, strerror(errno));
    /* Every io_uring_enter() looks the ring's descriptor up; registered, it skips that. */
    int ret = io_uring_register_ring_fd(&io->ring);
    if (ret < 0)
        log_error("loop %d: io_uring_register_ring_fd: %s (continuing without)", loop->index,
                  strerror(-ret));
    uring_update_accepting(loop);
    arm_wake(loop);
}

/*
 * After the last connection: cancels the loop's own operations (the eventfd poll, an
 * accept) and waits for them to end, so that nothing in the kernel points into the loop
 * when it is freed.
 */
static void uring_finish(struct loop *loop)
{
    struct uring_loop *io = io_of(loop);
    io->finishing = true;
    struct io_uring_sqe *sqe = get_sqe(loop);
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    tag_op(sqe, OP_STOP, NULL);
    while (io->ops_in_flight > 0)
        uring_wait(loop, -1);
    if (loop->listen_fd >= 0)
        close(loop->listen_fd);
    loop->listen_fd = -1;
    io_uring_queue_exit(&io->ring);
    io->ring_created = false;
}

/* --- Set-up ---------------------------------------------------------------------------- */

/*
 * Why io_uring_setup() failed, in words. EPERM comes from the kernel.io_uring_disabled
 * sysctl, or from a seccomp filter: many container runtimes forbid io_uring.
 */
static void explain_setup_failure(int err, char *buf, size_t size)
{
    char cause[128];
    int disabled = 0;
    FILE *sysctl = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (sysctl != NULL) {
        // NOLINTNEXTLINE(cert-err34-c): the kernel writes 0, 1 or 2 there, nothing to overflow
        if (fscanf(sysctl, "%d", &disabled) != 1)
            disabled = 0;
        fclose(sysctl);
    }
    if (err == ENOSYS)
        snprintf(cause, sizeof cause, "this kernel has no io_uring (ENOSYS)");
    else if (err == EPERM && disabled != 0)
        snprintf(cause, sizeof cause, "the sysctl kernel.io_uring_disabled is %d (EPERM)",
                 disabled);
    else if (err == EPERM)
        snprintf(cause, sizeof cause, "not permitted (EPERM), likely by a seccomp filter");
    else if (err == EINVAL)
        snprintf(cause, sizeof cause, "this kernel is too old (EINVAL); stage 6 needs Linux 6.0");
    else
        snprintf(cause, sizeof cause, "io_uring_setup: %s", strerror(err));
    snprintf(buf, size, "io_uring is not available: %s", cause);
}

/*
 * A ring, created disabled (see uring_start()). Without SQPOLL: SINGLE_ISSUER (only one
 * thread submits, so the kernel can skip locking) and DEFER_TASKRUN (the kernel finishes
 * our operations' work only when we wait, in our thread, in one batch, instead of
 * interrupting us for each); on a kernel older than 6.1 that says EINVAL, COOP_TASKRUN,
 * which at least spares us the interruptions. With SQPOLL: a kernel thread takes the
 * submissions, shared by all the loops (ATTACH_WQ) so that there is one, not one per loop.
 */
static int create_ring(struct io_uring *ring, unsigned entries, unsigned cq_entries, bool sqpoll)
{
    struct io_uring_params params = {0};
    params.flags = IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
    params.cq_entries = cq_entries;
    if (sqpoll) {
        params.flags |= IORING_SETUP_SQPOLL | IORING_SETUP_SINGLE_ISSUER;
        params.sq_thread_idle = SQPOLL_IDLE_MS;
        if (first_sqpoll_ring_fd >= 0) {
            params.flags |= IORING_SETUP_ATTACH_WQ;
            params.wq_fd = (uint32_t)first_sqpoll_ring_fd;
        }
        int ret = io_uring_queue_init_params(entries, ring, &params);
        if (ret == 0 && first_sqpoll_ring_fd < 0)
            first_sqpoll_ring_fd = ring->ring_fd;
        return ret;
    }
    struct io_uring_params fallback = params;
    params.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int ret = io_uring_queue_init_params(entries, ring, &params);
    if (ret == -EINVAL) {
        fallback.flags |= IORING_SETUP_COOP_TASKRUN;
        ret = io_uring_queue_init_params(entries, ring, &fallback);
    }
    return ret;
}

bool uring_available(char *err, size_t errlen)
{
    struct io_uring ring;
    int ret = create_ring(&ring, 8, 16, false);
    if (ret == 0) {
        io_uring_queue_exit(&ring);
        return true;
    }
    if (ret != -ENOSYS && ret != -EPERM && ret != -EINVAL)
        return true; /* not a refusal (out of memory, say): loop_create() will report it */
    explain_setup_failure(-ret, err, errlen);
    return false;
}

/*
 * The provided buffer ring: an array of buffer descriptors in memory shared with the
 * kernel, registered as group RECEIVE_BUFFER_GROUP. (liburing 2.4 has
 * io_uring_setup_buf_ring() for this; 2.3 leaves the mapping to us.) The buffers are
 * mapped resident up front (MAP_POPULATE): a fixed cost paid at start, not page faults
 * during the first busy seconds.
 */
static bool setup_receive_buffers(struct loop *loop, char *err, size_t errlen)
{
    struct uring_loop *io = io_of(loop);
    size_t ring_bytes = RECEIVE_BUFFER_COUNT * sizeof(struct io_uring_buf);
    void *ring = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *buffers = mmap(NULL, (size_t)RECEIVE_BUFFER_COUNT * RECEIVE_BUFFER_SIZE,
                         PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (ring == MAP_FAILED || buffers == MAP_FAILED) {
        snprintf(err, errlen, "mmap: %s", strerror(errno));
        if (ring != MAP_FAILED)
            munmap(ring, ring_bytes);
        if (buffers != MAP_FAILED)
            munmap(buffers, (size_t)RECEIVE_BUFFER_COUNT * RECEIVE_BUFFER_SIZE);
        return false;
    }
    io->receive_ring = ring;
    io->receive_buffers = buffers;
    io_uring_buf_ring_init(io->receive_ring);
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)ring,
        .ring_entries = RECEIVE_BUFFER_COUNT,
        .bgid = RECEIVE_BUFFER_GROUP,
    };
    int ret = io_uring_register_buf_ring(&io->ring, &reg, 0);
    if (ret < 0) {
        snprintf(err, errlen, "io_uring_register_buf_ring: %s", strerror(-ret));
        return false;
    }
    int mask = io_uring_buf_ring_mask(RECEIVE_BUFFER_COUNT);
    for (unsigned id = 0; id < RECEIVE_BUFFER_COUNT; id++)
        io_uring_buf_ring_add(io->receive_ring, receive_buffer(loop, id), RECEIVE_BUFFER_SIZE,
                              (unsigned short)id, mask, (int)id);
    io_uring_buf_ring_advance(io->receive_ring, RECEIVE_BUFFER_COUNT);
    return true;
}

static bool uring_create(struct loop *loop, char *err, size_t errlen)
{
    struct uring_loop *io = calloc(1, sizeof *io);
    if (io == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    loop->io = io;
    io->sqpoll = use_sqpoll;
    /* A large calloc maps zero pages: the entries of slots never used cost no memory. */
    io->conns = calloc(loop->conn_slots, sizeof *io->conns);
    if (io->conns == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    int ret = create_ring(&io->ring, SQ_ENTRIES, CQ_ENTRIES, io->sqpoll);
    if (ret < 0) {
        explain_setup_failure(-ret, err, errlen);
        return false;
    }
    io->ring_created = true;
    if (!setup_receive_buffers(loop, err, errlen))
        return false;
    listener_no_delay(loop->listen_fd); /* for every connection accepted from it */
    return true;
}

static void uring_destroy(struct loop *loop)
{
    struct uring_loop *io = io_of(loop);
    if (io->ring_created)
        io_uring_queue_exit(&io->ring); /* loop_run() never ran */
    if (io->receive_ring != NULL)
        munmap(io->receive_ring, RECEIVE_BUFFER_COUNT * sizeof(struct io_uring_buf));
    if (io->receive_buffers != NULL)
        munmap(io->receive_buffers, (size_t)RECEIVE_BUFFER_COUNT * RECEIVE_BUFFER_SIZE);
    free(io->conns);
    free(io);
    loop->io = NULL;
}

const struct backend uring_backend = {
    .name = "io_uring",
    .create = uring_create,
    .start = uring_start,
    .wait = uring_wait,
    .update_accepting = uring_update_accepting,
    .stop_accepting = uring_stop_accepting,
    .open = uring_open,
    .send = uring_send,
    .update = uring_update,
    .close = uring_close,
    .finish = uring_finish,
    .destroy = uring_destroy,
};
