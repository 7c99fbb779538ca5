/*
 * http.h - HTTP/1.1 on the event loop (http.c implements conn.h's protocol_on_* calls).
 */
#ifndef HTTP_H
#define HTTP_H

/* Seconds a connection may sit idle between requests, and may take to send a request head. */
void http_set_timeouts(unsigned idle_seconds, unsigned header_seconds);

#endif
