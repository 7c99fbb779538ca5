/*
 * Stage 4: routes, path parameters, middleware and static files.
 *
 * Stage 3's loop and HTTP code, now dispatching each request through a routing trie
 * (router.c) to a handler (handlers.c, static.c), with middleware around it (app.c).
 */
#include "app.h"
#include "buffer.h"
#include "http.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "options.h"
#include "signals.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

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
    };
    options_parse(argc, argv, options, sizeof options / sizeof options[0],
                  "An HTTP/1.1 server with routes, path parameters and static files.");
    http_set_timeouts((unsigned)idle_timeout, (unsigned)header_timeout);

    char err[256];
    if (!app_build_routes(err, sizeof err))
        die("%s", err);
    if (routes_dot) {
        app_write_routes_dot(stdout);
        return 0;
    }
    struct app_config config = {.root = root, .access_log = access_log};
    if (!app_open(&config, err, sizeof err))
        die("%s", err);

    signals_ignore_sigpipe();
    /* Request bodies of a megabyte, again and again: see buffer.c. */
    if (!buffer_keep_large_blocks())
        log_info("mallopt() refused: large buffers go back to the kernel after each use");
    int signal_fd = signals_stop_fd();

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
