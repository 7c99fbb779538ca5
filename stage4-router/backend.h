/*
 * backend.h - between the connection layer (conn.c) and a backend (loop_epoll.c).
 *
 * conn.c holds the rules of a connection: what is buffered, when input is wanted, what
 * goes out next, when it closes, when it times out. A backend holds only the mechanics of
 * one kernel interface: how to wait, how to receive, how to send, how to close. The
 * protocol never sees this file. (Redis splits ae.c from ae_epoll.c the same way, libuv
 * its stream.c from linux.c.)
 *
 * The interface is shaped for both kinds of kernel interface. With readiness (epoll) the
 * kernel says a socket is ready and the backend makes the call; with completion (io_uring,
 * stage 6) the backend hands the kernel the work and hears later that it is done. So a
 * backend sends from conn.c's buffer and reports how much went (conn_sent()) whenever
 * that is, and a close may finish after it is asked for (conn_closed()).
 */
#ifndef BACKEND_H
#define BACKEND_H

#include "buffer.h"
#include "loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A connection slot's life: free, open (the protocol's), then closing (the backend's). */
enum conn_state {
    SLOT_FREE,
    CONN_OPEN, /* accepted; the protocol is called */
    CONN_DRAINING, /* released; the backend is letting go of the socket */
};

struct conn {
    struct loop *loop;
    int fd;
    uint32_t slot; /* where it is in loop->conns */
    uint32_t generation; /* bumped each time this slot takes a new connection */
    uint32_t next_free; /* the next free slot, while this one is free */
    enum conn_state state;
    bool peer_closed; /* the client will send nothing more */
    bool eof_pending; /* ... while paused: protocol_on_eof() is still owed */
    bool closing; /* close once the output has been sent */
    bool client_done; /* ... and the client has said it sends nothing more: no lingering */
    bool broken; /* out of memory, or a protocol error: close at once */
    bool lingering; /* our side is shut down; receiving and discarding until the client's is */
    bool paused; /* the protocol wants no input for now (conn_pause) */
    bool resumed; /* conn_resume() was called: deliver what was held back */
    bool file_sent; /* the file just went out: tell the protocol */
    uint64_t deadline; /* when protocol_on_timeout() is due (loop clock, ms); 0 = never */
    struct buffer *in; /* bytes received that the protocol has not consumed */
    size_t input_expected; /* ... and how long they will be, once whole (conn_expect_input) */
    struct buffer *outgoing; /* bytes being sent: the kernel may be reading them */
    struct buffer *out; /* bytes queued behind them */
    int file_fd; /* a file to send after the bytes, or -1 */
    off_t file_offset; /* where in the file to send from next */
    size_t file_left; /* how much of it is still to send */
    uint32_t epoll_events; /* loop_epoll.c: what epoll watches for on this socket */
    /* The protocol's state for the connection follows in the slot: protocol_session_size
     * bytes, which conn_session() points to. */
};

struct backend;

struct loop {
    const struct backend *backend;
    void *io; /* the backend's own state */
    int listen_fd; /* -1 once the loop has stopped accepting */
    int wake_fd; /* the signalfd: a stop signal wakes the loop */
    int spare_fd; /* a descriptor held in reserve for EMFILE, see shed_connection() */
    bool accepting; /* the backend is asked to accept */
    bool accept_paused; /* at max_conns or out of descriptors: not accepting for now */
    bool stopping;
    bool stopped_now; /* every connection has been closed at once */
    unsigned shutdown_timeout_ms; /* the drain period, see loop_set_shutdown_timeout() */
    uint64_t stop_deadline; /* when the drain period ends (loop clock, ms) */
    size_t open_count; /* connections in state CONN_OPEN */
    size_t slots_in_use; /* connections open or draining */
    size_t max_conns; /* 0: no limit but the descriptors, see loop_set_max_conns() */
    uint64_t now; /* CLOCK_MONOTONIC in ms, read once per wakeup */
    uint64_t batch; /* batches of events taken from the kernel so far (conn_batch) */
    uint64_t next_sweep; /* when to look for passed deadlines next */
    char *conns; /* the slots, slot_size bytes each: see conn_at() */
    size_t slot_size;
    size_t conn_slots; /* the size of conns: a slot for every descriptor we may hold */
    size_t slots_ever; /* slots used so far: only conns[0..slots_ever) are ever walked */
    uint32_t free_slot; /* the most recently freed slot below slots_ever, or NO_SLOT */
    struct buffer_pool pool;
};

