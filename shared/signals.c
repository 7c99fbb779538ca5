/*
 * signals.c - SIGINT and SIGTERM (stop), and SIGPIPE (never).
 */
#include "signals.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>

static volatile sig_atomic_t stop_count;

void signals_ignore_sigpipe(void)
{
    struct sigaction ignore = {.sa_handler = SIG_IGN};
    if (sigaction(SIGPIPE, &ignore, NULL) < 0)
        die("sigaction(SIGPIPE): %s", strerror(errno));
}

static void count_stop(int signo)
{
    (void)signo;
    if (stop_count < 2)
        stop_count++;
}

void signals_count_stops(void)
{
    /*
     * No SA_RESTART: a blocking accept() or read() must return EINTR when a signal comes,
     * or the server would sleep on until the next client. sa_mask holds the other stop
     * signal back while the handler runs, so the count is never updated twice at once.
     */
    struct sigaction count = {.sa_handler = count_stop};
    sigemptyset(&count.sa_mask);
    sigaddset(&count.sa_mask, SIGINT);
    sigaddset(&count.sa_mask, SIGTERM);
    if (sigaction(SIGINT, &count, NULL) < 0 || sigaction(SIGTERM, &count, NULL) < 0)
        die("sigaction: %s", strerror(errno));
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
