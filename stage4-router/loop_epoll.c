/*
 * loop_epoll.c - many clients on one thread: an epoll event loop.
 *
 * The loop asks epoll_wait() which of its descriptors are ready, handles each ready one
 * without blocking, and asks again. Every socket is non-blocking: a call that would block
 * fails with EAGAIN instead, and the loop moves on to the next client.
 *
 * Level-triggered, not edge-triggered. epoll keeps reporting a socket for as long as it
 * is readable, so the loop reads once per wakeup and trusts epoll to come back: one busy
 * client cannot starve the others, and no read() is spent learning that a socket is
 * empty. (Edge-triggered mode reports a socket only when new data arrives, so the loop
 * would have to read until EAGAIN every time.) The cost is an epoll_ctl() whenever the
 * interest changes (pausing reads, waiting to write), which is the rare case.
 *
 * Connections live in a table indexed by descriptor: the kernel hands out the lowest free
 * descriptor, so the table stays dense and an event finds its connection without a
 * search. Each event also carries a generation number, so an event for a connection that
 * was closed earlier in the same batch is recognised even when a new connection has
 * already taken its descriptor.
 *
 * Memory: the loop reads into one buffer that all its connections share. A connection
 * owns a buffer only for bytes its protocol has not consumed yet, or bytes the kernel
 * would not take yet (buffer.h). Backpressure bounds the second kind: the loop stops
 * reading from a connection with more than OUTPUT_HIGH_WATER bytes unsent until they
 * drain, so a client that sends without reading fills its own socket buffers, not ours.
 *
 * Files: a connection's output is its bytes, then at most one file, sent with sendfile()
 * straight from the page cache to the socket. A protocol that queues a file pauses its
 * connection until the file is out, so the answer to a pipelined request cannot overtake
 * it; the loop then delivers the bytes it held back.
 *
 * Time: each connection has at most one deadline, set by its protocol. Once a second the
 * loop walks the table and calls protocol_on_timeout() for those that have passed. A walk
 * over 20,000 slots takes microseconds; a timer wheel or heap would save that at the cost
 * of more code than the rest of the timing put together.
 *
 * Closing: when the protocol closes a connection whose client may still be sending, the
 * loop shuts down its own side first and reads and discards until the client closes or
 * LINGER_MS passes (a "lingering close"). Closing at once would make the kernel answer
 * the client's next bytes with a reset, and a reset can destroy our last response in the
 * client's buffers before it reads it (RFC 9112 section 9.6).
 */
#include "loop.h"
#include "buffer.h"
#include "log.h"
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    READ_SIZE = 64 * 1024, /* the most one read() takes from one client */
    OUTPUT_HIGH_WATER = 64 * 1024, /* stop reading a client with more than this unsent */
    MAX_EVENTS = 256, /* events taken from the kernel per epoll_wait() */
    SWEEP_INTERVAL_MS = 1000, /* how often deadlines are checked */
    LINGER_MS = 2000, /* the longest a closing connection is read and discarded */
};

/*
 * What an epoll event's data names: one of the two special descriptors, or a connection
 * as (generation << 32 | descriptor), see conn_token().
 */
#define TOKEN_LISTENER UINT64_MAX
#define TOKEN_SIGNALS  (UINT64_MAX - 1)

struct conn {
    struct loop *loop;
    int fd;
    uint32_t generation; /* bumped each time this slot takes a new connection */
    bool open;
    bool peer_closed; /* read() returned 0: the client will send nothing more */
    bool closing; /* close once the output has been sent */
    bool broken; /* out of memory for this connection: close it at once */
    bool lingering; /* our side is shut down; reading and discarding until the client's is */
    bool paused; /* the protocol wants no input for now (conn_pause) */
    bool resumed; /* conn_resume() was called: deliver what was held back */
    bool file_sent; /* the file just went out: tell the protocol */
    uint32_t interest; /* the events epoll watches for on this socket */
    uint64_t deadline; /* when protocol_on_timeout() is due (loop clock, ms); 0 = never */
    struct buffer *in; /* bytes received that the protocol has not consumed */
    struct buffer *out; /* bytes queued that the kernel has not taken */
    int file_fd; /* a file to send after out, or -1 */
    off_t file_offset; /* where in the file to send from */
    size_t file_left; /* how much of it is still to send */
    struct session session;
};

