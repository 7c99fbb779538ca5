/*
 * Stage 1: a blocking TCP echo server.
 *
 * One client at a time: accept a connection, read what it sends and write it back until
 * it closes its side, close, accept the next. Every call blocks, so the program reads
 * top to bottom like the protocol itself. The price is the limitation stage 2 removes:
 * while one client is served, every other client waits in the kernel's accept queue.
 *
 * Stopping: SIGINT or SIGTERM interrupts the blocking call the server is in and stops the
 * listening, so new clients are refused. In accept() the server stops at once; with a
 * client connected it finishes that client first (its transfer is in flight), then stops.
 * A second signal stops it at once.
 */
#include "listener.h"
#include "log.h"
#include "options.h"
#include "signals.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    ECHO_BUFFER_SIZE = 16 * 1024,
    DRAIN_SECONDS = 5, /* after a stop signal, the longest the client being served has */
};

/* Whether a stop signal asks us to drop the current client: only the second one does. */
static bool must_stop_now(void)
{
    return signals_stop_count() >= 2;
}

/*
 * write() may take fewer bytes than asked (a short write) when the socket's send buffer
 * fills up, and a signal may interrupt it: loop until everything is written.
 */
static bool write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR && !must_stop_now())
                continue;
            if (errno != EINTR)
                log_info("client: write: %s", strerror(errno)); /* EPIPE, ECONNRESET: it left */
            return false;
        }
        data += n;
        len -= (size_t)n;
    }
    return true;
}

/* Echoes everything the client sends until it closes its side (read() returns 0). */
static void serve_client(int fd)
{
    char buffer[ECHO_BUFFER_SIZE];
    for (;;) {
        /* Blocks until at least one byte has arrived, then returns what is there. */
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n == 0)
            return; /* end of stream: the client shut down its writing side */
        if (n < 0) {
            if (errno == EINTR && !must_stop_now())
                continue; /* a first stop signal: finish this client before stopping */
            if (errno != EINTR)
                log_info("client: read: %s", strerror(errno)); /* ECONNRESET: it reset */
            return;
        }
        /*
         * Blocks while the client is not reading and its receive buffer is full. We do not
         * read more meanwhile, so the client's sends block in turn: TCP's flow control is
         * our backpressure, and memory stays at one buffer whatever the client does.
         */
        if (!write_all(fd, buffer, (size_t)n))
            return;
    }
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    long port = 8080;
    const struct option_spec options[] = {
        {"host", OPTION_STRING, "ADDR", "address to listen on", &host, 0, 0},
        {"port", OPTION_NUMBER, "N", "port to listen on, 0 for any free one", &port, 0, 65535},
    };
    options_parse(argc, argv, options, sizeof options / sizeof options[0],
                  "A blocking TCP echo server: one client at a time.");

    signals_ignore_sigpipe();

    char err[256];
    int listen_fd = listener_open(host, port, 0, err, sizeof err);
    if (listen_fd < 0)
        die("%s", err);
    signals_count_stops(listen_fd, DRAIN_SECONDS);
    listener_announce(listen_fd);

    /*
     * A blocking call cannot wait for "a client or a signal", so a stop signal could land
     * between this check and accept(), leaving the server asleep until the next client.
     * The signal handler closes that gap by shutting down the listening socket, which
     * makes accept() fail with EINVAL (shared/signals.c). Stage 2 needs no such trick: it
     * reads signals from a descriptor, as events like any other.
     */
    while (signals_stop_count() == 0) {
        /* Blocks until a client has completed the TCP handshake. */
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || signals_stop_count() > 0)
                continue; /* a signal (the loop checks), or a client that gave up waiting */
            /*
             * EMFILE and friends: out of descriptors or memory. Retrying at once would
             * spin; wait a little. (Holding one client at a time, this server only gets
             * here under a tiny descriptor limit; stage 2 meets the problem for real.)
             */
            log_error("accept: %s", strerror(errno));
            sleep(1);
            continue;
        }
        signals_serving(fd);
        serve_client(fd);
        signals_serving(-1);
        /* close() on a socket sends FIN (or RST if unread data remains); errors here are moot. */
        close(fd);
    }

    close(listen_fd);
    log_info("stopped");
    return 0;
}
