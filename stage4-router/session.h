/*
 * session.h - what the HTTP protocol remembers about one connection between two
 * protocol_on_data() calls. The loop keeps it inside its connection slot (no allocation
 * per connection), and http.c reaches it with conn_session().
 *
 * It is small on purpose: the bytes themselves stay in the loop's buffers, and the
 * parsers keep offsets into them, never pointers.
 */
#ifndef SESSION_H
#define SESSION_H

#include "http_parse.h"

#include <stdbool.h>
#include <stdint.h>

struct session {
    struct http_request_parser head; /* where parsing of the current head stopped */
    struct http_chunked_parser chunked; /* where scanning of a chunked body stopped */
    uint32_t head_len; /* the current request's head, once complete; else 0 */
    enum http_body_framing framing; /* its body, once the head is complete */
    uint64_t content_length;
    bool expect_continue; /* the client waits for "100 Continue" before the body */
    bool continue_sent;
    bool partial; /* part of a request is buffered, waiting for the rest */
    bool head_clock; /* the header timeout runs for the current head */
    bool stopping; /* the server is stopping: this is the last request */
    bool done; /* closing: nothing more is read or answered */
    bool sending_file; /* paused until the file of the last response is out */
};

#endif