struct loop {
    int epoll_fd;
    int listen_fd; /* -1 once the loop stops accepting */
    int signal_fd;
    int spare_fd; /* a descriptor held in reserve for EMFILE, see shed_connection() */
    bool stopping;
    bool stopped_now; /* every connection has been closed at once */
    unsigned shutdown_timeout_ms; /* the drain period, see loop_set_shutdown_timeout() */
    uint64_t stop_deadline; /* when the drain period ends (loop clock, ms) */
    size_t open_count;
    size_t max_conns; /* 0: no limit but the descriptors, see loop_set_max_conns() */
    bool accept_paused; /* at max_conns: epoll does not watch the listening socket */
    uint64_t now; /* CLOCK_MONOTONIC in ms, read once per wakeup */
    uint64_t next_sweep; /* when to look for passed deadlines next */
    struct conn *conns; /* indexed by descriptor */
    size_t conn_slots;
    struct buffer_pool pool;
    char read_buffer[READ_SIZE];
};

static uint64_t conn_token(const struct conn *c)
{
    return (uint64_t)c->generation << 32 | (uint32_t)c->fd;
}

/* Monotonic: wall-clock changes (NTP, an administrator) must not fire or delay timeouts. */
static uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t unsent_bytes(const struct conn *c)
{
    return c->out != NULL ? buffer_length(c->out) : 0;
}

static bool has_output(const struct conn *c)
{
    return c->out != NULL || c->file_fd >= 0;
}

static void resume_accepting(struct loop *loop);

/* Closes at once, dropping anything unsent. close() also takes the socket out of epoll. */
static void conn_release(struct conn *c)
{
    struct loop *loop = c->loop;
    close(c->fd);
    if (c->in != NULL)
        buffer_give_back(&loop->pool, c->in);
    if (c->out != NULL)
        buffer_give_back(&loop->pool, c->out);
    if (c->file_fd >= 0)
        close(c->file_fd);
    c->in = c->out = NULL;
    c->file_fd = -1;
    c->open = false;
    loop->open_count--;
    if (loop->accept_paused && loop->listen_fd >= 0)
        resume_accepting(loop); /* below the limit again */
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

void conn_set_timeout(struct conn *c, unsigned ms)
{
    c->deadline = ms == 0 ? 0 : c->loop->now + ms;
}

/*
 * Writes queued output until it is all sent or the socket's send buffer is full. Returns
 * false if the client is gone (EPIPE, ECONNRESET).
 */
static bool flush_output(struct conn *c)
{
    while (c->out != NULL) {
        ssize_t n = write(c->fd, buffer_data(c->out), buffer_length(c->out));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN; /* full: EPOLLOUT will say when there is room again */
        }
        buffer_consume(c->out, (size_t)n);
        if (buffer_length(c->out) == 0) {
            buffer_give_back(&c->loop->pool, c->out);
            c->out = NULL;
        }
    }
    /* The bytes are out; now the file, from the page cache to the socket without a copy. */
    while (c->file_fd >= 0) {
        ssize_t n = sendfile(c->fd, c->file_fd, &c->file_offset, c->file_left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN;
        }
        if (n == 0) {
            /* The file shrank under us: the promised Content-Length can no longer be met. */
            log_error("sendfile: the file ended early");
            return false;
        }
        c->file_left -= (size_t)n;
        if (c->file_left == 0) {
            close(c->file_fd);
            c->file_fd = -1;
            c->file_sent = true;
        }
    }
    return true;
}

