/*
 * conn.h - a connection, as the protocol sees it.
 *
 * This is the seam between moving bytes and understanding them. The connection layer
 * (conn.c) owns the sockets: it accepts, receives, sends, buffers, times out and closes.
 * The protocol (http.c) only ever sees bytes that have arrived, and hands back bytes to
 * send. It never calls read() or write(), so what moves the bytes can change underneath
 * it: stage 6 adds io_uring beside epoll, and the protocol code does not change.
 */
#ifndef CONN_H
#define CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct loop;
struct conn;
struct loop_message; /* loop.h */

/*
 * For the protocol: queue bytes for the client. The connection copies them, so the
 * caller's memory is free again on return; they are sent once the current callback
 * returns, and what the kernel does not take yet is kept until it does.
 */
void conn_send(struct conn *c, const void *data, size_t len);

/*
 * For the protocol: queue len bytes of the open file fd, from offset, after everything
 * queued so far. The file never passes through the protocol (the epoll backend sends it
 * with sendfile()), and fd is closed when done (or when the connection closes). Nothing
 * more may be queued until protocol_on_file_sent() says the file is out: pause until then.
 */
void conn_send_file(struct conn *c, int fd, off_t offset, size_t len);

/* For the protocol: close the connection once everything queued has been sent. */
void conn_close(struct conn *c);

/*
 * For the protocol: as conn_close(), when the client has said that it sends nothing more
 * (HTTP's "Connection: close", RFC 9112 section 9.6). Unless more bytes have come anyway,
 * the socket is closed as soon as the output is out, without the lingering close that
 * guards against a client still sending (conn.c): a shutdown(), a wait for the client's
 * FIN and a read fewer per connection.
 */
void conn_close_no_linger(struct conn *c);

/*
 * For the protocol: deliver no more input until conn_resume(), because an answer is
 * still being produced and a pipelined request's answer must not overtake it. What
 * arrives meanwhile is held, up to a bound; past it the connection stops receiving, so a
 * client that keeps sending is held back by TCP's flow control.
 */
void conn_pause(struct conn *c);

/* For the protocol: deliver input again, starting with what arrived while paused. */
void conn_resume(struct conn *c);

/* For the protocol (an access log, say): the client's address as text, like "127.0.0.1". */
void conn_peer_name(struct conn *c, char *buf, size_t size);

/*
 * For the protocol: the input it leaves unconsumed is the start of a message len bytes
 * long (an HTTP request whose head gives its body's length), none of which it can consume
 * before the whole has arrived. The connection keeps room for it in one buffer, grown
 * in one or a few large steps (received a read at a time, the buffer would grow step by
 * step, copied whole at each step), and the backend may receive straight into that room.
 * The room is at most sixteen times what has come, so a head alone does not get the
 * server to hold the whole length. Said again at each protocol_on_data() that leaves the
 * message unfinished. len must be bounded by the protocol: it is memory held for the
 * client.
 */
void conn_expect_input(struct conn *c, size_t len);

/*
 * For the protocol: its state for this connection, protocol_session_size bytes kept in the
 * connection's slot (zeroed when the connection opens), so that no connection costs an
 * allocation of its own. The connection layer never looks inside.
 */
void *conn_session(struct conn *c);

/* For the protocol: the loop that owns the connection, and a name for the connection that
 * stays valid after it closes (a closed one's name is never reused), for messages to carry. */
struct loop *conn_loop(struct conn *c);
uint64_t conn_id(struct conn *c);

/*
 * For the protocol: call protocol_on_timeout() if ms milliseconds pass before the next
 * call to this (0 cancels). Checked once a second, so it may fire up to a second late.
 */
void conn_set_timeout(struct conn *c, unsigned ms);

/*
 * For the protocol: which batch of events the loop is handling, a number that changes
 * each time the loop takes the next batch from the kernel. What the protocol asked the
 * kernel earlier in the same batch (a file's size and time, say) can be taken as still
 * current: the batch is what the loop treats as one moment.
 */
uint64_t conn_batch(const struct conn *c);

/*
 * The protocol implements these; the connection layer calls them. After each call it
 * sends what was queued.
 */

/* The size of the protocol's state for one connection (conn_session()). */
extern const size_t protocol_session_size;

/* A new connection: set up its session. */
void protocol_on_open(struct conn *c);

/*
 * Bytes have arrived: data[0..len) holds every byte received and not yet consumed, oldest
 * first. Returns how many of them the protocol consumed; the rest are kept and passed
 * again, followed by newer bytes, next time. The memory is the connection layer's and is
 * valid only during the call (the protocol may modify it).
 */
size_t protocol_on_data(struct conn *c, char *data, size_t len);

/* The file queued with conn_send_file() has been sent completely. */
void protocol_on_file_sent(struct conn *c);

/* A message posted to the loop for this connection (loop_post) has arrived. The protocol
 * owns it from here and frees it (malloc'd). */
void protocol_on_message(struct conn *c, struct loop_message *m);

/* The client closed its side of the connection: nothing more will arrive. */
void protocol_on_eof(struct conn *c);

/* The server is stopping: finish what is in flight, close what is idle. */
void protocol_on_stop(struct conn *c);

/*
 * The timeout set with conn_set_timeout() has passed. If the connection is still open
 * after this without a new timeout, it is given a last few seconds to close.
 */
void protocol_on_timeout(struct conn *c);

#endif
