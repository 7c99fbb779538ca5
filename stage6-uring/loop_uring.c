/*
 * loop_uring.c - many clients on one thread: an io_uring event loop.
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
 * What this file shows:
 * - One ring per thread, set up with SINGLE_ISSUER and DEFER_TASKRUN (create_ring()):
 *   the kernel finishes our operations only when we wait for them, in our own thread.
 * - user_data names each operation's type, connection slot and generation (op_data()),
 *   and each type has its handle_*() function. A completion for a connection that has
 *   been closed is recognised, and its receive buffer is still returned to the kernel.
 * - Multishot accept (arm_accept()) and multishot receive (arm_receive()): armed once,
 *   they complete again and again, until a completion without IORING_CQE_F_MORE says
 *   the operation has ended and must be armed again if still wanted.
 * - A provided buffer ring (setup_receive_buffers()): the kernel picks a receive buffer
 *   only when data arrives, so an idle connection holds none. The protocol parses in
 *   that buffer, which goes back to the ring as soon as protocol_on_data() returns.
 * - One send in flight per connection, short sends finished by the loop (send_output(),
 *   handle_send()), so responses leave whole and in order.
 * - Small files read into the send buffer behind the response's head, large ones spliced
 *   through a pipe without a copy (start_output()).
 * - Cancellation before close (conn_release()), the once-a-second deadline check driven
 *   by an io_uring timeout (arm_tick()), other threads waking the loop through a read on
 *   an eventfd (arm_wake()).
 * - Completions handled in batches (handle_completions()), and a wait that does not
 *   wake up for completions that need nothing from us (wait_for_completions()).
 *
 * Memory: each loop owns one buffer ring of RECEIVE_BUFFER_COUNT buffers, shared by all
 * its connections. A receive completion names the buffer the kernel filled; the loop
 * hands those bytes straight to the protocol and returns the buffer to the ring right
 * after. Only bytes the protocol could not use yet (half a request) are copied into a
 * buffer of the connection's own (buffer.h), exactly as stage 5 kept them after a read.
 * Sends come from the connection's own buffers: `outgoing`, which the kernel may be
 * reading and which nothing touches meanwhile, and `out`, where conn_send() appends
 * behind it. Backpressure is stage 5's: with more than OUTPUT_HIGH_WATER bytes unsent,
 * the loop cancels the connection's receive until they drain.
 *
 * Pausing (conn_pause): the receive stays armed, and what arrives meanwhile is held in
 * the connection's input buffer; only beyond HELD_INPUT_MAX is the receive cancelled,
 * so TCP's flow control holds the client back. Cancelling at every pause would cost two
 * more operations for every static file and every slow request.
 *
 * Closing: the kernel keeps a socket alive while an operation on it is pending, even
 * after close(): a multishot receive would go on receiving for a descriptor number that
 * may already be someone else's, and a pending send would still read our buffer. So a
 * connection the protocol is done with is first drained: its pending operations are
 * cancelled, and only when the last of them has completed are the descriptor closed
 * and the slot and buffers reused. Before that, as in stage 5, a lingering close: our
 * side is shut down, and bytes are received and discarded until the client closes or
 * LINGER_MS passes (RFC 9112 section 9.6).
 *
 * Registered descriptors: the ring's own is registered (start_ring()), as every
 * io_uring_enter() would look it up. The sockets are not: the listening one is looked up
 * once per multishot accept, a connection once per receive armed and once per send, and
 * direct (registered-only) descriptors would leave no ordinary descriptor for
 * getpeername(), which conn_peer_name() needs; a multishot accept cannot hand us each
 * client's address either, since all its accepts share one address buffer.
 *
 * Time: each connection has at most one deadline, set by its protocol. A timeout
 * operation completes once a second while there are connections, and the loop then walks
 * the table as stage 5 did.
 *
 * Threads: as in stage 5, nothing is shared between loops. Workers and the main thread
 * reach a loop through its eventfd, which the loop keeps a read pending on.
 */
#include "loop.h"
#include "buffer.h"
#include "log.h"
#include "loop_uring.h"
#include "session.h"
#include "workers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum {
    SQ_ENTRIES = 1024, /* requests queued between two submissions */
    CQ_ENTRIES = 8192, /* completions waiting to be handled */
    RECEIVE_BUFFER_SIZE = 4096, /* one provided buffer: a few requests' worth */
    RECEIVE_BUFFER_COUNT = 1024, /* buffers in each loop's ring (a power of 2) */
    RECEIVE_BUFFER_GROUP = 0, /* the ring's id; each io_uring has only this one */
    OUTPUT_HIGH_WATER = 64 * 1024, /* stop receiving from a client with more than this unsent */
    HELD_INPUT_MAX = 64 * 1024, /* stop receiving from a paused client holding this much */
    QUIET_SEND_MAX = 16 * 1024, /* a send at most this long may complete unwatched */
    QUIET_WAIT_USEC = 2000, /* how long a wait may sleep through them, see below */
    SPLICE_PIPE_SIZE = 256 * 1024, /* a large file goes to the socket this much at a time */
    SWEEP_INTERVAL_MS = 1000, /* how often deadlines are checked */
    LINGER_MS = 2000, /* the longest a closing connection is read and discarded */
    SQPOLL_IDLE_MS = 100, /* --sqpoll: the kernel thread sleeps after this long idle */
    MAX_SLOTS = 1 << 24, /* connection slots a user_data can name */
};

/*
 * What an operation is, in the top byte of its user_data. The first five belong to the
 * loop; the others name a connection.
 */
enum op_type {
    OP_ACCEPT = 1, /* the multishot accept on the listening socket */
    OP_WAKE, /* a read on the eventfd other threads write to */
    OP_TICK, /* the timeout that drives the deadline sweep */
    OP_STOP, /* a cancellation of the loop's own operations */
    OP_DRAIN, /* the timeout that ends the drain period after a stop */
    OP_RECEIVE, /* the connection's multishot receive */
    OP_SEND, /* a send of the connection's outgoing buffer */
    OP_READ_FILE, /* a read of a small file, into the outgoing buffer */
    OP_SPLICE_IN, /* a splice of a large file's next piece into the connection's pipe */
    OP_SPLICE_OUT, /* a splice from that pipe to the socket */
    OP_CANCEL, /* a cancellation of the connection's operations */
};

/* A connection slot's life: free, open (the protocol's), then draining (the kernel's). */
enum conn_state {
    SLOT_FREE,
    CONN_OPEN, /* accepted; the protocol is called */
    CONN_DRAINING, /* released; waiting for the kernel to finish its operations on it */
};

