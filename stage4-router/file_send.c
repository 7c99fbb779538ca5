/*
 * file_send.c - a connection's file, from the page cache to its socket (see file_send.h).
 *
 * sendfile() hands the socket references to the file's pages in the page cache: no copy
 * into our memory and out again. Both backends use it, the epoll one when the socket is
 * writable, the io_uring one (stage 6) from its loop, as io_uring has no operation of its
 * own for it; so it is here, once.
 */
#include "file_send.h"

#include "backend.h"
#include "log.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <sys/types.h>

bool file_send_now(struct conn *c)
{
    while (c->file_fd >= 0) {
        off_t offset = c->file_offset;
        ssize_t n = sendfile(c->fd, c->file_fd, &offset, c->file_left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return true; /* full: the backend waits for room */
            conn_failed(c, errno, "sendfile");
            return false;
        }
        if (n == 0) {
            /* The file shrank under us: the promised Content-Length can no longer be met. */
            log_error("sendfile: the file ended early");
            return false;
        }
        conn_file_sent(c, (size_t)n);
    }
    return true;
}
