/*
 * echoload.c - drives an echo server through many connections and reports its throughput.
 *
 *   echoload --port N [--host ADDR] [--connections C] [--seconds S] [--window BYTES]
 *
 * Why a program of our own: Debian's load generators speak HTTP (wrk, h2load, ab) or
 * their own protocol to their own server (iperf3, netperf). None sends bytes to a plain
 * echo server over many connections at once and checks that the same bytes come back.
 *
 * Each connection streams a known byte pattern and keeps at most --window bytes in flight
 * (sent and not yet echoed), so neither side's socket buffers fill up and the figure is
 * the server's round trip, not buffering. Every byte that comes back is compared with what
 * was sent. One thread, one epoll loop: the client costs as little as it can.
 *
 * Output, one line: "connections C seconds T bytes B mbps X errors E", where B counts the
 * echoed bytes received (each also crossed the loopback once on the way out) and X is
 * B / T in MB/s (10^6 bytes per second). The exit status is 1 if the echo was wrong.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CHUNK = 16 * 1024, PERIOD = 251 }; /* a prime period: misplaced bytes do not match */

struct conn {
    int fd;
    unsigned long long sent; /* bytes written so far */
    unsigned long long received; /* bytes echoed back so far */
    int want_out;
};

/* pattern[i] = i % PERIOD, long enough to compare a whole read or write at any phase. */
static unsigned char pattern[CHUNK * 4 + PERIOD];

/* An option's value, or -1 (which the checks in main refuse) unless all of it is a number:
 * atoi and atof would take "80x" for 80, and "x" for 0. */
static long whole_number(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);
    return end == s || *end != '\0' || n < 0 || n > INT_MAX ? -1 : n;
}

static double real_number(const char *s)
{
    char *end;
    double n = strtod(s, &end);
    return end == s || *end != '\0' ? -1 : n;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_interest(int epfd, struct conn *c, int want_out)
{
    if (want_out == c->want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = -1;
    long connections = 100, window = 64 * 1024;
    double seconds = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0)
            host = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            port = (int)whole_number(argv[i + 1]);
        else if (strcmp(argv[i], "--connections") == 0)
            connections = whole_number(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = real_number(argv[i + 1]);
        else if (strcmp(argv[i], "--window") == 0)
            window = whole_number(argv[i + 1]);
        else
            port = -1, i = argc; /* unknown option: print usage below */
    }
    if (port <= 0 || connections < 1 || seconds <= 0 || window < 1 || window > CHUNK * 4) {
        fprintf(stderr,
                "usage: echoload --port N [--host ADDR] [--connections C] "
                "[--seconds S] [--window BYTES (1 to %d)]\n",
                CHUNK * 4);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)(i % PERIOD);

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "echoload: --host must be an IPv4 address\n");
        return 2;
    }

    int epfd = epoll_create1(0);
    struct conn *conns = calloc((size_t)connections, sizeof *conns);
    if (epfd < 0 || conns == NULL) {
        perror("echoload");
        return 1;
    }
    /* Non-blocking connects: a server that serves one client at a time (stage 1) leaves
     * the others in its accept queue, which is part of what is being measured. */
    for (long i = 0; i < connections; i++) {
        struct conn *c = &conns[i];
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
            perror("echoload: connect");
            return 1;
        }
        c->want_out = 1; /* first write once the connection is up */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    }

    unsigned long long total = 0, errors = 0;
    unsigned char buf[CHUNK * 4];
    double start = now(), end = start + seconds;
    struct epoll_event events[256];
    // NOLINTNEXTLINE(cert-flp30-c,clang-analyzer-security.FloatLoopCounter): t is the clock
    for (double t = start; t < end; t = now()) {
        int ready = epoll_wait(epfd, events, 256, (int)((end - t) * 1000) + 1);
        for (int i = 0; i < ready; i++) {
            struct conn *c = events[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                ssize_t n = read(c->fd, buf, sizeof buf);
                if (n > 0) {
                    /* The bytes must be exactly the ones sent at this stream offset. */
                    if (c->received + (unsigned long long)n > c->sent ||
                        memcmp(buf, pattern + c->received % PERIOD, (size_t)n) != 0)
                        errors++;
                    c->received += (unsigned long long)n;
                    total += (unsigned long long)n;
                } else if (n == 0 || errno != EAGAIN) {
                    errors++; /* the server closed or reset an echo connection */
                    close(c->fd);
                    c->fd = -1;
                    continue;
                }
            }
            /* Top up the window: write until it is full or the socket is. */
            int failed = 0;
            while (c->sent - c->received < (unsigned long long)window) {
                size_t len = (size_t)((unsigned long long)window - (c->sent - c->received));
                if (len > CHUNK)
                    len = CHUNK;
                ssize_t n = write(c->fd, pattern + c->sent % PERIOD, len);
                if (n < 0) {
                    failed = errno != EAGAIN && errno != ENOTCONN;
                    break;
                }
                c->sent += (unsigned long long)n;
            }
            if (failed) {
                errors++;
                close(c->fd);
                c->fd = -1;
                continue;
            }
            /* Wake up for writability only while the window is open (the socket was full);
             * otherwise the next echo that arrives reopens it. */
            set_interest(epfd, c, c->sent - c->received < (unsigned long long)window);
        }
    }
    double elapsed = now() - start;
    for (long i = 0; i < connections; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    printf("connections %ld seconds %.3f bytes %llu mbps %.1f errors %llu\n", connections, elapsed,
           total, (double)total / elapsed / 1e6, errors);
    return errors > 0 ? 1 : 0;
}
