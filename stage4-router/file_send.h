/*
 * file_send.h - a connection's file, from the page cache to its socket: what a backend
 * does once the bytes before the file are out.
 */
#ifndef FILE_SEND_H
#define FILE_SEND_H

#include <stdbool.h>

struct conn;

/*
 * Sends as much of c's file (conn_send_file()) as its non-blocking socket takes now,
 * reporting each piece with conn_file_sent(). On return either the file is out or the
 * socket is full: the backend waits for room, then calls this again. False if the
 * connection cannot go on: the client is gone (conn_failed() has said so), or the file
 * ended early.
 */
bool file_send_now(struct conn *c);

#endif
