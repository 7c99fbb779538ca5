/*
 * ceiling.c - the fastest "HTTP server" this machine allows: a yardstick, not a server.
 *
 * It does no HTTP parsing at all. A request ends with an empty line, so it counts the
 * "\r\n\r\n" sequences that arrive on a connection and writes one canned response for
 * each. Whatever the real servers do beyond that (parse, route, format a Date, open a
 * file) is what they cost over this number; what this number costs is the kernel and its
 * TCP stack. It is only correct for requests without a body, which is all the benchmark
 * sends it.
 *
 *   ceiling [--host ADDR] [--port N] [--threads N] [--body BYTES]
 *
 * --threads N   event loops, one per thread, each with its own listening socket on the
 *               same port (SO_REUSEPORT: the kernel spreads new connections over them)
 * --body BYTES  the response body: "Hello, World!" by default, else BYTES bytes of 'x'
 *               (the benchmark's static-file cells, 4 KiB and 1 MiB)
 *
 * Like the project's servers it prints "listening on HOST:PORT" once it is ready and exits
 * with status 0 on SIGINT or SIGTERM (at once: it has nothing worth finishing).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* A response at most this big goes out with writev, many pipelined copies per call;
 * a bigger one with sendfile from an in-memory file, which is what nginx and stage 4 use
 * for files, so that the ceiling is a ceiling for large bodies too. */
enum { SMALL_RESPONSE = 16 * 1024, MAX_IOV = 64, READ_SIZE = 64 * 1024, MAX_EVENTS = 256 };

static const char *response; /* the canned response: head and body */
static size_t response_len;
static int response_fd = -1; /* the same bytes in a memfd, for sendfile (large ones) */

/* What a connection is owed. Indexed by descriptor: a descriptor belongs to one thread
 * at a time, so the threads share the table without locks. */
struct conn {
    unsigned matched; /* how much of "\r\n\r\n" the last bytes read matched (0 to 3) */
    size_t owed; /* responses counted but not completely written */
    size_t sent; /* bytes of the first owed response already written */
    int want_out; /* registered for EPOLLOUT */
};
static struct conn *conns;
static size_t conn_slots;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* An option's value: all of it a number, 0 to INT_MAX, or the program stops here. (atoi
 * would take "80x" for 80, and "x" for 0.) */
static long number(const char *option, const char *value)
{
    char *end;
    long n = strtol(value, &end, 10);
    if (end == value || *end != '\0' || n < 0 || n > INT_MAX) {
        fprintf(stderr, "ceiling: %s takes a number from 0 to %d, not %s\n", option, INT_MAX,
                value);
        exit(2);
    }
    return n;
}

/* Counts the request ends in buf, carrying a partial "\r\n\r\n" over from the last read. */
static size_t count_requests(struct conn *c, const char *buf, size_t len)
{
    static const char end[4] = "\r\n\r\n";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == end[c->matched]) {
            if (++c->matched == 4) {
                n++;
                c->matched = 0;
            }
        } else {
            /* A mismatch may still start a new "\r\n": only '\r' can. */
            c->matched = buf[i] == '\r' ? 1 : 0;
        }
    }
    return n;
}

/* Writes as much of what the connection is owed as the socket takes. Returns -1 when the
 * connection is broken, otherwise 0. */
static int flush(int fd, struct conn *c)
{
    while (c->owed > 0) {
        ssize_t n;
        if (response_len <= SMALL_RESPONSE) {
            /* The rest of the first response, then whole copies: one call for a batch. */
            struct iovec iov[MAX_IOV];
            int count = 0;
            iov[count++] = (struct iovec){(char *)response + c->sent, response_len - c->sent};
            while ((size_t)count < c->owed && count < MAX_IOV)
                iov[count++] = (struct iovec){(char *)response, response_len};
            n = writev(fd, iov, count);
        } else {
            off_t offset = (off_t)c->sent;
            n = sendfile(fd, response_fd, &offset, response_len - c->sent);
        }
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        /* Account for the n bytes: whole responses first, then a partial one. */
        size_t done = c->sent + (size_t)n;
        c->owed -= done / response_len;
        c->sent = done % response_len;
    }
    return 0;
}

static void close_conn(int epfd, int fd)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