struct conn {
    struct loop *loop;
    int fd;
    uint32_t slot; /* where it is in loop->conns */
    uint32_t generation; /* bumped each time this slot takes a new connection */
    uint32_t next_free; /* the next free slot, while this one is free */
    enum conn_state state;
    unsigned ops_in_flight; /* operations submitted whose last completion has not come */
    bool peer_closed; /* a receive returned 0: the client will send nothing more */
    bool eof_pending; /* ... while paused: protocol_on_eof() is still owed */
    bool closing; /* close once the output has been sent */
    bool broken; /* out of memory for this connection: close it at once */
    bool lingering; /* our side is shut down; receiving and discarding */
    bool paused; /* the protocol wants no input for now (conn_pause) */
    bool resumed; /* conn_resume() was called: deliver what was held back */
    bool file_sent; /* the file just went out: tell the protocol */
    bool receiving; /* a multishot receive is armed (until its last completion) */
    bool receive_cancelled; /* ... and asked to stop */
    bool sending; /* a send of outgoing is in flight */
    bool reading_file; /* a read of the file into outgoing is in flight */
    bool splicing; /* a splice, into the pipe or out of it, is in flight */
    uint64_t deadline; /* when protocol_on_timeout() is due (loop clock, ms); 0 = never */
    uint64_t last_received; /* when the receive last completed (loop clock, ms) */
    struct buffer *in; /* bytes received that the protocol has not consumed */
    struct buffer *outgoing; /* bytes being sent: the kernel may be reading them */
    struct buffer *out; /* bytes queued behind them */
    int file_fd; /* a file to send after out, or -1 */
    off_t file_offset; /* where in the file to read from next */
    size_t file_left; /* how much of it is still to read */
    int pipe_in, pipe_out; /* a large file goes through this pipe's ends, or -1 */
    size_t piped; /* bytes of it in the pipe, not yet in the socket */
    struct session session;
};

struct loop {
    struct io_uring ring;
    bool ring_created;
    bool sqpoll;
    struct io_uring_buf_ring *receive_ring; /* buffer descriptors, shared with the kernel */
    char *receive_buffers; /* RECEIVE_BUFFER_COUNT buffers of RECEIVE_BUFFER_SIZE bytes */
    int listen_fd; /* -1 once the loop has stopped accepting */
    bool accepting; /* the multishot accept is armed */
    bool accept_paused; /* accepting failed; try again at the next tick */
    int wake_fd; /* an eventfd: other threads write to it to wake the loop */
    eventfd_t wake_count; /* where the pending read of wake_fd puts the count */
    int spare_fd; /* a descriptor held in reserve for EMFILE, see shed_connection() */
    int index; /* which loop this is, for messages */
    bool stopping;
    bool stopped_now; /* every connection has been closed at once */
    unsigned shutdown_timeout_ms; /* the drain period, see loop_set_shutdown_timeout() */
    struct __kernel_timespec drain_interval; /* ... as the drain timeout reads it */
    bool finishing; /* loop_run() is cancelling the loop's own operations to return */
    atomic_int stop_request; /* set by loop_stop(): 1 finish and stop, 2 stop now */
    pthread_mutex_t inbox_lock;
    struct job *inbox; /* finished jobs posted by workers, waiting to be delivered */
    bool tick_armed;
    struct __kernel_timespec tick_interval;
    unsigned ops_in_flight; /* every operation submitted whose last completion has not come */
    unsigned quiet_sends; /* sends queued since the last submission that need no wakeup */
    size_t open_count; /* connections in state CONN_OPEN */
    size_t slots_in_use; /* connections open or draining */
    size_t max_conns; /* 0: no limit but the descriptors, see loop_set_max_conns() */
    size_t accepted, requests; /* counters, printed when the loop stops */
    uint64_t now; /* CLOCK_MONOTONIC in ms, read once per batch */
    struct conn *conns;
    size_t conn_slots; /* the size of conns: a slot for every descriptor we may hold */
    size_t slots_ever; /* slots used so far: conns[0..slots_ever) have been touched */
    uint32_t free_slot; /* the first free slot below slots_ever, or NO_SLOT */
    struct buffer_pool pool;
};

#define NO_SLOT UINT32_MAX

static bool use_sqpoll;
static int first_sqpoll_ring_fd = -1; /* later rings share its polling thread */

void loop_use_sqpoll(bool on)
{
    use_sqpoll = on;
}

/* Monotonic: wall-clock changes (NTP, an administrator) must not fire or delay timeouts. */
static uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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
    return (uint32_t)(data >> 32) & (MAX_SLOTS - 1);
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
    struct io_uring_sqe *sqe;
    while ((sqe = io_uring_get_sqe(&loop->ring)) == NULL) {
        int ret = io_uring_submit(&loop->ring);
        if (ret < 0 && ret != -EBUSY && ret != -EINTR)
            die("loop %d: io_uring_submit: %s", loop->index, strerror(-ret));
        if (loop->sqpoll)
            io_uring_sqring_wait(&loop->ring); /* the kernel thread takes them in its time */
        loop->quiet_sends = 0; /* they are submitted: their completions are on their way */
    }
    loop->ops_in_flight++;
    return sqe;
}

/* Names the operation just prepared in sqe: what it is, and for which connection. */
static void tag_op(struct io_uring_sqe *sqe, enum op_type type, struct conn *c)
{
    io_uring_sqe_set_data64(sqe, op_data(type, c));
    if (c != NULL)
        c->ops_in_flight++;
}

/* --- Receive buffers ------------------------------------------------------------------- */

static char *receive_buffer(struct loop *loop, unsigned id)
{
    return loop->receive_buffers + (size_t)id * RECEIVE_BUFFER_SIZE;
}

/*
 * Puts buffer id back in the ring, where the kernel may pick it for the next receive. One
 * at a time, at once: with DEFER_TASKRUN the kernel only picks buffers while we wait in
 * io_uring_enter(), so gathering the updates into one per batch would save only a store.
 */
static void recycle_buffer(struct loop *loop, unsigned id)
{
    io_uring_buf_ring_add(loop->receive_ring, receive_buffer(loop, id), RECEIVE_BUFFER_SIZE,
                          (unsigned short)id, io_uring_buf_ring_mask(RECEIVE_BUFFER_COUNT), 0);
    io_uring_buf_ring_advance(loop->receive_ring, 1);
}

/* --- Connections: slots, and what the protocol calls ----------------------------------- */

static size_t unsent_bytes(const struct conn *c)
{
    size_t n = c->outgoing != NULL ? buffer_length(c->outgoing) : 0;
    return n + (c->out != NULL ? buffer_length(c->out) : 0);
}

static bool has_output(const struct conn *c)
{
    return c->outgoing != NULL || c->out != NULL || c->file_fd >= 0;
}

static struct conn *take_slot(struct loop *loop)
{
    uint32_t slot;
    if (loop->free_slot != NO_SLOT) {
        slot = loop->free_slot; /* the most recently freed: its memory is still warm */
        loop->free_slot = loop->conns[slot].next_free;
    } else if (loop->slots_ever < loop->conn_slots) {
        slot = (uint32_t)loop->slots_ever++;
    } else {
        return NULL;
    }
    loop->slots_in_use++;
    return &loop->conns[slot];
}

