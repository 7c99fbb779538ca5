/*
 * listener.c - the listening socket every stage starts from.
 */
#include "listener.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * The accept queue: connections the kernel has completed the handshake for but the
 * server has not accepted yet. The kernel caps it at net.core.somaxconn (4096 by default
 * since Linux 5.4); a benchmark opening 1000 connections at once needs more than the
 * traditional 128, or clients see SYN retransmits and one-second stalls.
 */
enum { LISTEN_BACKLOG = 4096 };

/*
 * SO_REUSEPORT lets a socket join the group of any socket listening on the same port with
 * SO_REUSEPORT set by the same user: another stage-5 server, or an nginx with `reuseport`.
 * bind() then succeeds, and the kernel splits the clients between the two programs. A
 * socket without SO_REUSEPORT gets EADDRINUSE from any listener on the port, so one bound
 * first, and closed at once, tells whether the port is free. A program that binds with
 * SO_REUSEPORT between that close and our own bind still joins us unseen; closing that
 * window would take holding the port without SO_REUSEPORT, which our own loops could then
 * not join. Never connected, the probe leaves no TIME_WAIT behind.
 */
static bool port_is_free(const struct addrinfo *addr, const char *host, long port, char *err,
                         size_t errlen)
{
    int fd = socket(addr->ai_family, addr->ai_socktype | SOCK_CLOEXEC, addr->ai_protocol);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return false;
    }
    int one = 1;
    bool is_free = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
                   bind(fd, addr->ai_addr, addr->ai_addrlen) == 0;
    if (!is_free)
        snprintf(err, errlen, "bind %s port %ld: %s", host, port, strerror(errno));
    close(fd);
    return is_free;
}

int listener_open(const char *host, long port, int flags, char *err, size_t errlen)
{
    /* AI_NUMERICHOST: --host takes an address; a name lookup could block or surprise. */
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
    };
    char service[16];
    snprintf(service, sizeof service, "%ld", port);
    struct addrinfo *addr;
    int rc = getaddrinfo(host, service, &hints, &addr);
    if (rc != 0) {
        snprintf(err, errlen, "--host %s: %s", host, gai_strerror(rc));
        return -1;
    }

    if ((flags & LISTENER_PORT_FREE) && port != 0 && !port_is_free(addr, host, port, err, errlen)) {
        freeaddrinfo(addr);
        return -1;
    }

    int type = addr->ai_socktype | SOCK_CLOEXEC;
    if (flags & LISTENER_NONBLOCK)
        type |= SOCK_NONBLOCK;
    int fd = socket(addr->ai_family, type, addr->ai_protocol);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        freeaddrinfo(addr);
        return -1;
    }

    /*
     * SO_REUSEADDR lets a restarted server bind the port while connections of its previous
     * run sit in TIME_WAIT; without it, bind fails with EADDRINUSE for a minute or so.
     */
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) {
        snprintf(err, errlen, "setsockopt(SO_REUSEADDR): %s", strerror(errno));
        goto fail;
    }
    if ((flags & LISTENER_REUSEPORT) &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        snprintf(err, errlen, "setsockopt(SO_REUSEPORT): %s", strerror(errno));
        goto fail;
    }
    if (bind(fd, addr->ai_addr, addr->ai_addrlen) < 0) {
        snprintf(err, errlen, "bind %s port %ld: %s", host, port, strerror(errno));
        goto fail;
    }
    if (listen(fd, LISTEN_BACKLOG) < 0) {
        snprintf(err, errlen, "listen: %s", strerror(errno));
        goto fail;
    }
    freeaddrinfo(addr);
    return fd;

fail:
    close(fd);
    freeaddrinfo(addr);
    return -1;
}

void listener_no_delay(int fd)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        log_error("setsockopt(TCP_NODELAY): %s", strerror(errno));
}

long listener_port(int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
        return -1;
    // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): LLVM issue 60482
    if (addr.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

void listener_announce(int fd)
{
    /* Ask the socket, not the command line: with --port 0 only the kernel knows the port. */
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
        perror("getsockname");
        return;
    }
    char host[INET6_ADDRSTRLEN];
    unsigned port;
    // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): LLVM issue 60482
    if (addr.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        printf("listening on [%s]:%u\n", host, port);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&addr;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        printf("listening on %s:%u\n", host, port);
    }
    /* stdout into a pipe is fully buffered: without this the reader would wait forever. */
    fflush(stdout);
}
