/*
 * conn.c - the connection layer: what a connection may do, whatever waits for the kernel.
 *
 * A loop serves many clients on one thread. This file holds the rules that do not depend
 * on how the loop waits: the slot table, what is buffered in and out, when input is
 * wanted, what is sent next, the lingering close, deadlines, stopping, and what
 * to do when descriptors run out. How to wait, receive and send is a backend's job
 * (backend.h: loop_epoll.c here), and the protocol above sees only conn.h.
 *
 * Slots: connections live in a table with a slot for every descriptor the process may
 * hold, mapped lazily (calloc of a large block maps zero pages), so slots never used cost
 * no memory. A freed slot goes on a free list and is reused first, while its memory is
 * still warm; slots_ever, the high-water mark, bounds every walk over the table, so a
 * loop that never held more than a hundred clients walks a hundred slots, whatever the
 * descriptor limit (a container's 1,048,576 would otherwise be 160 MiB walked a second).
 * Each slot also holds the protocol's state for its connection (protocol_session_size
 * bytes, conn_session()), so a connection costs no allocation of its own.
 *
 * Names: a connection is named by its slot and a generation number bumped each time the
 * slot takes a new connection (conn_id()). An event, a completion or a message for a
 * connection that has closed meanwhile carries the old generation and is recognised,
 * even when a new connection has already taken the slot.
 *
 * Memory: a connection owns a buffer only for bytes its protocol has not consumed yet, or
 * bytes the kernel has not taken yet (buffer.h). Backpressure bounds the second kind: a
 * connection with more than OUTPUT_HIGH_WATER bytes unsent wants no input until they
 * drain, so a client that sends without reading fills its own socket buffers, not ours.
 * Output is two buffers: `outgoing`, which the kernel may be reading (an io_uring send
 * reads it after the call that started it has returned), and `out`, where conn_send()
 * appends behind it; a buffer that may grow (and move) is never one the kernel reads.
 * Input is one buffer, `in`, which the kernel may be writing: a receive into the room
 * kept for a large request (conn_input_room()) may complete after the call that started
 * it has returned, so `in` is freed only once the backend has let go of the socket
 * (conn_closed()), and never grown or moved while such a receive is pending (none is
 * started while there is anything else to do with the input).
 *
 * Time: each connection has at most one deadline, set by its protocol. Once a second the
 * loop walks the slots in use and calls protocol_on_timeout() for those that have passed.
 *
 * Closing: when the protocol closes a connection whose client may still be sending, our
 * side is shut down first, and bytes are received and discarded until the client closes
 * or LINGER_MS passes (a "lingering close"). Closing at once would make the kernel answer
 * the client's next bytes with a reset, and a reset can destroy our last response in the
 * client's buffers before it reads it (RFC 9112 section 9.6). A client that has said its
 * request was its last (conn_close_no_linger) and has sent nothing beyond it is closed at
 * once: it sends no next bytes for a reset to answer.
 */
#include "backend.h"
#include "conn.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    OUTPUT_HIGH_WATER = 64 * 1024, /* want no input from a client with more than this unsent */
    ROOM_PER_BYTE_HELD = 16, /* room for a promised body: this many times what has come */
    SWEEP_INTERVAL_MS = 1000, /* how often deadlines are checked */
    LINGER_MS = 2000, /* the longest a closing connection is read and discarded */
    MAX_SLOTS = 1 << 24, /* connection slots a 24-bit slot number can name */
};

/* Monotonic: wall-clock changes (NTP, an administrator) must not fire or delay timeouts. */
static uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- Slots ----------------------------------------------------------------------------- */

static struct conn *conn_at(const struct loop *loop, size_t slot)
{
    return (struct conn *)(loop->conns + slot * loop->slot_size);
}

static struct conn *take_slot(struct loop *loop)
{
    uint32_t slot;
    if (loop->free_slot != NO_SLOT) {
        slot = loop->free_slot; /* the most recently freed: its memory is still warm */
        loop->free_slot = conn_at(loop, slot)->next_free;
    } else if (loop->slots_ever < loop->conn_slots) {
        slot = (uint32_t)loop->slots_ever++;
    } else {
        return NULL;
    }
    loop->slots_in_use++;
    struct conn *c = conn_at(loop, slot);
    c->slot = slot;
    return c;
}