static void resume_accepting(struct loop *loop);

static void close_pipe(struct conn *c)
{
    if (c->pipe_in >= 0) {
        close(c->pipe_in);
        close(c->pipe_out);
    }
    c->pipe_in = c->pipe_out = -1;
}

/*
 * The kernel is done with the connection: close the socket, and free what it used. Its
 * slot keeps its generation, so the next connection there gets a new one.
 */
static void conn_free(struct conn *c)
{
    struct loop *loop = c->loop;
    close(c->fd);
    if (c->outgoing != NULL)
        buffer_give_back(&loop->pool, c->outgoing);
    if (c->file_fd >= 0)
        close(c->file_fd);
    close_pipe(c);
    c->outgoing = NULL;
    c->file_fd = -1;
    c->state = SLOT_FREE;
    c->next_free = loop->free_slot;
    loop->free_slot = c->slot;
    loop->slots_in_use--;
    if (!loop->accepting)
        resume_accepting(loop); /* out of descriptors or at --max-conns: room for one more now */
}

/*
 * Closes at once, dropping anything unsent. Operations still pending on the socket are
 * cancelled, and the socket is closed when the last of them has completed (see the top
 * of this file); until then the slot is draining and the protocol hears no more of it.
 */
static void conn_release(struct conn *c)
{
    struct loop *loop = c->loop;
    c->state = CONN_DRAINING;
    loop->open_count--;
    if (c->in != NULL)
        buffer_give_back(&loop->pool, c->in);
    if (c->out != NULL)
        buffer_give_back(&loop->pool, c->out);
    c->in = c->out = NULL;
    if (c->ops_in_flight == 0) {
        conn_free(c);
        return;
    }
    /* Every operation on the socket: a receive, a send. A file read ends by itself. */
    struct io_uring_sqe *sqe = get_sqe(loop);
    io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
    tag_op(sqe, OP_CANCEL, c);
}

void conn_send(struct conn *c, const void *data, size_t len)
{
    if (c->broken || len == 0)
        return;
    if (c->file_fd >= 0) {
        /* They would go out before the file: a protocol bug, and the client would be lost. */
        log_error("bytes queued behind a file: closing the connection");
        c->broken = true;
        return;
    }
    if (c->out == NULL)
        c->out = buffer_take(&c->loop->pool);
    if (c->out == NULL || !buffer_append(&c->out, data, len))
        c->broken = true;
}

void conn_send_file(struct conn *c, int fd, off_t offset, size_t len)
{
    if (c->file_fd >= 0 || c->broken) {
        if (c->file_fd >= 0)
            log_error("a second file queued: closing the connection");
        close(fd);
        c->broken = true;
        return;
    }
    c->file_fd = fd;
    c->file_offset = offset;
    c->file_left = len;
    if (len == 0) {
        close(fd);
        c->file_fd = -1;
        c->file_sent = true;
    }
}

void conn_close(struct conn *c)
{
    c->closing = true;
}

void conn_pause(struct conn *c)
{
    c->paused = true;
}

void conn_resume(struct conn *c)
{
    c->paused = false;
    c->resumed = true;
}

void conn_peer_name(struct conn *c, char *buf, size_t size)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    const void *ip = NULL;
    if (getpeername(c->fd, (struct sockaddr *)&addr, &len) == 0) {
        // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): LLVM issue 60482
        if (addr.ss_family == AF_INET)
            ip = &((struct sockaddr_in *)&addr)->sin_addr;
        else if (addr.ss_family == AF_INET6)
            ip = &((struct sockaddr_in6 *)&addr)->sin6_addr;
    }
    if (ip == NULL || inet_ntop(addr.ss_family, ip, buf, (socklen_t)size) == NULL)
        snprintf(buf, size, "-");
}

struct session *conn_session(struct conn *c)
{
    return &c->session;
}

struct loop *conn_loop(struct conn *c)
{
    return c->loop;
}

uint64_t conn_id(struct conn *c)
{
    return (uint64_t)c->generation << 32 | c->slot;
}

void conn_count_request(struct conn *c)
{
    c->loop->requests++;
}

void conn_set_timeout(struct conn *c, unsigned ms)
{
    c->deadline = ms == 0 ? 0 : c->loop->now + ms;
}

/* The open connection a job or a completion names, or NULL if it has closed since. */
static struct conn *find_conn(struct loop *loop, uint32_t slot, uint32_t generation)
{
    if (slot >= loop->slots_ever)
        return NULL;
    struct conn *c = &loop->conns[slot];
    if (c->state == SLOT_FREE || c->generation != generation)
        return NULL;
    return c;
}

/* --- Receiving ------------------------------------------------------------------------- */

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
    c->receiving = true;
}

/* Asks the kernel to end the receive; its last completion says when it has. */
static void cancel_receive(struct conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(c->loop);
    io_uring_prep_cancel64(sqe, op_data(OP_RECEIVE, c), 0);
    tag_op(sqe, OP_CANCEL, c);
    c->receive_cancelled = true;
}

static bool wants_input(const struct conn *c)
{
    if (c->lingering)
        return true; /* reading and discarding, until the client has closed too */
    if (c->peer_closed)
        return false;
    if (unsent_bytes(c) > OUTPUT_HIGH_WATER)
        return false; /* backpressure: let the client read what it asked for first */
    if (c->paused && c->in != NULL && buffer_length(c->in) > HELD_INPUT_MAX)
        return false; /* held enough for a paused protocol: TCP holds the rest back */
    return true;
}

/*
 * Arms or cancels the receive as the connection's state asks. A new receive is armed
 * only once the last one has ended, so two never race to deliver bytes.
 */
static void update_receiving(struct conn *c)
{
    bool want = wants_input(c);
    if (want && !c->receiving)
        arm_receive(c);
    else if (!want && c->receiving && !c->receive_cancelled)
        cancel_receive(c);
}

/* Keeps bytes for later, in the connection's own buffer: the ring's is going back. */
static void hold_input(struct conn *c, const char *data, size_t len)
{
    if (c->in == NULL)
        c->in = buffer_take(&c->loop->pool);
    if (c->in == NULL || !buffer_append(&c->in, data, len))
        c->broken = true;
}

/*
 * Hands bytes to the protocol, after any it left unconsumed last time. Usually they are
 * in a ring buffer and nothing is held: the protocol parses them where the kernel put
 * them, and only what it leaves over is copied.
 */
static void deliver(struct conn *c, char *data, size_t len)
{
    if (c->in != NULL) {
        /* Keep the bytes contiguous: the protocol sees one run, oldest first. */
        if (!buffer_append(&c->in, data, len)) {
            c->broken = true;
            return;
        }
        data = buffer_data(c->in);
        len = buffer_length(c->in);
    }
    size_t used = protocol_on_data(c, data, len);

    if (c->in != NULL) {
        buffer_consume(c->in, used);
        if (buffer_length(c->in) == 0) {
            buffer_give_back(&c->loop->pool, c->in);
            c->in = NULL;
        }
    } else if (used < len) {
        hold_input(c, data + used, len - used);
    }
}

