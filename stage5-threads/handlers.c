/*
 * handlers.c - what the application answers (see the route table in app.c).
 *
 * A handler gets the exchange (request, parameters, body) and queues exactly one
 * response with respond(). It must not block: work that does goes to exchange_offload().
 */
#include "handlers.h"
#include "exchange.h"
#include "response.h"
#include "workers.h"

#include <stdio.h>

/* The longest /delay/:ms handler_delay accepts: long enough to show the problem, short
 * enough that a stray request does not hold a test up for long. */
enum { DELAY_MAX_MS = 10000 };

void handle_plaintext(struct exchange *x)
{
    static const char HELLO[] = "Hello, World!";
    respond(x, 200, "text/plain", NULL, HELLO, sizeof HELLO - 1);
}

void handle_echo(struct exchange *x)
{
    respond(x, 200, "application/octet-stream", NULL, x->body, x->body_len);
}

void handle_user(struct exchange *x)
{
    struct http_slice id = exchange_param(x, "id");
    char body[HTTP_MAX_TARGET_LEN + 16];
    int len = snprintf(body, sizeof body, "user %.*s\n", (int)id.len, id.ptr);
    respond(x, 200, "text/plain; charset=utf-8", NULL, body, (size_t)len);
}

/*
 * Simulates slow, blocking work (a database call, a big computation) by sleeping. It runs
 * on a worker thread (exchange_offload), so the event loop goes on serving everyone else.
 * The sleep ends early if the server is exiting (workers_sleep()): nobody waits for the
 * answer then, which is only filled in so that the job is whole.
 */
static void delay_work(struct job *job)
{
    long ms = job->arg;
    bool slept = workers_sleep(ms);

    job->status = slept ? 200 : 503;
    job->content_type = "text/plain";
    job->body_len = (size_t)snprintf(job->body, sizeof job->body, "%s %ld ms\n",
                                     slept ? "waited" : "stopped before", ms);
}

void handle_delay(struct exchange *x)
{
    struct http_slice text = exchange_param(x, "ms");
    long ms = 0;
    for (size_t i = 0; i < text.len; i++) {
        if (text.ptr[i] < '0' || text.ptr[i] > '9' || ms > DELAY_MAX_MS) {
            ms = -1;
            break;
        }
        ms = ms * 10 + (text.ptr[i] - '0');
    }
    if (ms < 0 || ms > DELAY_MAX_MS || text.len == 0) {
        static const char BAD[] = "400 Bad Request: the delay is 0 to 10000 milliseconds\n";
        respond(x, 400, "text/plain", NULL, BAD, sizeof BAD - 1);
        return;
    }
    exchange_offload(x, delay_work, ms);
}
