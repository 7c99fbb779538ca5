/*
 * workers.c - a bounded pool of threads for handlers that block (see workers.h).
 *
 * One queue, one mutex, one condition variable: loops push jobs, idle workers sleep on
 * the condition variable and pop them. The queue is bounded: when the workers cannot
 * keep up, a new job is refused at once (the handler answers 503 with Retry-After)
 * rather than piling up, so memory and waiting times stay bounded under overload.
 *
 * The lock is taken once per job, not per request: only blocking handlers come here, and
 * they take milliseconds, so a simple lock is far from being the bottleneck.
 *
 * Stopping: workers_stop() comes after the loops have ended, once the drain period
 * (--shutdown-timeout) is over, and joins the workers. A job still running then would
 * hold the exit for as long as it takes, so jobs that wait do it in workers_sleep(),
 * which the stop wakes: a second condition variable, since a submit's signal on the
 * first must wake an idle worker, not a sleeping job.
 */
#include "workers.h"
#include "log.h"
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t job_waiting = PTHREAD_COND_INITIALIZER;
static pthread_cond_t stop_asked = PTHREAD_COND_INITIALIZER; /* for jobs in workers_sleep() */
static struct job *head, *tail; /* the queue, oldest first */
static size_t queued, queue_limit;
static bool stopping;
static pthread_t *threads;
static size_t thread_count;

static void *worker_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (head == NULL && !stopping)
            pthread_cond_wait(&job_waiting, &lock);
        if (head == NULL) { /* stopping, and nothing left to do */
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        struct job *job = head;
        head = job->next;
        if (head == NULL)
            tail = NULL;
        queued--;
        pthread_mutex_unlock(&lock);

        job->work(job); /* the blocking part, with no lock held */
        loop_post(job->loop, &job->message); /* the loop sends the response */
    }
}

bool workers_start(size_t count, size_t queue_max, char *err, size_t errlen)
{
    threads = calloc(count, sizeof *threads);
    if (threads == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    queue_limit = queue_max;
    for (; thread_count < count; thread_count++) {
        int rc = pthread_create(&threads[thread_count], NULL, worker_main, NULL);
        if (rc != 0) {
            snprintf(err, errlen, "pthread_create: %s", strerror(rc));
            return false;
        }
    }
    return true;
}

bool workers_submit(struct job *job)
{
    pthread_mutex_lock(&lock);
    bool accepted = queued < queue_limit && !stopping;
    if (accepted) {
        job->next = NULL;
        if (tail != NULL)
            tail->next = job;
        else
            head = job;
        tail = job;
        queued++;
        pthread_cond_signal(&job_waiting);
    }
    pthread_mutex_unlock(&lock);
    return accepted;
}

bool workers_sleep(long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until); /* wall-clock changes must not stretch it */
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&lock);
    int rc = 0;
    while (!stopping && rc != ETIMEDOUT) /* 0 may be a spurious wakeup: wait on */
        rc = pthread_cond_clockwait(&stop_asked, &lock, CLOCK_MONOTONIC, &until);
    bool slept = !stopping;
    pthread_mutex_unlock(&lock);
    return slept;
}

void workers_stop(void)
{
    pthread_mutex_lock(&lock);
    stopping = true;
    /* Jobs nobody started: their connections are gone (the loops have stopped). */
    while (head != NULL) {
        struct job *job = head;
        head = job->next;
        free(job);
    }
    tail = NULL;
    queued = 0;
    pthread_cond_broadcast(&job_waiting);
    pthread_cond_broadcast(&stop_asked);
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < thread_count; i++)
        pthread_join(threads[i], NULL);
    free(threads);
}