/* One event loop: its own listening socket, its own epoll, level-triggered. */
static void *loop(void *arg)
{
    int listen_fd = *(const int *)arg;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listen_fd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0)
        die("epoll_ctl");

    char buf[READ_SIZE];
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int ready = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (ready < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (fd == listen_fd) {
                /* Everyone waiting: one wakeup may stand for many connections. Stops at
                 * EAGAIN (the queue is empty) or any error (out of descriptors: the
                 * rest wait in the queue). */
                int cfd;
                while ((cfd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    if ((size_t)cfd >= conn_slots) {
                        close(cfd);
                        continue;
                    }
                    int one = 1;
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conns[cfd] = (struct conn){0};
                    ev = (struct epoll_event){.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &ev);
                }
                continue;
            }

            struct conn *c = &conns[fd];
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n == 0 || (n < 0 && errno != EAGAIN)) {
                    close_conn(epfd, fd); /* the client is gone */
                    continue;
                }
                if (n > 0)
                    c->owed += count_requests(c, buf, (size_t)n);
            }
            if (flush(fd, c) < 0) {
                close_conn(epfd, fd);
                continue;
            }
            /* Ask for EPOLLOUT only while the socket refuses bytes. */
            int want_out = c->owed > 0;
            if (want_out != c->want_out) {
                ev = (struct epoll_event){.events = EPOLLIN | (want_out ? EPOLLOUT : 0),
                                          .data.fd = fd};
                epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
                c->want_out = want_out;
            }
        }
    }
    return NULL;
}

static int listen_on(const char *host, int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "ceiling: --host must be an IPv4 address: %s\n", host);
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        die("socket");
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("bind");
    if (listen(fd, 4096) < 0)
        die("listen");
    return fd;
}

/* Builds the canned response, and for a large one a memfd holding the same bytes. */
static void make_response(long body_size)
{
    const char *type = body_size < 0 ? "text/plain" : "application/octet-stream";
    size_t body_len = body_size < 0 ? 13 : (size_t)body_size;
    char head[256];
    int head_len = snprintf(head, sizeof head,
                            "HTTP/1.1 200 OK\r\nServer: ceiling\r\nContent-Type: %s\r\n"
                            "Content-Length: %zu\r\n\r\n",
                            type, body_len);
    response_len = (size_t)head_len + body_len;
    char *r = malloc(response_len);
    if (r == NULL)
        die("malloc");
    memcpy(r, head, (size_t)head_len);
    if (body_size < 0)
        // NOLINTNEXTLINE(bugprone-not-null-terminated-result): a body, not a C string
        memcpy(r + head_len, "Hello, World!", 13);
    else
        memset(r + head_len, 'x', body_len);
    response = r;

    if (response_len > SMALL_RESPONSE) {
        response_fd = memfd_create("response", MFD_CLOEXEC);
        if (response_fd < 0 || write(response_fd, r, response_len) != (ssize_t)response_len)
            die("memfd");
    }
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 8080;
    long threads = 1, body = -1;
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--host") == 0 && value)
            host = value;
        else if (strcmp(argv[i], "--port") == 0 && value)
            port = (int)number("--port", value);
        else if (strcmp(argv[i], "--threads") == 0 && value)
            threads = number("--threads", value);
        else if (strcmp(argv[i], "--body") == 0 && value)
            body = number("--body", value);
        else {
            fprintf(stderr,
                    "ceiling: bad option %s\n"
                    "usage: ceiling [--host ADDR] [--port N] [--threads N] "
                    "[--body BYTES]\n",
                    argv[i]);
            return 2;
        }
        i++;
    }
    if (threads < 1 || threads > 64 || port < 0 || port > 65535) {
        fprintf(stderr, "ceiling: --threads must be 1 to 64, --port 0 to 65535\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    make_response(body);

    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    conn_slots = limit.rlim_cur;
    conns = calloc(conn_slots, sizeof *conns);
    if (conns == NULL)
        die("calloc");

    /* The first socket learns the port (--port 0: the kernel's choice); the others join it. */
    static int fds[64]; /* each thread is given its element's address */
    fds[0] = listen_on(host, port);
    struct sockaddr_in bound;
    socklen_t bound_len = sizeof bound;
    if (getsockname(fds[0], (struct sockaddr *)&bound, &bound_len) < 0)
        die("getsockname");
    // NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage): LLVM issue 60482
    port = ntohs(bound.sin_port);
    for (long t = 1; t < threads; t++)
        fds[t] = listen_on(host, port);

    /* SIGINT and SIGTERM are blocked in every thread; main waits for them below. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    for (long t = 0; t < threads; t++) {
        pthread_t id;
        if (pthread_create(&id, NULL, loop, &fds[t]) != 0)
            die("pthread_create");
    }
    printf("listening on %s:%d\n", host, port);
    fflush(stdout);

    int sig;
    sigwait(&stop, &sig);
    return 0;
}