static void take_input(struct conn *c, char *data, size_t len)
{
    if (c->closing || c->lingering)
        return; /* bytes sent after we decided to close are discarded */
    if (c->paused)
        hold_input(c, data, len); /* delivered on conn_resume() */
    else
        deliver(c, data, len);
}

/* The client has closed its side. */
static void take_eof(struct conn *c)
{
    c->peer_closed = true;
    if (c->lingering) {
        conn_release(c); /* the client has closed too: the close is complete */
        return;
    }
    if (c->closing)
        return;
    if (c->paused)
        c->eof_pending = true; /* requests held back come first; see settle() */
    else
        protocol_on_eof(c);
}

/* --- Sending --------------------------------------------------------------------------- */

/*
 * Whether the loop may sleep through this send's completion (see wait_for_completions()).
 * A small send with nothing queued behind it, on a connection that is not closing and
 * not held back, asks nothing of the loop when it goes out whole. A send finishing a
 * short one (outgoing->start > 0) is not counted: the socket was full a moment ago.
 */
static bool send_is_quiet(const struct conn *c)
{
    const struct buffer *b = c->outgoing;
    return b->start == 0 && buffer_length(b) <= QUIET_SEND_MAX && c->out == NULL &&
           c->file_fd < 0 && !c->closing && wants_input(c);
}

static void send_output(struct conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(c->loop);
    io_uring_prep_send(sqe, c->fd, buffer_data(c->outgoing), buffer_length(c->outgoing),
                       MSG_NOSIGNAL);
    tag_op(sqe, OP_SEND, c);
    c->sending = true;
    if (send_is_quiet(c))
        c->loop->quiet_sends++;
}

/*
 * Files. A small one is read into the free end of the outgoing buffer, behind the bytes
 * queued before it (the response's head): it then leaves with them in one send. A read
 * from the page cache completes at once, during the submission.
 *
 * A large one would cost two copies that way, into our buffer and out of it, where stage
 * 5's sendfile() costs none: at 1 MiB, 4.5 times stage 5's CPU time per request. So it
 * is spliced instead, through a pipe: from the file into the pipe, then from the pipe
 * into the socket, the pipe holding references to the page cache's pages, not copies.
 * The price: the kernel runs splices on its worker threads (io-wq), not inline, and each
 * such file costs a pipe: pipe2(), fcntl() and two close() calls.
 */
static bool file_fits_in_buffer(const struct conn *c)
{
    const struct buffer *b = c->outgoing;
    size_t room = b != NULL ? b->capacity - b->end : BUFFER_SIZE;
    return c->file_left <= room;
}

static void read_file(struct conn *c)
{
    if (c->outgoing == NULL)
        c->outgoing = buffer_take(&c->loop->pool);
    if (c->outgoing == NULL) {
        c->broken = true;
        return;
    }
    struct buffer *b = c->outgoing;
    struct io_uring_sqe *sqe = get_sqe(c->loop);
    io_uring_prep_read(sqe, c->file_fd, b->bytes + b->end, (unsigned)c->file_left,
                       (uint64_t)c->file_offset);
    tag_op(sqe, OP_READ_FILE, c);
    c->reading_file = true;
}

/* A pipe for one large file, closed when the file is out (finish_file()). */
static bool open_pipe(struct conn *c)
{
    int ends[2];
    if (pipe2(ends, O_CLOEXEC) < 0) {
        log_error("pipe2: %s", strerror(errno));
        return false;
    }
    c->pipe_out = ends[0];
    c->pipe_in = ends[1];
    /* Larger than the default 64 KiB: fewer splices per file. If refused (the per-user
     * limit on pipe memory), the default size works too, with more splices. */
    (void)fcntl(c->pipe_in, F_SETPIPE_SZ, SPLICE_PIPE_SIZE);
    return true;
}

static void splice_into_pipe(struct conn *c)
{
    if (c->pipe_in < 0 && !open_pipe(c)) {
        c->broken = true;
        return;
    }
    size_t len = c->file_left < SPLICE_PIPE_SIZE ? c->file_left : SPLICE_PIPE_SIZE;
    struct io_uring_sqe *sqe = get_sqe(c->loop);
    io_uring_prep_splice(sqe, c->file_fd, (int64_t)c->file_offset, c->pipe_in, -1, (unsigned)len,
                         0);
    tag_op(sqe, OP_SPLICE_IN, c);
    c->splicing = true;
}

static void splice_to_socket(struct conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(c->loop);
    io_uring_prep_splice(sqe, c->pipe_out, -1, c->fd, -1, (unsigned)c->piped, 0);
    tag_op(sqe, OP_SPLICE_OUT, c);
    c->splicing = true;
}

/* The whole file is on its way: anything queued from now on goes behind it. */
static void finish_file(struct conn *c)
{
    close(c->file_fd);
    c->file_fd = -1;
    close_pipe(c);
    c->file_sent = true;
}

/*
 * Starts the next step of the connection's output, unless one is in flight: the file's
 * bytes already in the pipe; else the queued bytes, with a small file behind them; else
 * a large file's next piece.
 */
static void start_output(struct conn *c)
{
    if (c->sending || c->reading_file || c->splicing)
        return;
    if (c->piped > 0) {
        splice_to_socket(c);
        return;
    }
    if (c->outgoing == NULL) {
        c->outgoing = c->out; /* what was queued goes next; new bytes queue behind it */
        c->out = NULL;
    }
    /* The file follows every byte queued before it: those must all be in outgoing. */
    if (c->file_fd >= 0 && c->out == NULL) {
        if (file_fits_in_buffer(c)) {
            read_file(c);
            return;
        }
        if (c->outgoing == NULL) {
            splice_into_pipe(c);
            return;
        }
    }
    if (c->outgoing != NULL)
        send_output(c);
}

/* --- Settling a connection after each event -------------------------------------------- */

/*
 * After every completion and every protocol callback: tell the protocol when a file is
 * out, deliver held-back input once it resumes, start the output, then begin the close if
 * the connection is finished, and arm or cancel its receive to match.
 */
static void settle(struct conn *c)
{
    if (c->state != CONN_OPEN)
        return;
    for (;;) {
        if (c->broken) {
            log_error("out of memory or a protocol error: closing a connection");
            conn_release(c);
            return;
        }
        if (c->file_sent) {
            c->file_sent = false;
            protocol_on_file_sent(c); /* it may queue more, or resume */
            continue;
        }
        if (c->resumed) {
            c->resumed = false;
            /* Requests may be waiting here already: no receive would ever bring them again. */
            if (c->in != NULL && !c->paused && !c->closing) {
                deliver(c, NULL, 0);
                continue;
            }
        }
        if (c->eof_pending && !c->paused) {
            c->eof_pending = false;
            if (!c->closing)
                protocol_on_eof(c);
            continue;
        }
        break;
    }
    start_output(c);
    if (c->broken) {
        conn_release(c);
        return;
    }
    if (c->closing && !has_output(c) && !c->lingering) {
        if (c->peer_closed) {
            conn_release(c);
            return;
        }
        /* A lingering close (see the top of this file): FIN now, close when the client has. */
        if (shutdown(c->fd, SHUT_WR) < 0) {
            conn_release(c);
            return;
        }
        c->lingering = true;
        c->deadline = c->loop->now + LINGER_MS;
    }
    update_receiving(c);
}

