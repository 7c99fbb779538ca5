/*
 * Stage 3: HTTP/1.1 on the stage-2 event loop.
 *
 * The loop (loop_epoll.c) is stage 2's, with timeouts and a lingering close added; the
 * protocol it drives is now HTTP (http.c), with the strict zero-copy parser that stages 3
 * to 6 share (../shared/http_parse.c).
 */
#include "buffer.h"
#include "http.h"
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
    long idle_timeout = 60;
    long header_timeout = 10;
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
    };
    options_parse(argc, argv, options, sizeof options / sizeof options[0],
                  "An HTTP/1.1 server on an epoll event loop: GET says hello, POST echoes.");
    http_set_timeouts((unsigned)idle_timeout, (unsigned)header_timeout);

    signals_ignore_sigpipe();
    /* Request bodies of a megabyte, again and again: see buffer.c. */
    if (!buffer_keep_large_blocks())
        log_info("mallopt() refused: large buffers go back to the kernel after each use");
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