/* Tells epoll what this connection waits for now, if that changed. */
static bool update_interest(struct conn *c)
{
    uint32_t want = 0;
    if (c->lingering ||
        (!c->peer_closed && !c->closing && !c->paused && unsent_bytes(c) <= OUTPUT_HIGH_WATER))
        want |= EPOLLIN;
    if (has_output(c))
        want |= EPOLLOUT;
    if (want == c->interest)
        return true;
    struct epoll_event ev = {.events = want, .data.u64 = conn_token(c)};
    if (epoll_ctl(c->loop->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        log_error("epoll_ctl: %s", strerror(errno));
        return false;
    }
    c->interest = want;
    return true;
}

static void deliver(struct conn *c, char *data, size_t len);

/*
 * After every event and every protocol callback: send what was queued, tell the protocol
 * when a file is out, deliver held-back input once it resumes, then close the connection
 * if it is finished, or update what epoll watches for.
 */
static void settle(struct conn *c)
{
    for (;;) {
        if (c->broken) {
            log_error("out of memory or a protocol error: closing a connection");
            conn_release(c);
            return;
        }
        if (!flush_output(c)) {
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
            /* Requests may be waiting here already: no read would ever bring them again. */
            if (c->in != NULL && !c->paused && !c->closing) {
                deliver(c, NULL, 0);
                continue;
            }
        }
        break;
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
    if (!update_interest(c))
        conn_release(c);
}

/* Hands newly read bytes to the protocol, after any it left unconsumed last time. */
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
        /* The shared read buffer is about to be reused: keep the rest in one of our own. */
        c->in = buffer_take(&c->loop->pool);
        if (c->in == NULL || !buffer_append(&c->in, data + used, len - used))
            c->broken = true;
    }
}

static void receive(struct conn *c)
{
    struct loop *loop = c->loop;
    ssize_t n = read(c->fd, loop->read_buffer, sizeof loop->read_buffer);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return; /* level-triggered: epoll reports the socket again if it is readable */
        if (errno != ECONNRESET)
            log_error("read: %s", strerror(errno));
        conn_release(c);
        return;
    }
    if (c->lingering) {
        if (n == 0)
            conn_release(c); /* the client has closed too: the close is complete */
        return; /* bytes sent after our close are discarded */
    }
    if (n == 0) {
        c->peer_closed = true;
        protocol_on_eof(c);
    } else {
        deliver(c, loop->read_buffer, (size_t)n);
    }
    settle(c);
}

static void handle_conn_event(struct conn *c, uint32_t events)
{
    if (events & EPOLLERR) {
        /* A pending socket error, typically a reset: nothing more can be sent or read. */
        conn_release(c);
        return;
    }
    /* EPOLLHUP without EPOLLIN: both directions are shut; read() will say how. */
    if ((events & (EPOLLIN | EPOLLHUP)) && !c->peer_closed) {
        if (!c->paused || c->lingering) {
            receive(c);
            return; /* receive() settles, which also writes */
        }
        if (events & EPOLLHUP) {
            conn_release(c); /* paused, and the client is gone both ways: no one to answer */
            return;
        }
    }
    if (events & (EPOLLOUT | EPOLLHUP))
        settle(c);
}

static void conn_open(struct loop *loop, int fd)
{
    if ((size_t)fd >= loop->conn_slots) {
        /* Only possible if the descriptor limit was raised after the loop was created. */
        log_error("descriptor %d is beyond the connection table; closing it", fd);
        close(fd);
        return;
    }
    /*
     * Nagle's algorithm holds back a small write while earlier data is unacknowledged,
     * hoping to merge it with the next. Our writes are already whole replies, and the
     * client's delayed ACK would stall each one by up to 40 ms: turn it off.
     */
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        log_error("setsockopt(TCP_NODELAY): %s", strerror(errno)); /* slower, still correct */

    struct conn *c = &loop->conns[fd];
    *c = (struct conn){
        .loop = loop,
        .fd = fd,
        .generation = c->generation + 1,
        .open = true,
        .interest = EPOLLIN,
        .file_fd = -1,
    };
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = conn_token(c)};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        log_error("epoll_ctl: %s", strerror(errno));
        close(fd);
        c->open = false;
        return;
    }
    loop->open_count++;
    protocol_on_open(c);
    settle(c);
}