/* --- Completions for a connection ------------------------------------------------------ */

static void handle_receive(struct conn *c, const struct io_uring_cqe *cqe)
{
    c->last_received = c->loop->now;
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        c->receiving = false; /* ended: settle() arms a new one if input is still wanted */
        c->receive_cancelled = false;
    }
    if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
        unsigned id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (c->state == CONN_OPEN)
            take_input(c, receive_buffer(c->loop, id), (size_t)cqe->res);
        recycle_buffer(c->loop, id); /* always: even for a connection that has closed */
    } else if (c->state == CONN_OPEN) {
        if (cqe->res == 0) {
            take_eof(c);
        } else if (cqe->res != -ENOBUFS && cqe->res != -ECANCELED) {
            /* -ENOBUFS: the ring was empty; settle() re-arms, and the buffers being handled
             * in this batch are back in the ring before the new receive is submitted.
             * -ECANCELED: we asked for it. Anything else ends the connection. */
            if (cqe->res != -ECONNRESET)
                log_error("receive: %s", strerror(-cqe->res));
            conn_release(c);
        }
    }
    settle(c);
}

static void handle_send(struct conn *c, const struct io_uring_cqe *cqe)
{
    c->sending = false;
    if (c->state != CONN_OPEN)
        return;
    if (cqe->res <= 0) {
        /* EPIPE, ECONNRESET: the client is gone. (0 bytes for a non-empty send: never.) */
        if (cqe->res != -EPIPE && cqe->res != -ECONNRESET)
            log_error("send: %s", cqe->res == 0 ? "nothing sent" : strerror(-cqe->res));
        conn_release(c);
        return;
    }
    /* A short send leaves the rest in outgoing: start_output() sends it next, before
     * anything queued meanwhile. */
    buffer_consume(c->outgoing, (size_t)cqe->res);
    if (buffer_length(c->outgoing) == 0) {
        buffer_give_back(&c->loop->pool, c->outgoing);
        c->outgoing = NULL;
    }
    settle(c);
}

static void handle_file_read(struct conn *c, const struct io_uring_cqe *cqe)
{
    c->reading_file = false;
    if (c->state != CONN_OPEN)
        return;
    if (cqe->res <= 0) {
        /* 0: the file shrank under us, and the promised Content-Length cannot be met. */
        log_error("reading a file: %s", cqe->res == 0 ? "it ended early" : strerror(-cqe->res));
        conn_release(c);
        return;
    }
    c->outgoing->end += (size_t)cqe->res; /* the bytes the kernel wrote behind the others */
    c->file_offset += cqe->res;
    c->file_left -= (size_t)cqe->res;
    if (c->file_left == 0)
        finish_file(c); /* (a short read leaves the rest for the next one) */
    settle(c);
}

static void handle_splice_in(struct conn *c, const struct io_uring_cqe *cqe)
{
    c->splicing = false;
    if (c->state != CONN_OPEN)
        return;
    if (cqe->res <= 0) {
        log_error("splicing a file: %s", cqe->res == 0 ? "it ended early" : strerror(-cqe->res));
        conn_release(c);
        return;
    }
    c->piped = (size_t)cqe->res;
    c->file_offset += cqe->res;
    c->file_left -= (size_t)cqe->res;
    settle(c); /* splices it on to the socket */
}

static void handle_splice_out(struct conn *c, const struct io_uring_cqe *cqe)
{
    c->splicing = false;
    if (c->state != CONN_OPEN)
        return;
    if (cqe->res <= 0) {
        if (cqe->res != -EPIPE && cqe->res != -ECONNRESET)
            log_error("splicing to a client: %s",
                      cqe->res == 0 ? "nothing sent" : strerror(-cqe->res));
        conn_release(c);
        return;
    }
    c->piped -= (size_t)cqe->res; /* if short, start_output() splices the rest first */
    if (c->piped == 0 && c->file_left == 0)
        finish_file(c);
    settle(c);
}

/* --- Accepting ------------------------------------------------------------------------- */

static bool at_conn_limit(const struct loop *loop)
{
    return loop->max_conns > 0 && loop->slots_in_use >= loop->max_conns;
}

/*
 * One multishot accept serves every client that connects, until it fails or is
 * cancelled. New sockets stay blocking: io_uring never blocks on them anyway.
 *
 * Under --max-conns, one accept at a time instead, re-armed by handle_accept() while
 * there is room: a multishot accept would go on accepting past the limit until a
 * cancellation reached it. One more submission per client is the price of an exact limit.
 */