struct conn *loop_find_conn(struct loop *loop, uint32_t slot, uint32_t generation)
{
    if (slot >= loop->slots_ever)
        return NULL;
    struct conn *c = conn_at(loop, slot);
    if (c->state == SLOT_FREE || c->generation != generation)
        return NULL;
    return c;
}

/* --- What a connection wants ----------------------------------------------------------- */

static size_t unsent_bytes(const struct conn *c)
{
    size_t n = c->outgoing != NULL ? buffer_length(c->outgoing) : 0;
    return n + (c->out != NULL ? buffer_length(c->out) : 0);
}

bool conn_has_output(const struct conn *c)
{
    return c->outgoing != NULL || c->out != NULL;
}

bool conn_wants_input(const struct conn *c)
{
    if (c->lingering)
        return true; /* reading and discarding, until the client has closed too */
    if (c->peer_closed)
        return false;
    if (unsent_bytes(c) > OUTPUT_HIGH_WATER)
        return false; /* backpressure: let the client read what it asked for first */
    return true;
}

/* --- Closing --------------------------------------------------------------------------- */

static void resume_accepting(struct loop *loop);

/*
 * Closes at once, dropping anything unsent. The backend closes the socket, at once or
 * once the kernel has let go of it (conn_closed()); until then the slot is draining and
 * the protocol hears no more of it.
 */
static void conn_release(struct conn *c)
{
    struct loop *loop = c->loop;
    c->state = CONN_DRAINING;
    loop->open_count--;
    if (c->out != NULL)
        buffer_give_back(&loop->pool, c->out);
    c->out = NULL;
    loop->backend->close(c); /* c->in waits for conn_closed(): the kernel may be filling it */
}

void conn_closed(struct conn *c)
{
    struct loop *loop = c->loop;
    if (c->outgoing != NULL)
        buffer_give_back(&loop->pool, c->outgoing);
    if (c->in != NULL)
        buffer_give_back(&loop->pool, c->in);
    c->outgoing = c->in = NULL;
    c->state = SLOT_FREE;
    c->next_free = loop->free_slot;
    loop->free_slot = c->slot;
    loop->slots_in_use--;
    if (loop->accept_paused)
        resume_accepting(loop); /* below the limit again */
}

void conn_failed(struct conn *c, int err, const char *what)
{
    if (c->state != CONN_OPEN)
        return;
    /* A reset or a broken pipe is a client going away, not worth a line in the log. */
    if (err != ECONNRESET && err != EPIPE)
        log_error("%s: %s", what, err == 0 ? "nothing transferred" : strerror(err));
    conn_release(c);
}

/* --- What the protocol calls ----------------------------------------------------------- */

void conn_send(struct conn *c, const void *data, size_t len)
{
    if (c->broken || len == 0)
        return;
    if (c->out == NULL)
        c->out = buffer_take(&c->loop->pool);
    if (c->out == NULL || !buffer_append(&c->out, data, len))
        c->broken = true;
}

void conn_expect_input(struct conn *c, size_t len)
{
    c->input_expected = len;
}

void conn_close(struct conn *c)
{
    c->closing = true;
}

void conn_close_no_linger(struct conn *c)
{
    c->closing = true;
    c->client_done = true;
}

void *conn_session(struct conn *c)
{
    return c + 1;
}

void conn_set_timeout(struct conn *c, unsigned ms)
{
    c->deadline = ms == 0 ? 0 : c->loop->now + ms;
}

/* --- Output, for the backend ----------------------------------------------------------- */

struct buffer *conn_outgoing(struct conn *c)
{
    if (c->outgoing == NULL) {
        c->outgoing = c->out; /* what was queued goes next; new bytes queue behind it */
        c->out = NULL;
    }
    return c->outgoing;
}

void conn_sent(struct conn *c, size_t n)
{
    buffer_consume(c->outgoing, n);
    if (buffer_length(c->outgoing) == 0) {
        buffer_give_back(&c->loop->pool, c->outgoing);
        c->outgoing = NULL;
    }
}

/* --- Input, from the backend ----------------------------------------------------------- */

