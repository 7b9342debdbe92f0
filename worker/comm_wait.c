/* Back-off and deadline of the waits on other ranks.
 *
 * Why three phases: most waits of a healthy step end within microseconds,
 * and a syscall there would cost more than the wait, so the first polls
 * only spin. A longer wait yields the core, which a rank sharing it with
 * the one it waits for needs. Only a wait that has lasted longer than a
 * whole step (never less than NAP_AFTER) naps: Open MPI moves data only
 * inside MPI calls, so a napping rank would slow a healthy transfer, but a
 * wait that long is no longer healthy, and a stalled job then stops burning
 * its cores.
 *
 * A rank that was itself stopped (SIGSTOP, a suspended machine) finds, once
 * it runs again, a wait that seems to have lasted for ages: a gap between
 * two polls far longer than any nap is this rank's own absence, not its
 * peers' silence, and does not count. */
#include "comm_wait.h"

#include <sched.h>
#include <stddef.h>
#include <time.h>

#define SPIN_POLLS 1000
#define NAP_AFTER 0.05       /* seconds */
#define NAP_FIRST_NS 50000L
#define NAP_MAX_NS 4000000L
#define FROZEN_GAP 1.0       /* seconds between two polls: this rank was not running */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void comm_watch_step_time(struct comm_watch *w, double seconds)
{
    w->recent[w->next] = seconds;
    w->next = (w->next + 1) % COMM_WATCH_STEPS;
    if (w->nrecent < COMM_WATCH_STEPS)
        w->nrecent++;
    /* insertion sort of at most COMM_WATCH_STEPS values: cheaper than a call */
    double s[COMM_WATCH_STEPS];
    for (int i = 0; i < w->nrecent; i++) {
        int j = i;
        for (; j > 0 && s[j - 1] > w->recent[i]; j--)
            s[j] = s[j - 1];
        s[j] = w->recent[i];
    }
    w->median = s[w->nrecent / 2];
}

double comm_watch_deadline(const struct comm_watch *w)
{
    if (w->timeout <= 0)
        return 0;
    double scaled = w->step_multiple * w->median;
    return scaled > w->timeout ? scaled : w->timeout;
}

bool comm_backoff_pause(struct comm_backoff *b)
{
    if (b->polls < SPIN_POLLS) {
        b->polls++;
        return false;
    }
    double now = now_seconds();
    if (b->polls == SPIN_POLLS) {
        b->polls++;
        b->start = now;
        b->nap_from = now + (b->w->median > NAP_AFTER ? b->w->median : NAP_AFTER);
        b->deadline = comm_watch_deadline(b->w);
        b->nap_ns = NAP_FIRST_NS;
        b->told = 0;
        b->last = now;
    }
    if (now - b->last > FROZEN_GAP)
        b->start += now - b->last;
    b->last = now;
    if (now < b->nap_from) {
        sched_yield();
    } else {
        struct timespec ts = { 0, b->nap_ns };
        nanosleep(&ts, NULL);
        b->nap_ns = b->nap_ns * 2 < NAP_MAX_NS ? b->nap_ns * 2 : NAP_MAX_NS;
    }
    if (b->deadline <= 0 || b->told == 2)
        return false;
    double waited = now - b->start;
    return (b->told == 0 && waited >= b->deadline / 2) || waited >= b->deadline;
}

void comm_backoff_report(struct comm_backoff *b, const char *where, const int *missing,
                         int nmissing)
{
    double waited = now_seconds() - b->start;
    struct comm_stall s = {
        .where = where, .step = b->w->step, .missing = missing, .nmissing = nmissing,
        .waited = waited, .deadline = b->deadline, .fatal = waited >= b->deadline,
    };
    b->told = s.fatal ? 2 : 1;
    if (b->w->on_stall)
        b->w->on_stall(b->w->user, &s);
}
