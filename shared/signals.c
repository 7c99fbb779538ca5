/*
 * signals.c - SIGINT and SIGTERM (stop), and SIGPIPE (never).
 */
#include "signals.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop_count;
static int stop_listen_fd = -1;
static volatile sig_atomic_t stop_client_fd = -1;
static unsigned drain_seconds;

void signals_ignore_sigpipe(void)
{
    struct sigaction ignore = {.sa_handler = SIG_IGN};
    if (sigaction(SIGPIPE, &ignore, NULL) < 0)
        die("sigaction(SIGPIPE): %s", strerror(errno));
}

static void count_stop(int signo)
{
    (void)signo;
    int saved_errno = errno; /* the interrupted code may be about to read errno */
    if (stop_count < 2)
        stop_count++;
    /*
     * A flag alone leaves a race: the signal may land after the server checked it and
     * before it blocked in accept(), which then waits for the next client. shutdown() is
     * async-signal-safe, and on a listening socket it stops the listening: a blocked
     * accept() wakes up and any later one fails at once, both with EINVAL.
     */
    if (stop_listen_fd >= 0)
        shutdown(stop_listen_fd, SHUT_RD);
    /* The drain bound: SIGALRM, drain_seconds after the first stop, counts as the second. */
    if (stop_count == 1 && drain_seconds > 0)
        alarm(drain_seconds);
    /*
     * Stop now: a client that neither sends nor reads would keep the server blocked in
     * read() or write() (a write() that has sent a few bytes returns no EINTR). shutdown()
     * of both directions wakes either call, and every later one fails or reads 0 at once.
     */
    if (stop_count == 2 && stop_client_fd >= 0)
        shutdown(stop_client_fd, SHUT_RDWR);
    errno = saved_errno;
}

void signals_count_stops(int listen_fd, unsigned drain)
{
    stop_listen_fd = listen_fd;
    drain_seconds = drain;
    /*
     * No SA_RESTART: a blocking accept() or read() must return EINTR when a signal comes,
     * or the server would sleep on until the next client. sa_mask holds the other stop
     * signal back while the handler runs, so the count is never updated twice at once.
     */
    struct sigaction count = {.sa_handler = count_stop};
    sigemptyset(&count.sa_mask);
    sigaddset(&count.sa_mask, SIGINT);
    sigaddset(&count.sa_mask, SIGTERM);
    sigaddset(&count.sa_mask, SIGALRM);
    if (sigaction(SIGINT, &count, NULL) < 0 || sigaction(SIGTERM, &count, NULL) < 0 ||
        sigaction(SIGALRM, &count, NULL) < 0)
        die("sigaction: %s", strerror(errno));
}

void signals_serving(int fd)
{
    stop_client_fd = fd;
}

int signals_stop_count(void)
{
    return stop_count;
}

int signals_stop_fd(void)
{
    /*
     * A blocked signal stays pending, and the signalfd becomes readable while one is.
     * Block before any thread starts (stage 5): threads inherit the mask, so no thread
     * ever runs a default handler that would kill the process.
     */
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &stops, NULL) < 0)
        die("sigprocmask: %s", strerror(errno));
    int fd = signalfd(-1, &stops, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        die("signalfd: %s", strerror(errno));
    return fd;
}
