/*
 * Stage 2: a non-blocking TCP echo server, many clients on one thread.
 *
 * Stage 1 blocked in read() while other clients waited. Here no call blocks except one:
 * epoll_wait(), which waits for whichever client is ready first (loop_epoll.c). What to
 * do with the bytes is echo.c's business.
 */
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "options.h"
#include "signals.h"

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    long port = 8080;
    long max_conns = 0;
    long shutdown_timeout = 5;
    const struct option_spec options[] = {
        {"host", OPTION_STRING, "ADDR", "address to listen on", &host, 0, 0},
        {"port", OPTION_NUMBER, "N", "port to listen on, 0 for any free one", &port, 0, 65535},
        {"max-conns", OPTION_NUMBER, "N",
         "hold at most N connections per event loop, 0 for no limit; others wait to be accepted",
         &max_conns, 0, 1000000},
        {"shutdown-timeout", OPTION_NUMBER, "S",
         "after SIGTERM or SIGINT, close every connection still open S seconds later",
         &shutdown_timeout, 0, 3600},
    };
    options_parse(argc, argv, options, sizeof options / sizeof options[0],
                  "A non-blocking TCP echo server: many clients, one thread, epoll.");

    signals_ignore_sigpipe();
    int signal_fd = signals_stop_fd();

    char err[256];
    int listen_fd = listener_open(host, port, LISTENER_NONBLOCK, err, sizeof err);
    if (listen_fd < 0)
        die("%s", err);
    struct loop *loop = loop_create(&epoll_backend, listen_fd, signal_fd, err, sizeof err);
    if (loop == NULL)
        die("%s", err);
    loop_set_max_conns(loop, (size_t)max_conns);
    loop_set_shutdown_timeout(loop, (unsigned)shutdown_timeout * 1000);
    listener_announce(listen_fd);

    loop_run(loop);
    loop_destroy(loop);
    log_info("stopped");
    return 0;
}
