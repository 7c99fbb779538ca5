/*
 * http.c - HTTP/1.1 on the event loop: one request after another on each connection.
 *
 * Each connection runs this state machine (its state is struct session, session.h):
 *
 *     reading head --(head complete, a body follows)--> reading body
 *          |                                                 |
 *     (no body)                                      (body complete)
 *          v                                                 v
 *        respond: queue the response <-----------------------+
 *          |
 *          +-- keep-alive: the next request, parsed from bytes already received if the
 *          |   client pipelined it, else from the next read
 *          +-- otherwise, or after a malformed request: close
 *
 * The loop does the I/O. It hands us every byte received and not yet consumed; we return
 * how many we consumed, and it keeps the rest for next time. Responses are queued, and
 * the loop writes them after we return: the answers to a batch of pipelined requests
 * leave in one write(), in the order the requests came.
 *
 * What to answer is the application's business (app.c): routes, handlers, middleware.
 * A response whose body is a file pauses the connection until the file is out; so does a
 * request whose handler blocks, until a worker thread has done its work.
 */
#include "app.h"
#include "conn.h"
#include "exchange.h"
#include "http.h"
#include "http_parse.h"
#include "response.h"
#include "session.h"
#include "workers.h"

#include <stdbool.h>
#include <stddef.h>

static unsigned idle_timeout_ms = 60 * 1000;
static unsigned header_timeout_ms = 10 * 1000;

/* Requests answered by this thread's loop; each loop has a thread of its own. */
static _Thread_local size_t requests_served;

const size_t protocol_session_size = sizeof(struct session);

size_t http_requests_served(void)
{
    return requests_served;
}

void http_set_timeouts(unsigned idle_seconds, unsigned header_seconds)
{
    idle_timeout_ms = idle_seconds * 1000;
    header_timeout_ms = header_seconds * 1000;
}

static void start_next_request(struct session *s)
{
    http_request_parser_init(&s->head);
    s->head_len = 0;
    s->continue_sent = false;
    s->head_clock = false;
}

/*
 * After a malformed request the framing is in doubt: we cannot know where the next
 * request would begin, so we answer and close (RFC 9112 section 9.6 for the close; the
 * lingering close in the loop makes sure the client can read the answer).
 */
static void reject(struct conn *c, struct session *s, int status)
{
    respond_error(c, status);
    conn_close(c);
    s->done = true;
}

/*
 * "Expect: 100-continue" (RFC 9110 section 10.1.1): the client waits for a go-ahead
 * before sending a body, perhaps a large one. Give it once the head has been accepted and
 * the body has not arrived.
 */
static void send_continue_once(struct conn *c, struct session *s)
{
    static const char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (s->expect_continue && !s->continue_sent) {
        conn_send(c, CONTINUE, sizeof CONTINUE - 1);
        s->continue_sent = true;
    }
}

/*
 * Serves the request at the start of data[0..len), if it is all there. Returns the bytes
 * it took, or 0 if it needs more (what has arrived stays with the loop until then).
 */
static size_t serve_request(struct conn *c, struct session *s, char *data, size_t len)
{
    struct http_request req;
    bool have_req = false;

    if (s->head_len == 0) {
        ssize_t n = http_parse_request(&s->head, data, len, &req);
        if (n == HTTP_NEED_MORE)
            return 0;
        if (n < 0) {
            reject(c, s, (int)-n);
            return len;
        }
        have_req = true;
        s->head_len = (uint32_t)n;
        s->framing = req.body_framing;
        s->content_length = req.content_length;
        s->expect_continue = req.expect_continue;
        if (s->framing == HTTP_BODY_CHUNKED)
            http_chunked_parser_init(&s->chunked);
    }

    char *body = data + s->head_len;
    size_t received = len - s->head_len;
    size_t body_len = 0;
    size_t request_len = s->head_len;
    if (s->framing == HTTP_BODY_LENGTH) {
        if (received < s->content_length) {
            /* Room for the whole request, at most the head and HTTP_MAX_BODY_LEN. */
            conn_expect_input(c, s->head_len + (size_t)s->content_length);
            send_continue_once(c, s);
            return 0;
        }
        body_len = (size_t)s->content_length;
        request_len += body_len;
    } else if (s->framing == HTTP_BODY_CHUNKED) {
        ssize_t n = http_chunked_scan(&s->chunked, body, received);
        if (n == HTTP_NEED_MORE) {
            send_continue_once(c, s);
            return 0;
        }
        if (n < 0) {
            reject(c, s, (int)-n);
            return len;
        }
        body_len = http_chunked_squeeze(body, (size_t)n); /* the framing is squeezed out */
        request_len += (size_t)n;
    }

    /*
     * A head that completed in an earlier call may have moved since (the loop copied it
     * into a connection buffer): parse it once more, now that the request is whole, to get
     * slices that point into data. Its bytes are known to be valid.
     */
    if (!have_req) {
        http_request_parser_init(&s->head);
        http_parse_request(&s->head, data, s->head_len, &req);
    }

    /* Keep-alive is the default in HTTP/1.1; in 1.0 only if asked for (RFC 9112 9.3). */
    bool keep_alive = req.keep_alive && !s->stopping;
    unsigned flags = 0;
    if (!keep_alive)
        flags |= RESPONSE_CLOSE;
    else if (req.minor_version == 0)
        flags |= RESPONSE_KEEP_ALIVE;
    /* HEAD is GET without the body (RFC 9110 section 9.3.2): same headers, no content. */
    if (req.method == HTTP_METHOD_HEAD)
        flags |= RESPONSE_NO_BODY;
    struct exchange x = {
        .conn = c, .req = &req, .body = body, .body_len = body_len, .flags = flags};
    app_serve(&x);
    requests_served++;

    start_next_request(s);
    if (x.offloaded) {
        /* No answer yet, so nothing after it either: wait for the worker. */
        conn_pause(c);
        s->waiting_for_job = true;
        s->close_after_job = !keep_alive;
    } else if (!req.keep_alive) {
        /* The client said this was its last request (RFC 9112 section 9.6). */
        conn_close_no_linger(c);
        s->done = true;
    } else if (!keep_alive) {
        conn_close(c); /* we are stopping: the client may be sending its next request */
        s->done = true;
    } else if (x.file_queued) {
        /* The next pipelined answer must not overtake the file: wait until it is out. */
        conn_pause(c);
        s->sending_file = true;
    }
    return request_len;
}