#define NO_SLOT UINT32_MAX

/*
 * A backend: the handful of things conn.c asks of a kernel interface. Each function
 * reports what happened by calling the conn_* and loop_* functions further below.
 */
struct backend {
    const char *name;
    /* Sets up loop->io for listen_fd; false with a message in err. */
    bool (*create)(struct loop *loop, char *err, size_t errlen);
    /* On the loop's own thread, before the first wait: start watching the listening
     * socket and wake_fd. */
    void (*start)(struct loop *loop);
    /* Waits until something happens or timeout_ms pass (-1: no limit), and handles it. */
    void (*wait)(struct loop *loop, int timeout_ms);
    /* Accept new clients, or stop for now (loop->accepting says which). */
    void (*update_accepting)(struct loop *loop);
    /* Stop accepting for good: close listen_fd, now or once the kernel lets go of it. */
    void (*stop_accepting)(struct loop *loop);
    /* A new connection: start watching it. False if that failed (c is then released). */
    bool (*open)(struct conn *c);
    /* Send what c has queued (conn_outgoing(), then its file), as far as the kernel takes it
     * now or starts it. False if the client is gone. */
    bool (*send)(struct conn *c);
    /* c's wishes changed: receive if conn_wants_input(c), and wait for room to send if it
     * has output left. False if the kernel refused. */
    bool (*update)(struct conn *c);
    /* Stop everything on c and close its socket; call conn_closed(c) when that is done. */
    void (*close)(struct conn *c);
    /* After the last connection: close listen_fd if still open, and wait until the kernel
     * holds nothing of the loop's. */
    void (*finish)(struct loop *loop);
    void (*destroy)(struct loop *loop);
};

/* For a backend: what conn.c offers. */

/* Whether c wants input now. */
bool conn_wants_input(const struct conn *c);

/* The bytes to send next, or NULL. They stay where they are until conn_sent() says how
 * many went; bytes queued meanwhile go into another buffer behind them. */
struct buffer *conn_outgoing(struct conn *c);

/* n bytes of conn_outgoing() went out. */
void conn_sent(struct conn *c, size_t n);

/* n more bytes of c's file went out (or on their way); the last of them ends the file. */
void conn_file_sent(struct conn *c, size_t n);

/* Whether anything is still to be sent: bytes, or a file. */
bool conn_has_output(const struct conn *c);

/* len bytes arrived for c (data is the backend's, valid during the call). */
void conn_received(struct conn *c, char *data, size_t len);

/*
 * Where the backend may receive c's next bytes itself, and how many fit there (*room): the
 * free end of c's own input buffer, while room is kept there for a message still arriving
 * (conn_expect_input()). NULL otherwise: the backend receives into its own buffer and
 * calls conn_received().
 */
char *conn_input_room(struct conn *c, size_t *room);

/* len bytes arrived where conn_input_room() said. */
void conn_received_in_place(struct conn *c, size_t len);

/* The client closed its side. */
void conn_peer_closed(struct conn *c);

/* c failed (err an errno value: a reset, say): close it at once. */
void conn_failed(struct conn *c, int err, const char *what);

/* After each event on c: tell the protocol what it is owed, send, close or update. */
void conn_settle(struct conn *c);

/* The backend has let go of c's socket and closed it: the slot is free again. */
void conn_closed(struct conn *c);

/* The open connection an event names, or NULL if it has closed since. */
struct conn *loop_find_conn(struct loop *loop, uint32_t slot, uint32_t generation);

/* The backend accepted fd. */
void loop_accepted_fd(struct loop *loop, int fd);

/* Accepting failed with err. True if accepting may go on at once; otherwise the loop has
 * paused accepting until a connection closes or a second passes. */
bool loop_accept_failed(struct loop *loop, int err);

/* After each wait, before handling what it brought: reads the time, once for all of it. */
void loop_begin_batch(struct loop *loop);

/* wake_fd is readable: a stop signal has arrived. */
void loop_woken(struct loop *loop);

#endif