/*
 * Room in `in` for the rest of a message whose length the protocol has said
 * (conn_expect_input()): grown once, it saves copying the buffer as it doubles, and the
 * backend can receive into it (conn_input_room()). But it is memory held for bytes only
 * promised, so the room for what is still to come is at most ROOM_PER_BYTE_HELD times
 * what has come (counting `arriving`, about to be appended): a head alone that promises a
 * megabyte gets the server to hold sixteen times the head, not the megabyte. A 1 MiB
 * request whose first read brings 64 KiB gets all its room at once; one that trickles in
 * grows seventeenfold a step.
 */
static bool keep_room(struct conn *c, size_t arriving)
{
    struct buffer *b = c->in;
    size_t come = buffer_length(b) + arriving;
    size_t room = c->input_expected;
    if (room > come && (room - come) / ROOM_PER_BYTE_HELD > come) {
        /* Grown only once the free end is smaller than what has come: in few large steps,
         * not at every piece that arrives (each step may copy the buffer). */
        if (b->capacity - b->end >= arriving + come)
            return true;
        room = come + come * ROOM_PER_BYTE_HELD;
    }
    return buffer_reserve(&c->in, room);
}

/*
 * Hands bytes to the protocol, after any it left unconsumed last time. Usually nothing is
 * held: the protocol parses the bytes where the backend received them, and only what it
 * leaves over is copied.
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
    c->input_expected = 0; /* the protocol says it again if it still waits for a message */
    size_t used = protocol_on_data(c, data, len);

    if (c->in != NULL) {
        buffer_consume(c->in, used);
        if (buffer_length(c->in) == 0) {
            buffer_give_back(&c->loop->pool, c->in);
            c->in = NULL;
        } else if (!keep_room(c, 0)) {
            c->broken = true;
        }
    } else if (used < len) {
        /* The backend's buffer is about to be reused: keep the rest in one of our own, with
         * room for the rest of the message if its length is known (keep_room()). */
        c->in = buffer_take(&c->loop->pool);
        if (c->in == NULL || !keep_room(c, len - used) ||
            !buffer_append(&c->in, data + used, len - used))
            c->broken = true;
    }
}

void conn_received(struct conn *c, char *data, size_t len)
{
    if (c->state != CONN_OPEN || c->closing || c->lingering)
        return; /* bytes sent after we decided to close are discarded */
    deliver(c, data, len);
}

char *conn_input_room(struct conn *c, size_t *room)
{
    struct buffer *b = c->in;
    if (b == NULL || c->input_expected <= buffer_length(b) || c->state != CONN_OPEN || c->closing ||
        c->lingering)
        return NULL;
    *room = b->capacity - b->end; /* never 0 while more is expected: keep_room() */
    return b->bytes + b->end;
}

void conn_received_in_place(struct conn *c, size_t len)
{
    if (c->state != CONN_OPEN || c->closing || c->lingering)
        return; /* as conn_received(): discarded */
    c->in->end += len;
    deliver(c, NULL, 0); /* the protocol sees them behind the others, as if appended */
}

void conn_peer_closed(struct conn *c)
{
    if (c->state != CONN_OPEN)
        return;
    c->peer_closed = true;
    if (c->lingering) {
        conn_release(c); /* the client has closed too: the close is complete */
        return;
    }
    if (!c->closing)
        protocol_on_eof(c);
}

/* --- Settling a connection after each event -------------------------------------------- */

/*
 * After every event and every protocol callback: send what was queued, then begin the close
 * if the connection is finished, or tell the backend what it waits for now.
 */