void protocol_on_open(struct conn *c)
{
    struct session *s = conn_session(c);
    *s = (struct session){0};
    start_next_request(s);
    conn_set_timeout(c, idle_timeout_ms);
}

size_t protocol_on_data(struct conn *c, char *data, size_t len)
{
    struct session *s = conn_session(c);
    size_t used = 0;
    while (used < len && !s->done && !s->sending_file && !s->waiting_for_job) {
        size_t n = serve_request(c, s, data + used, len - used);
        if (n == 0)
            break;
        used += n;
    }
    if (s->done)
        return len; /* closing: whatever else arrived is not answered (RFC 9112 9.6) */

    /*
     * Timeouts. A head must arrive whole within the header timeout, counted from its first
     * byte, however slowly it trickles in: a slowloris client cannot hold the connection
     * by sending a byte now and then. A body, and the wait for the next request, get the
     * idle timeout, restarted by every byte that arrives.
     */
    s->partial = used < len;
    if (s->partial && s->head_len == 0 && !s->sending_file && !s->waiting_for_job) {
        if (!s->head_clock)
            conn_set_timeout(c, header_timeout_ms);
        s->head_clock = true;
    } else {
        conn_set_timeout(c, idle_timeout_ms);
    }
    return used;
}

/* The file of the last response is out: serve what was held back meanwhile. */
void protocol_on_file_sent(struct conn *c)
{
    struct session *s = conn_session(c);
    if (s->sending_file) {
        s->sending_file = false;
        conn_resume(c);
    }
}

/* A worker did the last request's work (its job comes back as the message): send its
 * response, then go on with the next. */
void protocol_on_message(struct conn *c, struct loop_message *m)
{
    struct job *job = (struct job *)m; /* the message is the job's first member */
    struct session *s = conn_session(c);
    bool last = s->close_after_job || s->stopping;
    app_finish_job(c, job, last);
    s->waiting_for_job = false;
    if (last) {
        conn_close(c);
        s->done = true;
    } else {
        conn_resume(c);
    }
}

/* The client will send nothing more. Answers already queued still go out, then we close. */
void protocol_on_eof(struct conn *c)
{
    struct session *s = conn_session(c);
    if (s->waiting_for_job) {
        s->close_after_job = true; /* its answer is still to come */
        return;
    }
    conn_close(c);
    s->done = true;
}

/*
 * The server is stopping. HTTP knows when a connection is between requests: close those
 * now. A connection in the middle of a request gets its answer, marked as the last one.
 */
void protocol_on_stop(struct conn *c)
{
    struct session *s = conn_session(c);
    s->stopping = true;
    if (!s->partial && !s->waiting_for_job) {
        conn_close(c);
        s->done = true;
    }
}

/*
 * A client that started a request and stalled gets 408 (RFC 9110 section 15.5.9); an idle
 * keep-alive connection is closed without a word, as a client may be sending a new request
 * at this very moment and would take a 408 for its answer.
 */
void protocol_on_timeout(struct conn *c)
{
    struct session *s = conn_session(c);
    if (s->partial)
        reject(c, s, 408);
    else {
        conn_close(c);
        s->done = true;
    }
}
