/*
 * Stage 6: stage 5 with a second backend. Each loop thread waits for and does its I/O
 * through its own io_uring (loop_uring.c), or through epoll as in stage 5 (--io epoll);
 * the connection layer, the protocol and everything else are stage 5's.
 *
 * Stage 5: one event loop per core, and a worker pool for blocking handlers.
 *
 * Stage 4's server, run by --threads event loops at once, each on its own thread with its
 * own listening socket. The sockets share the port through SO_REUSEPORT: the kernel
 * hashes each new connection's addresses and ports to pick one of them, so connections
 * spread evenly over the loops and no loop ever hands a connection to another. Nothing is
 * shared on the way of a request, so nothing is locked. The known downside: the spread is
 * blind to load. A loop stuck with a few heavy clients keeps receiving its share of new
 * ones, and connections already accepted never move. The other classic design, one thread
 * that accepts and hands sockets round-robin to the loops, can balance, but every
 * connection then crosses threads through a queue and a wakeup; for many short, similar
 * requests, which is what this server is for, the first design is simpler and faster.
 *
 * Handlers that block (/delay/:ms) go to a pool of --workers threads (workers.c), so a
 * slow one no longer stalls its loop. The main thread starts everything, then only waits
 * for signals and tells the loops to stop.
 */
#include "app.h"
#include "buffer.h"
#include "http.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "loop_uring.h"
#include "options.h"
#include "signals.h"

#include "workers.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

enum { MAX_THREADS = 256 };

static atomic_int loops_finished;
static int loop_done_fd = -1; /* an eventfd: a loop thread has finished */

/*
 * The default --root, found from the executable's place, wherever it is run from: the
 * tutorial site (docs/site, once `make docs` has built it), else the small page bundled
 * in the www/ directory next to the executable.
 */
static const char *default_root(void)
{
    static char root[PATH_MAX];
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len < 0)
        return "www";
    exe[len] = '\0';
    const char *dir = dirname(exe);
    snprintf(root, sizeof root, "%s/../docs/site/index.html", dir);
    if (access(root, F_OK) == 0) {
        snprintf(root, sizeof root, "%s/../docs/site", dir);
        return root;
    }
    snprintf(root, sizeof root, "%s/www", dir);
    return root;
}

static struct loop *loops[MAX_THREADS];

/* A loop's thread: runs it, then says what it did, which shows how the kernel spread the
 * clients over the loops. */
static void *run_loop(void *arg)
{
    int i = (int)((struct loop **)arg - loops); /* arg is &loops[i] */
    loop_run(loops[i]);
    log_info("loop %d: %zu connections, %zu requests", i, loop_accepted(loops[i]),
             http_requests_served());
    atomic_fetch_add(&loops_finished, 1);
    if (eventfd_write(loop_done_fd, 1) < 0)
        log_error("eventfd_write: %s", strerror(errno));
    return NULL;
}

/*
 * Once the loops run, the main thread only turns stop signals into loop_stop_all(): the
 * first lets every loop finish what is in flight, a second stops them at once. It returns
 * when every loop has finished.
 */
