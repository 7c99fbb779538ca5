/*
 * listener.h - the listening socket every stage starts from.
 */
#ifndef LISTENER_H
#define LISTENER_H

#include <stddef.h>

enum listener_flags {
    LISTENER_NONBLOCK = 1 << 0, /* accept() returns EAGAIN instead of waiting (event loops) */
    LISTENER_REUSEPORT = 1 << 1, /* several sockets share the port; the kernel spreads clients */
    LISTENER_PORT_FREE = 1 << 2, /* with REUSEPORT: refuse a port another process holds */
};

/*
 * Opens a TCP socket listening on host (a numeric IPv4 or IPv6 address) and port (0: the
 * kernel picks a free one). Returns the descriptor, or -1 with a message in err. A port
 * another process listens on fails with "Address already in use"; with LISTENER_REUSEPORT
 * only if LISTENER_PORT_FREE is given too (for the first of a server's sockets: the others
 * join its group).
 */
int listener_open(const char *host, long port, int flags, char *err, size_t errlen);

/*
 * Turns Nagle's algorithm off on fd, a listening socket, and so on every socket accepted
 * from it: Linux copies the option into each, which saves a setsockopt() per connection.
 * Nagle holds back a small write while earlier data is unacknowledged, hoping to merge it
 * with the next; a server's writes are whole replies already, and the client's delayed
 * ACK would stall each one by up to 40 ms. A failure is logged: slower, still correct.
 */
void listener_no_delay(int fd);

/* The port the socket is bound to (what the kernel picked, after --port 0); -1 on error. */
long listener_port(int fd);

/*
 * Prints "listening on HOST:PORT" on stdout, with the port the socket really has, and
 * flushes: scripts and tests wait for this line before they connect.
 */
void listener_announce(int fd);

#endif