static void arm_accept(struct loop *loop)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (loop->max_conns > 0)
        io_uring_prep_accept(sqe, loop->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    else
        io_uring_prep_multishot_accept(sqe, loop->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    tag_op(sqe, OP_ACCEPT, NULL);
    loop->accepting = true;
}

static void arm_tick(struct loop *loop);

static void resume_accepting(struct loop *loop)
{
    loop->accept_paused = false;
    if (!loop->stopping && !loop->accepting && !at_conn_limit(loop))
        arm_accept(loop);
}

/* Stops accepting until the next tick, or until a connection closes (conn_free()). */
static void pause_accepting(struct loop *loop)
{
    loop->accept_paused = true;
    if (!loop->tick_armed)
        arm_tick(loop);
}

static void conn_open(struct loop *loop, int fd)
{
    struct conn *c = take_slot(loop);
    if (c == NULL) {
        /* Only possible if the descriptor limit was raised after the loop was created. */
        log_error("no free connection slot for descriptor %d; closing it", fd);
        close(fd);
        return;
    }
    /* TCP_NODELAY is already set: accepted sockets inherit it from the listening one. */
    *c = (struct conn){
        .loop = loop,
        .fd = fd,
        .slot = (uint32_t)(c - loop->conns),
        .generation = c->generation + 1,
        .state = CONN_OPEN,
        .file_fd = -1,
        .pipe_in = -1,
        .pipe_out = -1,
    };
    loop->open_count++;
    loop->accepted++;
    if (!loop->tick_armed)
        arm_tick(loop);
    protocol_on_open(c);
    settle(c); /* arms the receive */
}

/*
 * Out of descriptors, with a client waiting in the accept queue. Free the spare
 * descriptor kept for this moment, accept the client with it and close it at once (it
 * sees a closed connection, not a hang), and take the spare back. (The trick is
 * libuv's.) Returns false if there was no client, or no spare to free.
 */
static bool shed_connection(struct loop *loop)
{
    if (loop->spare_fd < 0)
        loop->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (loop->spare_fd < 0)
        return false;
    close(loop->spare_fd);
    int fd = accept(loop->listen_fd, NULL, NULL);
    if (fd >= 0)
        close(fd);
    loop->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0;
}

/*
 * An accept failed, which ends the multishot accept. Re-arming at once would fail again
 * at once, at full speed, if the cause persists: the kernel looks for a free descriptor
 * before it even looks at the queue. So unless the failure was transient or shedding a
 * client made progress, accepting pauses until the next tick or the next close.
 */
static void handle_accept_error(struct loop *loop, int err)
{
    switch (err) {
    case ECANCELED: /* stop_accepting() */
    case ECONNABORTED: /* a client gave up while waiting in the queue */
    case EINTR:
        return;
    case EMFILE:
    case ENFILE:
        if (shed_connection(loop)) {
            log_error("out of descriptors: closed a new connection at once");
            return;
        }
        log_error("out of descriptors: not accepting for now");
        break;
    default:
        log_error("accept: %s", strerror(err));
        break;
    }
    pause_accepting(loop);
}

static void handle_accept(struct loop *loop, const struct io_uring_cqe *cqe)
{
    bool ended = !(cqe->flags & IORING_CQE_F_MORE);
    if (cqe->res >= 0) {
        if (loop->stopping)
            close(cqe->res); /* accepted before the cancellation took effect */
        else
            conn_open(loop, cqe->res);
    } else if (ended) {
        handle_accept_error(loop, -cqe->res);
    }
    if (!ended)
        return;
    loop->accepting = false;
    if (loop->stopping) {
        /* Only now: the kernel kept the socket listening while the accept was pending. */
        close(loop->listen_fd);
        loop->listen_fd = -1;
    } else if (!loop->accept_paused && !at_conn_limit(loop)) {
        arm_accept(loop); /* at the limit, conn_free() re-arms it */
    }
}

/* New clients are refused by the kernel once the listening socket is closed. */
static void stop_accepting(struct loop *loop)
{
    if (loop->accepting) {
        struct io_uring_sqe *sqe = get_sqe(loop);
        io_uring_prep_cancel64(sqe, op_data(OP_ACCEPT, NULL), 0);
        tag_op(sqe, OP_STOP, NULL); /* handle_accept() closes the socket when it ends */
        return;
    }
    close(loop->listen_fd);
    loop->listen_fd = -1;
}

/* --- Other threads: jobs and stop requests --------------------------------------------- */

/* A read on the eventfd completes when another thread has written to it. */
static void arm_wake(struct loop *loop)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    io_uring_prep_read(sqe, loop->wake_fd, &loop->wake_count, sizeof loop->wake_count, 0);
    tag_op(sqe, OP_WAKE, NULL);
}

void loop_stop(struct loop *loop, bool now)
{
    atomic_store(&loop->stop_request, now ? 2 : 1);
    if (eventfd_write(loop->wake_fd, 1) < 0)
        log_error("loop %d: eventfd_write: %s", loop->index, strerror(errno));
}

void loop_post(struct loop *loop, struct job *job)
{
    pthread_mutex_lock(&loop->inbox_lock);
    job->next = loop->inbox;
    loop->inbox = job;
    pthread_mutex_unlock(&loop->inbox_lock);
    if (eventfd_write(loop->wake_fd, 1) < 0)
        log_error("loop %d: eventfd_write: %s", loop->index, strerror(errno));
}

/* Hands finished jobs to their connections; a job whose connection closed meanwhile (a
 * different generation in its slot) is dropped. */
static void deliver_jobs(struct loop *loop)
{
    pthread_mutex_lock(&loop->inbox_lock);
    struct job *job = loop->inbox;
    loop->inbox = NULL;
    pthread_mutex_unlock(&loop->inbox_lock);
    while (job != NULL) {
        struct job *next = job->next;
        struct conn *c = find_conn(loop, (uint32_t)job->conn, (uint32_t)(job->conn >> 32));
        if (c != NULL && c->state == CONN_OPEN) {
            protocol_on_job_done(c, job); /* frees the job */
            settle(c);
        } else {
            free(job);
        }
        job = next;
    }
}

/*
 * A timeout operation that completes when the drain period is over: what is still open
 * then is closed, whatever its client does. finish() cancels it if all ends before.
 */
static void arm_drain(struct loop *loop)
{
    loop->drain_interval.tv_sec = loop->shutdown_timeout_ms / 1000;
    loop->drain_interval.tv_nsec = (long long)(loop->shutdown_timeout_ms % 1000) * 1000000;
    struct io_uring_sqe *sqe = get_sqe(loop);
    io_uring_prep_timeout(sqe, &loop->drain_interval, 0, 0);
    tag_op(sqe, OP_DRAIN, NULL);
}

static void begin_stop(struct loop *loop)
{
    log_info("loop %d: stopping; %zu connection(s) to finish", loop->index, loop->open_count);
    loop->stopping = true;
    stop_accepting(loop);
    arm_drain(loop);
    for (size_t slot = 0; slot < loop->slots_ever; slot++) {
        struct conn *c = &loop->conns[slot];
        if (c->state == CONN_OPEN) {
            protocol_on_stop(c);
            settle(c);
        }
    }
}

static void stop_now(struct loop *loop)
{
    log_info("loop %d: closing %zu connection(s) now", loop->index, loop->open_count);
    loop->stopped_now = true;
    for (size_t slot = 0; slot < loop->slots_ever; slot++)
        if (loop->conns[slot].state == CONN_OPEN)
            conn_release(&loop->conns[slot]);
}

static void handle_drain(struct loop *loop, const struct io_uring_cqe *cqe)
{
    if (cqe->res != -ETIME && cqe->res != -ECANCELED)
        log_error("loop %d: timeout: %s", loop->index, strerror(-cqe->res));
    if (cqe->res == -ETIME && !loop->finishing && !loop->stopped_now)
        stop_now(loop);
}

/*
 * Acts on a stop another thread asked for (loop_stop()). Also called before each batch of
 * completions: a request completing in the same batch as the wakeup, but ahead of it, must
 * already be answered as the last on its connection, with Connection: close.
 */
static void take_stop_request(struct loop *loop)
{
    int stop = atomic_load(&loop->stop_request);
    if (stop >= 1 && !loop->stopping)
        begin_stop(loop);
    if (stop >= 2 && !loop->stopped_now)
        stop_now(loop);
}

/* Another thread wrote to the eventfd: jobs have come back, or a stop was asked for. */
static void handle_wake(struct loop *loop, const struct io_uring_cqe *cqe)
{
    if (cqe->res < 0 && cqe->res != -ECANCELED)
        log_error("loop %d: reading the eventfd: %s", loop->index, strerror(-cqe->res));
    if (loop->finishing)
        return;
    arm_wake(loop);
    deliver_jobs(loop);
    take_stop_request(loop);
}