/*
 * Out of descriptors. The client waiting in the accept queue cannot be accepted, yet the
 * listening socket stays readable, so a level-triggered loop would wake up again at once,
 * forever, at full CPU. Instead: free the spare descriptor kept for this moment, accept
 * the client with it and close it at once (it sees a closed connection, not a hang), and
 * take the spare back. Clients already connected go on being served. (The trick is
 * libuv's; nginx instead stops accepting for a while.)
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
 * --max-conns: at the limit, the listening socket leaves epoll's interest (events 0).
 * Level-triggered, it would otherwise be reported at every epoll_wait() while clients
 * wait, and the loop would spin. The clients wait in the kernel's accept queue, as for
 * any busy server, and conn_release() lets the next one in. If epoll cannot be told,
 * accepting past the limit is the lesser evil than spinning.
 */
static bool pause_accepting(struct loop *loop)
{
    struct epoll_event ev = {.events = 0, .data.u64 = TOKEN_LISTENER};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_MOD, loop->listen_fd, &ev) < 0) {
        log_error("epoll_ctl: %s", strerror(errno));
        return false;
    }
    loop->accept_paused = true;
    return true;
}

/* Stays paused if epoll cannot be told; the next connection to close tries again. */
static void resume_accepting(struct loop *loop)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TOKEN_LISTENER};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_MOD, loop->listen_fd, &ev) < 0) {
        log_error("epoll_ctl: %s", strerror(errno));
        return;
    }
    loop->accept_paused = false;
}

