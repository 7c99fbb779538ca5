/*
 * signals.h - SIGINT and SIGTERM (stop), and SIGPIPE (never).
 *
 * Two ways to hear a stop signal, one per kind of server:
 * - a blocking server (stage 1) installs a handler that counts the signal; the signal
 *   interrupts whatever call the server is blocked in (EINTR), and it checks the count;
 * - an event loop (stage 2 on) blocks the signals and reads them from a signalfd, an
 *   ordinary descriptor it waits on with everything else: no handler, no EINTR races.
 */
#ifndef SIGNALS_H
#define SIGNALS_H

/* A peer that resets makes write() fail with EPIPE instead of killing the process. */
void signals_ignore_sigpipe(void);

/*
 * Stage 1: count SIGINT and SIGTERM; blocking calls they interrupt fail with EINTR. The
 * first one also shuts down listen_fd, so accept() fails with EINVAL from then on, also
 * when the signal lands just before the server blocks in it, and sets an alarm: drain
 * seconds later (0: never), SIGALRM counts as a second stop signal.
 */
void signals_count_stops(int listen_fd, unsigned drain);
/* Stage 1: the client being served (-1: none), shut down at the second stop signal. */
void signals_serving(int fd);
/* How many stop signals have arrived: 0 = run, 1 = finish and stop, 2 = stop now. */
int signals_stop_count(void);

/* Stage 2 on: block SIGINT and SIGTERM and return a non-blocking signalfd for them. */
int signals_stop_fd(void);

#endif
