/* Signal handlers that only count requests; the loop takes them at a safe
 * point.
 *
 * Nothing is ever cleared: each handler increments its counter, and a taker
 * compares the counter with the count it saw last time. A read-then-clear
 * would lose a signal that lands between the read and the clear; here such a
 * signal just makes the counter differ at the next take. Only handlers write
 * the counters, and all four signals stay blocked while any handler runs, so
 * one handler cannot interrupt another's increment (SIGTERM's by SIGINT's). */
#include "signals.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t checkpoint_requests, stop_requests, interrupts;

/* the counts the takers saw last; main thread only */
static sig_atomic_t checkpoint_seen, stop_seen;

static void on_signal(int sig)
{
    if (sig == SIGUSR1) {
        checkpoint_requests++;
        return;
    }
    if (sig == SIGINT && ++interrupts > 1) {
        static const char msg[] = "ddtrain: second interrupt, exiting now\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        _exit(130);
    }
    stop_requests++;
}

void signals_install(void)
{
    /* SIGUSR2 is what launch/ddtrain-run sends for SIGTERM/SIGINT, through mpirun */
    static const int handled[] = { SIGUSR1, SIGTERM, SIGINT, SIGUSR2 };
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++)
        sigaddset(&sa.sa_mask, handled[i]);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++)
        sigaction(handled[i], &sa, NULL);
}

/* One read of the counter: whatever arrives after it differs next time. */
static int take(volatile sig_atomic_t *requests, sig_atomic_t *seen)
{
    sig_atomic_t now = *requests;
    int pending = now != *seen;
    *seen = now;
    return pending;
}

int signals_take_checkpoint(void)
{
    return take(&checkpoint_requests, &checkpoint_seen);
}

int signals_take_stop(void)
{
    return take(&stop_requests, &stop_seen);
}

void signals_announce_ready(void)
{
    const char *path = getenv("DDTRAIN_READY_FILE");
    if (!path || !*path)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
}