/* --- Time ------------------------------------------------------------------------------ */

/*
 * A timeout operation: it completes (with -ETIME) after SWEEP_INTERVAL_MS. It is armed
 * only while there is something to time, so an idle loop sleeps until a client comes.
 */
static void arm_tick(struct loop *loop)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    io_uring_prep_timeout(sqe, &loop->tick_interval, 0, 0);
    tag_op(sqe, OP_TICK, NULL);
    loop->tick_armed = true;
}

/*
 * Calls protocol_on_timeout() for every connection whose deadline has passed. A
 * connection that is already closing, or whose client has not taken what we sent for a
 * whole timeout, has nothing more coming: it is closed at once.
 */
static void expire_deadlines(struct loop *loop)
{
    for (size_t slot = 0; slot < loop->slots_ever; slot++) {
        struct conn *c = &loop->conns[slot];
        if (c->state != CONN_OPEN || c->deadline == 0 || c->deadline > loop->now)
            continue;
        c->deadline = 0;
        if (c->closing || has_output(c)) {
            conn_release(c);
            continue;
        }
        protocol_on_timeout(c);
        if (c->deadline == 0)
            c->deadline = loop->now + LINGER_MS; /* the protocol's time is up; ours nearly */
        settle(c);
    }
}

/*
 * A multishot receive that has just delivered a burst of buffers may never complete
 * with the client's reset, although the error is pending on the socket (measured in
 * stage6-uring/README.md): the connection would wait for the rest of its request until
 * the idle timeout. So a connection holding part of a request, whose receive is its only
 * operation and has been silent for a whole tick, has that receive cancelled; settle()
 * arms a new one, which reports the reset (or the bytes, or the end) at once. An idle
 * keep-alive connection holds nothing and is left alone.
 */
static void check_silent_receives(struct loop *loop)
{
    for (size_t slot = 0; slot < loop->slots_ever; slot++) {
        struct conn *c = &loop->conns[slot];
        if (c->state != CONN_OPEN || c->in == NULL || !c->receiving || c->receive_cancelled ||
            c->sending || c->reading_file || c->splicing ||
            loop->now - c->last_received < SWEEP_INTERVAL_MS / 2)
            continue;
        cancel_receive(c);
    }
}

static void handle_tick(struct loop *loop, const struct io_uring_cqe *cqe)
{
    loop->tick_armed = false;
    if (cqe->res != -ETIME && cqe->res != -ECANCELED)
        log_error("loop %d: timeout: %s", loop->index, strerror(-cqe->res));
    if (loop->finishing)
        return;
    expire_deadlines(loop);
    check_silent_receives(loop);
    if (loop->accept_paused)
        resume_accepting(loop);
    if (loop->slots_in_use > 0 || loop->accept_paused)
        arm_tick(loop);
}

/* --- The loop -------------------------------------------------------------------------- */

/* A completion for a connection: find it, count the operation done, hand it over. */
static void handle_conn_completion(struct loop *loop, const struct io_uring_cqe *cqe)
{
    uint64_t data = cqe->user_data;
    struct conn *c = find_conn(loop, op_slot(data), op_generation(data));
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
        c->ops_in_flight--;
    switch (op_type_of(data)) {
    case OP_RECEIVE:
        handle_receive(c, cqe);
        break;
    case OP_SEND:
        handle_send(c, cqe);
        break;
    case OP_READ_FILE:
        handle_file_read(c, cqe);
        break;
    case OP_SPLICE_IN:
        handle_splice_in(c, cqe);
        break;
    case OP_SPLICE_OUT:
        handle_splice_out(c, cqe);
        break;
    default: /* OP_CANCEL: its result is the cancelled operations' completions */
        break;
    }
    if (c->state == CONN_DRAINING && c->ops_in_flight == 0)
        conn_free(c);
}

static void handle_completion(struct loop *loop, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        loop->ops_in_flight--;
    switch (op_type_of(cqe->user_data)) {
    case OP_ACCEPT:
        handle_accept(loop, cqe);
        break;
    case OP_WAKE:
        handle_wake(loop, cqe);
        break;
    case OP_TICK:
        handle_tick(loop, cqe);
        break;
    case OP_DRAIN:
        handle_drain(loop, cqe);
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
    struct io_uring_cqe *cqe;
    unsigned head;
    unsigned seen = 0;
    loop->now = clock_ms();
    if (!loop->finishing)
        take_stop_request(loop);
    io_uring_for_each_cqe(&loop->ring, head, cqe)
    {
        handle_completion(loop, cqe);
        seen++;
    }
    io_uring_cq_advance(&loop->ring, seen);
}

/*
 * Submits what was queued and waits for completions: one system call.
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
static void wait_for_completions(struct loop *loop)
{
    unsigned quiet = loop->quiet_sends;
    loop->quiet_sends = 0;
    int ret;
    if (quiet == 0) {
        ret = io_uring_submit_and_wait(&loop->ring, 1);
    } else {
        struct __kernel_timespec patience = {.tv_nsec = QUIET_WAIT_USEC * 1000};
        struct io_uring_cqe *cqe;
        ret = io_uring_submit_and_wait_timeout(&loop->ring, &cqe, quiet + 1, &patience, NULL);
    }
    /* ETIME: patience ran out; EINTR: a signal; EBUSY: completions overflowed, handle them. */
    if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN)
        die("loop %d: io_uring_enter: %s", loop->index, strerror(-ret));
}

/*
 * The ring was created disabled on the main thread (loop_create()), so that set-up errors
 * stop the server before it announces itself. With SINGLE_ISSUER, the thread that enables
 * it becomes the only one allowed to submit: this one. liburing 2.3, Debian 12's,
 * declares io_uring_enable_rings() but its shared library does not export it, so the one
 * system call it would make is made here.
 */
static void start_ring(struct loop *loop)
{
    if (syscall(__NR_io_uring_register, loop->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) <
        0)
        die("loop %d: enabling the ring: %s", loop->index, strerror(errno));
    /* Every io_uring_enter() looks the ring's descriptor up; registered, it skips that. */
    int ret = io_uring_register_ring_fd(&loop->ring);
    if (ret < 0)
        log_error("loop %d: io_uring_register_ring_fd: %s (continuing without)", loop->index,
                  strerror(-ret));
}

/*
 * Cancels the loop's own operations (the eventfd read, the tick, an accept) and waits for
 * them to end, so that nothing in the kernel points into the loop when it is freed.
 */
static void finish(struct loop *loop)
{
    loop->finishing = true;
    struct io_uring_sqe *sqe = get_sqe(loop);
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    tag_op(sqe, OP_STOP, NULL);
    while (loop->ops_in_flight > 0) {
        wait_for_completions(loop);
        handle_completions(loop);
    }
    if (loop->listen_fd >= 0) {
        close(loop->listen_fd);
        loop->listen_fd = -1;
    }
    io_uring_queue_exit(&loop->ring);
    loop->ring_created = false;
}

