/*
 * workers.h - a bounded pool of threads for handlers that block.
 *
 * An event loop must never block, or every connection it holds waits. Work that does
 * (sleeping, a slow disk, a database call) is wrapped in a job: a worker thread runs it,
 * then posts the job back to the loop that owns the connection (loop_post, as a
 * message), which sends
 * the response from its own thread. The connection waits, paused, meanwhile.
 */
#ifndef WORKERS_H
#define WORKERS_H

#include "loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    JOB_BODY_MAX = 256, /* the longest response body a job can produce */
    JOB_REQUEST_LINE_MAX = 512, /* what of the request line the access log keeps */
};

struct job {
    struct loop_message message; /* first: how the finished job goes back to its loop */
    struct job *next; /* in the pool's queue */
    void (*work)(struct job *j); /* runs on a worker thread: may block */
    struct loop *loop; /* where to post the finished job */
    long arg; /* the handler's input */

    /* The response, filled in by work(): */
    int status;
    const char *content_type;
    char body[JOB_BODY_MAX];
    size_t body_len;

    /* For the connection and the access log, when the response is sent: */
    unsigned response_flags;
    char client[48];
    char request_line[JOB_REQUEST_LINE_MAX];
};

/* Starts the workers, at start-up. queue_max: jobs that may wait; more are refused. */
bool workers_start(size_t threads, size_t queue_max, char *err, size_t errlen);

/* Queues a job (any loop thread). False if the queue is full: the caller answers 503. */
bool workers_submit(struct job *job);

/*
 * For a job's work: sleeps ms milliseconds, unless the pool is stopped meanwhile. False if
 * it was: the server is exiting, the job's connection is gone, and the job should end
 * now, so that the exit is not held up. Work that waits should wait here, not in
 * nanosleep(); work that cannot be cut short holds the exit until it ends.
 */
bool workers_sleep(long ms);

/* Wakes jobs in workers_sleep(), frees the queued ones, and joins the threads once the
 * running jobs have ended. Called once the loops have ended: no connection is left to
 * answer. */
void workers_stop(void);

#endif