static void wait_for_stop(int signal_fd, int count)
{
    int stops = 0;
    while (atomic_load(&loops_finished) < count) {
        struct pollfd fds[2] = {{.fd = signal_fd, .events = POLLIN},
                                {.fd = loop_done_fd, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll: %s", strerror(errno));
        }
        struct signalfd_siginfo info;
        while ((fds[0].revents & POLLIN) && read(signal_fd, &info, sizeof info) == sizeof info) {
            stops++;
            log_info("%s%s", strsignal((int)info.ssi_signo),
                     stops == 1 ? ": stopping" : " again: stopping now");
            loop_stop_all(loops, count, stops >= 2);
        }
        eventfd_t finished;
        if ((fds[1].revents & POLLIN) && eventfd_read(loop_done_fd, &finished) < 0)
            log_error("eventfd_read: %s", strerror(errno));
    }
}

/*
 * --pin: loop i runs on the i-th CPU the process may use only, wrapping around when there
 * are more loops than CPUs (see the README for when pinning helps).
 */
static void pin_to_cpu(pthread_attr_t *attr, int i)
{
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) < 0)
        die("sched_getaffinity: %s", strerror(errno));
    int wanted = i % CPU_COUNT(&allowed);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &allowed) && wanted-- == 0) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            int rc = pthread_attr_setaffinity_np(attr, sizeof one, &one);
            if (rc != 0)
                die("pthread_attr_setaffinity_np: %s", strerror(rc));
            return;
        }
    }
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    long port = 8080;
    long max_conns = 0;
    long shutdown_timeout = 5;
    long idle_timeout = 60;
    long header_timeout = 10;
    const char *root = default_root();
    const char *access_log = NULL;
    bool routes_dot = false;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    long threads = online > 0 && online <= MAX_THREADS ? online : 1;
    bool pin = false;
    long workers = 16;
    long queue = 256;
    const char *io = NULL; /* NULL: uring, or epoll where the kernel refuses io_uring */
    bool sqpoll = false;
    const struct option_spec options[] = {
        {"host", OPTION_STRING, "ADDR", "address to listen on", &host, 0, 0},
        {"port", OPTION_NUMBER, "N", "port to listen on, 0 for any free one", &port, 0, 65535},
        {"max-conns", OPTION_NUMBER, "N",
         "hold at most N connections per event loop, 0 for no limit; others wait to be accepted",
         &max_conns, 0, 1000000},
        {"shutdown-timeout", OPTION_NUMBER, "S",
         "after SIGTERM or SIGINT, close every connection still open S seconds later",
         &shutdown_timeout, 0, 3600},
        {"idle-timeout", OPTION_NUMBER, "SECONDS",
         "close a connection idle this long between requests", &idle_timeout, 1, 3600},
        {"header-timeout", OPTION_NUMBER, "SECONDS",
         "answer 408 to a request head not complete this long after its first byte",
         &header_timeout, 1, 3600},
        {"root", OPTION_DIRECTORY, "DIR", "serve static files from DIR", &root, 0, 0},
        {"access-log", OPTION_STRING, "FILE", "log each request to FILE (Common Log Format)",
         &access_log, 0, 0},
        {"routes-dot", OPTION_FLAG, NULL, "print the route trie as Graphviz DOT and exit",
         &routes_dot, 0, 0},
        {"threads", OPTION_NUMBER, "N",
         "event loops, one per thread; as many as online CPUs if not given", &threads, 1,
         MAX_THREADS},
        {"pin", OPTION_FLAG, NULL, "run loop i on CPU i only", &pin, 0, 0},
        {"workers", OPTION_NUMBER, "N", "threads for blocking handlers", &workers, 1, 1024},
        {"queue", OPTION_NUMBER, "N", "blocking jobs that may wait; more get 503", &queue, 1,
         100000},
        {"io", OPTION_STRING, "uring|epoll",
         "how loops wait for the kernel; default uring, or epoll where refused", &io, 0, 0},
        {"sqpoll", OPTION_FLAG, NULL, "a kernel thread polls for submissions (see the README)",
         &sqpoll, 0, 0},
    };
    const size_t option_count = sizeof options / sizeof options[0];
    const char *summary =
        "An HTTP/1.1 server: an event loop per core, a worker pool for slow handlers.";
    options_parse(argc, argv, options, option_count, summary);
    if (io != NULL && strcmp(io, "uring") != 0 && strcmp(io, "epoll") != 0)
        options_usage_error(options, option_count, summary, "--io: '%s': expected uring or epoll",
                            io);
    if (sqpoll && io != NULL && strcmp(io, "epoll") == 0)
        options_usage_error(options, option_count, summary,
                            "--sqpoll: io_uring only, not --io epoll");
    http_set_timeouts((unsigned)idle_timeout, (unsigned)header_timeout);

    char err[256];
    if (!app_build_routes(err, sizeof err))
        die("%s", err);
    if (routes_dot) {
        app_write_routes_dot(stdout);
        return 0;
    }
    /* Before any thread starts, so that a refusal is explained before the server announces
     * itself: a kernel without io_uring, or a container that forbids it (seccomp). */
    const struct backend *backend = &uring_backend;
    if (io != NULL && strcmp(io, "epoll") == 0) {
        backend = &epoll_backend;
    } else if (!uring_available(err, sizeof err)) {
        if (io != NULL)
            die("%s; --io epoll serves without it", err);
        log_info("%s; serving with epoll", err);
        backend = &epoll_backend;
    }
    loop_use_sqpoll(sqpoll);

    struct app_config config = {.root = root, .access_log = access_log};
    if (!app_open(&config, err, sizeof err))
        die("%s", err);

    /* Before any thread starts, so that every thread inherits the blocked signals. */
    signals_ignore_sigpipe();
    /* Request bodies of a megabyte, again and again: see buffer.c. */
    if (!buffer_keep_large_blocks())
        log_info("mallopt() refused: large buffers go back to the kernel after each use");
    int signal_fd = signals_stop_fd();
    loop_done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop_done_fd < 0)
        die("eventfd: %s", strerror(errno));
    if (!workers_start((size_t)workers, (size_t)queue, err, sizeof err))
        die("%s", err);

    /* One listening socket per loop, all on one port: the first one's, if the kernel picked it. */
    int first_fd = -1;
    for (int i = 0; i < threads; i++) {
        long loop_port = i == 0 ? port : listener_port(first_fd);
        /* The first socket also checks that no other program holds the port (listener.c). */
        int flags = LISTENER_NONBLOCK | LISTENER_REUSEPORT | (i == 0 ? LISTENER_PORT_FREE : 0);
        int fd = listener_open(host, loop_port, flags, err, sizeof err);
        if (fd < 0)
            die("%s", err);
        if (i == 0)
            first_fd = fd;
        loops[i] = loop_create(backend, fd, i, err, sizeof err);
        if (loops[i] == NULL)
            die("%s", err);
        loop_set_max_conns(loops[i], (size_t)max_conns);
        loop_set_shutdown_timeout(loops[i], (unsigned)shutdown_timeout * 1000);
    }
    listener_announce(first_fd);

    pthread_t loop_threads[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        if (pin)
            pin_to_cpu(&attr, i);
        int rc = pthread_create(&loop_threads[i], &attr, run_loop, &loops[i]);
        if (rc != 0)
            die("pthread_create: %s", strerror(rc));
        pthread_attr_destroy(&attr);
    }

    wait_for_stop(signal_fd, (int)threads);

    /* Loops first (they wait for their jobs), then the workers, then what they all used. */
    for (int i = 0; i < threads; i++)
        pthread_join(loop_threads[i], NULL);
    workers_stop();
    for (int i = 0; i < threads; i++)
        loop_destroy(loops[i]);
    close(loop_done_fd);
    close(signal_fd);
    log_info("stopped");
    return 0;
}