void loop_run(struct loop *loop)
{
    start_ring(loop);
    loop->now = clock_ms();
    arm_accept(loop);
    arm_wake(loop);
    while (!loop->stopping || loop->slots_in_use > 0) {
        wait_for_completions(loop);
        handle_completions(loop);
    }
    finish(loop);
    log_info("loop %d: %zu connections, %zu requests", loop->index, loop->accepted, loop->requests);
}

/* --- Set-up ---------------------------------------------------------------------------- */

/*
 * Why io_uring_setup() failed, in words, pointing to stage 5, which needs only epoll.
 * EPERM comes from the kernel.io_uring_disabled sysctl, or from a seccomp filter: many
 * container runtimes forbid io_uring.
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
    snprintf(buf, size, "io_uring is not available: %s; use stage 5 (stage5-threads, epoll)",
             cause);
}

/*
 * The ring, created disabled (see start_ring()). Without SQPOLL: SINGLE_ISSUER (only one
 * thread submits, so the kernel can skip locking) and DEFER_TASKRUN (the kernel finishes
 * our operations' work only when we wait, in our thread, in one batch, instead of
 * interrupting us for each); on a kernel older than 6.1 that says EINVAL, COOP_TASKRUN,
 * which at least spares us the interruptions. With SQPOLL: a kernel thread takes the
 * submissions, shared by all the loops (ATTACH_WQ) so that there is one, not one per loop.
 */
static int create_ring(struct loop *loop)
{
    struct io_uring_params params = {0};
    params.flags = IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
    params.cq_entries = CQ_ENTRIES;
    if (loop->sqpoll) {
        params.flags |= IORING_SETUP_SQPOLL | IORING_SETUP_SINGLE_ISSUER;
        params.sq_thread_idle = SQPOLL_IDLE_MS;
        if (first_sqpoll_ring_fd >= 0) {
            params.flags |= IORING_SETUP_ATTACH_WQ;
            params.wq_fd = (uint32_t)first_sqpoll_ring_fd;
        }
        int ret = io_uring_queue_init_params(SQ_ENTRIES, &loop->ring, &params);
        if (ret == 0 && first_sqpoll_ring_fd < 0)
            first_sqpoll_ring_fd = loop->ring.ring_fd;
        return ret;
    }
    struct io_uring_params fallback = params;
    params.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int ret = io_uring_queue_init_params(SQ_ENTRIES, &loop->ring, &params);
    if (ret == -EINVAL) {
        fallback.flags |= IORING_SETUP_COOP_TASKRUN;
        ret = io_uring_queue_init_params(SQ_ENTRIES, &loop->ring, &fallback);
    }
    return ret;
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
    loop->receive_ring = ring;
    loop->receive_buffers = buffers;
    io_uring_buf_ring_init(loop->receive_ring);
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)ring,
        .ring_entries = RECEIVE_BUFFER_COUNT,
        .bgid = RECEIVE_BUFFER_GROUP,
    };
    int ret = io_uring_register_buf_ring(&loop->ring, &reg, 0);
    if (ret < 0) {
        snprintf(err, errlen, "io_uring_register_buf_ring: %s", strerror(-ret));
        return false;
    }
    int mask = io_uring_buf_ring_mask(RECEIVE_BUFFER_COUNT);
    for (unsigned id = 0; id < RECEIVE_BUFFER_COUNT; id++)
        io_uring_buf_ring_add(loop->receive_ring, receive_buffer(loop, id), RECEIVE_BUFFER_SIZE,
                              (unsigned short)id, mask, (int)id);
    io_uring_buf_ring_advance(loop->receive_ring, RECEIVE_BUFFER_COUNT);
    return true;
}

struct loop *loop_create(int listen_fd, int index, char *err, size_t errlen)
{
    /* A slot for every descriptor the process may hold: no loop can have more clients. */
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) < 0) {
        snprintf(err, errlen, "getrlimit: %s", strerror(errno));
        return NULL;
    }
    struct loop *loop = calloc(1, sizeof *loop);
    if (loop == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    loop->listen_fd = listen_fd;
    loop->index = index;
    loop->sqpoll = use_sqpoll;
    loop->free_slot = NO_SLOT;
    loop->tick_interval.tv_sec = SWEEP_INTERVAL_MS / 1000;
    atomic_init(&loop->stop_request, 0);
    pthread_mutex_init(&loop->inbox_lock, NULL);
    loop->conn_slots = limit.rlim_cur < MAX_SLOTS ? limit.rlim_cur : MAX_SLOTS;
    /* calloc of a large block maps zero pages: slots never used cost no memory. */
    loop->conns = calloc(loop->conn_slots, sizeof *loop->conns);
    loop->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->conns == NULL || loop->spare_fd < 0 || loop->wake_fd < 0) {
        snprintf(err, errlen, "loop set-up: %s", strerror(errno));
        loop_destroy(loop);
        return NULL;
    }
    int ret = create_ring(loop);
    if (ret < 0) {
        explain_setup_failure(-ret, err, errlen);
        loop_destroy(loop);
        return NULL;
    }
    loop->ring_created = true;
    if (!setup_receive_buffers(loop, err, errlen)) {
        loop_destroy(loop);
        return NULL;
    }
    /*
     * Nagle's algorithm holds back a small write while earlier data is unacknowledged,
     * hoping to merge it with the next. Our writes are already whole replies, and the
     * client's delayed ACK would stall each one by up to 40 ms: turn it off. Set on the
     * listening socket, it is inherited by every socket accepted from it (Linux), which
     * saves a setsockopt() per connection.
     */
    int one = 1;
    if (setsockopt(listen_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        log_error("setsockopt(TCP_NODELAY): %s", strerror(errno)); /* slower, still correct */
    return loop;
}

void loop_set_max_conns(struct loop *loop, size_t max)
{
    loop->max_conns = max;
}

void loop_set_shutdown_timeout(struct loop *loop, unsigned ms)
{
    loop->shutdown_timeout_ms = ms;
}

void loop_destroy(struct loop *loop)
{
    if (loop->ring_created)
        io_uring_queue_exit(&loop->ring); /* loop_run() never ran */
    if (loop->receive_ring != NULL)
        munmap(loop->receive_ring, RECEIVE_BUFFER_COUNT * sizeof(struct io_uring_buf));
    if (loop->receive_buffers != NULL)
        munmap(loop->receive_buffers, (size_t)RECEIVE_BUFFER_COUNT * RECEIVE_BUFFER_SIZE);
    if (loop->spare_fd >= 0)
        close(loop->spare_fd);
    if (loop->wake_fd >= 0)
        close(loop->wake_fd);
    while (loop->inbox != NULL) {
        struct job *job = loop->inbox;
        loop->inbox = job->next;
        free(job);
    }
    pthread_mutex_destroy(&loop->inbox_lock);
    buffer_pool_clear(&loop->pool);
    free(loop->conns);
    free(loop);
}