void conn_settle(struct conn *c)
{
    if (c->state != CONN_OPEN)
        return;
    if (c->broken) {
        log_error("out of memory or a protocol error: closing a connection");
        conn_release(c);
        return;
    }
    if (!c->loop->backend->send(c)) {
        if (c->state == CONN_OPEN) /* unless the backend has already said why */
            conn_release(c);
        return;
    }
    if (c->closing && !conn_has_output(c) && !c->lingering) {
        /* Bytes the protocol left unread (c->in) came after the client's last request. */
        if (c->peer_closed || (c->client_done && c->in == NULL)) {
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
    if (!c->loop->backend->update(c))
        conn_release(c);
}

/* --- Accepting ------------------------------------------------------------------------- */

static bool at_conn_limit(const struct loop *loop)
{
    return loop->max_conns > 0 && loop->slots_in_use >= loop->max_conns;
}

/* Stops accepting until a connection closes (conn_closed()) or the next sweep. */
static void pause_accepting(struct loop *loop)
{
    if (loop->accept_paused)
        return;
    loop->accept_paused = true;
    loop->accepting = false;
    loop->backend->update_accepting(loop);
}

static void resume_accepting(struct loop *loop)
{
    if (loop->stopping || at_conn_limit(loop))
        return;
    loop->accept_paused = false;
    loop->accepting = true;
    loop->backend->update_accepting(loop);
}

void loop_accepted_fd(struct loop *loop, int fd)
{
    if (loop->stopping) {
        close(fd); /* accepted before the backend stopped accepting */
        return;
    }
    struct conn *c = take_slot(loop);
    if (c == NULL) {
        /* Only possible if the descriptor limit was raised after the loop was created. */
        log_error("no free connection slot for descriptor %d; closing it", fd);
        close(fd);
        return;
    }
    uint32_t slot = c->slot;
    uint32_t generation = c->generation + 1;
    memset(c, 0, loop->slot_size); /* the protocol's session too */
    c->loop = loop;
    c->fd = fd;
    c->slot = slot;
    c->generation = generation;
    c->state = CONN_OPEN;
    loop->open_count++;
    if (!loop->backend->open(c)) {
        conn_release(c);
    } else {
        protocol_on_open(c);
        conn_settle(c);
    }
    if (at_conn_limit(loop))
        pause_accepting(loop);
}

/*
 * Out of descriptors, with a client waiting in the accept queue. Free the spare
 * descriptor kept for this moment, accept the client with it and close it at once (it
 * sees a closed connection, not a hang), and take the spare back. Clients already
 * connected go on being served. (The trick is libuv's; nginx instead stops accepting for
 * a while.) False if there was no client, or no spare to free.
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
 * Accepting again at once would fail again at once, at full speed, while the cause
 * persists: the kernel looks for a free descriptor before it even looks at the queue. So
 * unless the failure was transient or shedding a client made progress, accepting pauses
 * until the next sweep or the next close.
 */
bool loop_accept_failed(struct loop *loop, int err)
{
    switch (err) {
    case ECONNABORTED: /* a client gave up while waiting in the queue */
    case EINTR:
        return true;
    case EMFILE:
    case ENFILE:
        if (shed_connection(loop)) {
            log_error("out of descriptors: closed a new connection at once");
            return true;
        }
        log_error("out of descriptors: not accepting for now");
        break;
    default:
        log_error("accept: %s", strerror(err));
        break;
    }
    pause_accepting(loop);
    return false;
}

/* --- Stopping ------------------------------------------------------------------------- */

static void begin_stop(struct loop *loop, const char *why)
{
    log_info("%s: stopping; %zu connection(s) to finish", why, loop->open_count);
    loop->stopping = true;
    loop->stop_deadline = loop->now + loop->shutdown_timeout_ms;
    loop->accepting = false;
    loop->backend->stop_accepting(loop); /* new clients are now refused by the kernel */
    for (size_t slot = 0; slot < loop->slots_ever; slot++) {
        struct conn *c = conn_at(loop, slot);
        if (c->state == CONN_OPEN) {
            protocol_on_stop(c);
            conn_settle(c);
        }
    }
}

/* Closes every connection at once, whatever it is doing. */
static void stop_now(struct loop *loop)
{
    log_info("closing %zu connection(s) now", loop->open_count);
    loop->stopped_now = true;
    for (size_t slot = 0; slot < loop->slots_ever; slot++) {
        struct conn *c = conn_at(loop, slot);
        if (c->state == CONN_OPEN)
            conn_release(c);
    }
}

void loop_woken(struct loop *loop)
{
    struct signalfd_siginfo info;
    for (;;) {
        ssize_t n = read(loop->wake_fd, &info, sizeof info);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                log_error("read(signalfd): %s", strerror(errno));
            return;
        }
        if (!loop->stopping) {
            begin_stop(loop, strsignal((int)info.ssi_signo));
        } else {
            log_info("%s again", strsignal((int)info.ssi_signo));
            if (!loop->stopped_now)
                stop_now(loop);
        }
    }
}

/* --- Time ------------------------------------------------------------------------------ */

/*
 * Calls protocol_on_timeout() for every connection whose deadline has passed. A
 * connection that is already closing, or whose client has not taken what we sent for a
 * whole timeout, has nothing more coming: it is closed at once.
 */
static void expire_deadlines(struct loop *loop)
{
    for (size_t slot = 0; slot < loop->slots_ever; slot++) {
        struct conn *c = conn_at(loop, slot);
        if (c->state != CONN_OPEN || c->deadline == 0 || c->deadline > loop->now)
            continue;
        c->deadline = 0;
        if (c->closing || conn_has_output(c)) {
            conn_release(c);
            continue;
        }
        protocol_on_timeout(c);
        if (c->deadline == 0)
            c->deadline = loop->now + LINGER_MS; /* the protocol's time is up; ours nearly */
        conn_settle(c);
    }
}

/* --- The loop -------------------------------------------------------------------------- */

void loop_run(struct loop *loop)
{
    loop->now = clock_ms();
    loop->next_sweep = loop->now + SWEEP_INTERVAL_MS;
    loop->accepting = true;
    loop->backend->start(loop);
    while (!loop->stopping || loop->slots_in_use > 0) {
        /* With no connection there is no deadline: sleep until something happens. */
        int wait_ms = -1;
        if (loop->slots_in_use > 0 || loop->accept_paused)
            wait_ms = loop->next_sweep > loop->now ? (int)(loop->next_sweep - loop->now) : 0;
        /* Stopping: wake up when the drain period ends, at the latest. */
        if (loop->stopping && !loop->stopped_now) {
            int left = loop->stop_deadline > loop->now ? (int)(loop->stop_deadline - loop->now) : 0;
            if (wait_ms < 0 || left < wait_ms)
                wait_ms = left;
        }
        loop->backend->wait(loop, wait_ms); /* handles what happened, see loop_begin_batch() */
        /* The drain period is over: what is still open is closed, whatever its client does. */
        if (loop->stopping && !loop->stopped_now && loop->now >= loop->stop_deadline)
            stop_now(loop);
        if (loop->now >= loop->next_sweep) {
            expire_deadlines(loop);
            /* Out of descriptors a second ago? Try again (at --max-conns, it pauses again). */
            if (loop->accept_paused)
                resume_accepting(loop);
            loop->next_sweep = loop->now + SWEEP_INTERVAL_MS;
        }
    }
    loop->backend->finish(loop);
}

void loop_begin_batch(struct loop *loop)
{
    loop->now = clock_ms();
}

/* --- Set-up ---------------------------------------------------------------------------- */

struct loop *loop_create(const struct backend *backend, int listen_fd, int signal_fd, char *err,
                         size_t errlen)
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
    loop->backend = backend;
    loop->listen_fd = listen_fd;
    loop->wake_fd = signal_fd;
    loop->free_slot = NO_SLOT;
    loop->conn_slots = limit.rlim_cur < MAX_SLOTS ? limit.rlim_cur : MAX_SLOTS;
    /* The protocol's state follows each struct conn, aligned as a struct conn is. */
    size_t align = _Alignof(struct conn);
    loop->slot_size = (sizeof(struct conn) + protocol_session_size + align - 1) / align * align;
    /* calloc of a large block maps zero pages: slots never used cost no memory. */
    loop->conns = calloc(loop->conn_slots, loop->slot_size);
    loop->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (loop->conns == NULL || loop->spare_fd < 0) {
        snprintf(err, errlen, "loop set-up: %s", strerror(errno));
        loop_destroy(loop);
        return NULL;
    }
    if (!loop->backend->create(loop, err, errlen)) {
        loop_destroy(loop);
        return NULL;
    }
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
    if (loop->io != NULL)
        loop->backend->destroy(loop);
    if (loop->spare_fd >= 0)
        close(loop->spare_fd);
    buffer_pool_clear(&loop->pool);
    free(loop->conns);
    free(loop);
}
