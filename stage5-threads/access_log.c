/*
 * access_log.c - a middleware that logs each request in Common Log Format:
 *
 *     127.0.0.1 - - [21/Nov/2026:15:56:33 +0000] "GET /plaintext HTTP/1.1" 200 13
 *
 * client, identity and user (unknown: "-"), time, request line, status, body bytes ("-"
 * for none). The line is written when the response has been queued, which is when its
 * status and size are known. The file is line-buffered: each line is one write(), whole.
 */
#include "access_log.h"
#include "clock_text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static FILE *log_file;

bool access_log_open(const char *path, char *err, size_t errlen)
{
    log_file = fopen(path, "ae"); /* e: O_CLOEXEC */
    if (log_file == NULL) {
        snprintf(err, errlen, "--access-log %s: %s", path, strerror(errno));
        return false;
    }
    setvbuf(log_file, NULL, _IOLBF, 0);
    return true;
}

/* CLF's time, "21/Nov/2026:15:56:33 +0000", with a copy per thread like the Date header. */
static const char *log_time(void)
{
    static _Thread_local struct clock_text now;
    return clock_text_now(&now, "%d/%b/%Y:%H:%M:%S +0000");
}

bool access_log_enabled(void)
{
    return log_file != NULL;
}

void access_log_request_line(const struct exchange *x, char *buf, size_t size)
{
    const struct http_request *req = x->req;
    snprintf(buf, size, "%.*s %.*s HTTP/1.%d", (int)req->method_name.len, req->method_name.ptr,
             (int)req->target.len, req->target.ptr, req->minor_version);
}

void access_log_write(const char *client, const char *request_line, int status, size_t body_bytes)
{
    char bytes[24] = "-";
    if (body_bytes > 0)
        snprintf(bytes, sizeof bytes, "%zu", body_bytes);
    fprintf(log_file, "%s - - [%s] \"%s\" %d %s\n", client, log_time(), request_line, status,
            bytes);
}

void access_log(struct exchange *x)
{
    exchange_next(x);
    if (x->offloaded)
        return; /* the response is not made yet: logged when it is (app_finish_job) */

    char client[INET6_ADDRSTRLEN];
    conn_peer_name(x->conn, client, sizeof client);
    char request_line[HTTP_MAX_METHOD_LEN + HTTP_MAX_TARGET_LEN + sizeof " HTTP/1.1"];
    access_log_request_line(x, request_line, sizeof request_line);
    access_log_write(client, request_line, x->status, x->body_bytes);
}