/* Accepts every client waiting in the queue: one wakeup may stand for many connections. */
static void accept_clients(struct loop *loop)
{
    size_t shed = 0;
    for (;;) {
        if (loop->max_conns > 0 && loop->open_count >= loop->max_conns && pause_accepting(loop))
            break;
        int fd = accept4(loop->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            conn_open(loop, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue; /* a signal, or a client that gave up while waiting in the queue */
        if ((errno == EMFILE || errno == ENFILE) && shed_connection(loop)) {
            shed++;
            continue;
        }
        if (errno != EAGAIN)
            log_error("accept: %s", strerror(errno));
        break; /* EAGAIN: the queue is empty */
    }
    if (shed > 0)
        log_error("out of descriptors: closed %zu new connection(s) at once", shed);
}

static void stop_accepting(struct loop *loop)
{
    close(loop->listen_fd); /* new clients are now refused by the kernel */
    loop->listen_fd = -1;
}

/* Closes every connection at once, whatever it is doing. */
static void stop_now(struct loop *loop)
{
    log_info("closing %zu connection(s) now", loop->open_count);
    loop->stopped_now = true;
    for (size_t fd = 0; fd < loop->conn_slots; fd++)
        if (loop->conns[fd].open)
            conn_release(&loop->conns[fd]);
}

static void handle_signals(struct loop *loop)
{
    struct signalfd_siginfo info;
    for (;;) {
        ssize_t n = read(loop->signal_fd, &info, sizeof info);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                log_error("read(signalfd): %s", strerror(errno));
            return;
        }
        if (!loop->stopping) {
            log_info("%s: stopping; %zu connection(s) to finish", strsignal((int)info.ssi_signo),
                     loop->open_count);
            loop->stopping = true;
            loop->stop_deadline = loop->now + loop->shutdown_timeout_ms;
            stop_accepting(loop);
            for (size_t fd = 0; fd < loop->conn_slots; fd++) {
                struct conn *c = &loop->conns[fd];
                if (c->open) {
                    protocol_on_stop(c);
                    settle(c);
                }
            }
        } else {
            log_info("%s again", strsignal((int)info.ssi_signo));
            if (!loop->stopped_now)
                stop_now(loop);
        }
    }
}

/*
 * Calls protocol_on_timeout() for every connection whose deadline has passed. A
 * connection that is already closing, or whose client has not taken what we sent for a
 * whole timeout, has nothing more coming: it is closed at once.
 */
static void expire_deadlines(struct loop *loop)
{
    for (size_t fd = 0; fd < loop->conn_slots; fd++) {
        struct conn *c = &loop->conns[fd];
        if (!c->open || c->deadline == 0 || c->deadline > loop->now)
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

static void dispatch(struct loop *loop, const struct epoll_event *ev)
{
    if (ev->data.u64 == TOKEN_LISTENER) {
        if (loop->listen_fd >= 0)
            accept_clients(loop);
        return;
    }
    if (ev->data.u64 == TOKEN_SIGNALS) {
        handle_signals(loop);
        return;
    }
    struct conn *c = &loop->conns[(uint32_t)ev->data.u64];
    if (!c->open || c->generation != (uint32_t)(ev->data.u64 >> 32))
        return; /* closed earlier in this batch; the descriptor may be someone else's now */
    handle_conn_event(c, ev->events);
}

void loop_run(struct loop *loop)
{
    struct epoll_event events[MAX_EVENTS];
    loop->now = clock_ms();
    loop->next_sweep = loop->now + SWEEP_INTERVAL_MS;
    while (!loop->stopping || loop->open_count > 0) {
        /* With no connection there is no deadline: sleep until something happens. */
        int wait_ms = -1;
        if (loop->open_count > 0)
            wait_ms = loop->next_sweep > loop->now ? (int)(loop->next_sweep - loop->now) : 0;
        /* Stopping: wake up when the drain period ends, at the latest. */
        if (loop->stopping && !loop->stopped_now) {
            int left = loop->stop_deadline > loop->now ? (int)(loop->stop_deadline - loop->now) : 0;
            if (wait_ms < 0 || left < wait_ms)
                wait_ms = left;
        }
        int n = epoll_wait(loop->epoll_fd, events, MAX_EVENTS, wait_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        loop->now = clock_ms();
        for (int i = 0; i < n; i++)
            dispatch(loop, &events[i]);
        if (loop->now >= loop->next_sweep) {
            expire_deadlines(loop);
            loop->next_sweep = loop->now + SWEEP_INTERVAL_MS;
        }
        /* The drain period is over: what is still open is closed, whatever its client does. */
        if (loop->stopping && !loop->stopped_now && loop->now >= loop->stop_deadline)
            stop_now(loop);
    }
    if (loop->listen_fd >= 0)
        stop_accepting(loop);
}

static bool watch(struct loop *loop, int fd, uint64_t token, char *err, size_t errlen)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = token};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
        return false;
    }
    return true;
}

struct loop *loop_create(int listen_fd, int signal_fd, char *err, size_t errlen)
{
    /* The table has a slot for every descriptor the process may hold. */
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
    loop->signal_fd = signal_fd;
    loop->conn_slots = limit.rlim_cur;
    /* calloc of a large block maps zero pages: slots no descriptor reaches cost no memory. */
    loop->conns = calloc(loop->conn_slots, sizeof *loop->conns);
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    loop->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (loop->conns == NULL || loop->epoll_fd < 0 || loop->spare_fd < 0) {
        snprintf(err, errlen, "loop set-up: %s", strerror(errno));
        loop_destroy(loop);
        return NULL;
    }
    if (!watch(loop, listen_fd, TOKEN_LISTENER, err, errlen) ||
        !watch(loop, signal_fd, TOKEN_SIGNALS, err, errlen)) {
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
    if (loop->epoll_fd >= 0)
        close(loop->epoll_fd);
    if (loop->spare_fd >= 0)
        close(loop->spare_fd);
    buffer_pool_clear(&loop->pool);
    free(loop->conns);
    free(loop);
}
