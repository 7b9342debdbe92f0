/* Signal handlers that only set flags. */
#include "signals.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t want_checkpoint, want_stop, interrupts;

static void on_signal(int sig)
{
    if (sig == SIGUSR1) {
        want_checkpoint = 1;
        return;
    }
    if (sig == SIGINT && ++interrupts > 1) {
        static const char msg[] = "ddtrain: second interrupt, exiting now\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        _exit(130);
    }
    want_stop = 1;
}

void signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* what launch/ddtrain-run sends for SIGTERM/SIGINT, through mpirun */
    sigaction(SIGUSR2, &sa, NULL);
}

int signals_take_checkpoint(void)
{
    int v = want_checkpoint;
    want_checkpoint = 0;
    return v;
}

int signals_take_stop(void)
{
    int v = want_stop;
    want_stop = 0;
    return v;
}
