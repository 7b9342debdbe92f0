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
 * peers' silence, and does not count.
 *
 * A guarded (blocking) call cannot poll, so a thread polls for it. The
 * guard's fields belong to whoever holds `guard`: the main thread writes
 * them while it is GUARD_OUT and publishes them by storing GUARD_IN
 * (release); the thread looks only after taking GUARD_IN to GUARD_TELLING
 * (acquire), and gives it back when done; the main thread leaves only from
 * GUARD_IN. So the thread never sees a guard half written, the main thread
 * never leaves (or enters the next guard, or writes the control status)
 * while a report is being made, and neither takes a lock: a healthy
 * guarded call pays two atomic stores and a clock read. */
#include "comm_wait.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SPIN_POLLS 1000
#define NAP_AFTER 0.05       /* seconds */
#define NAP_FIRST_NS 50000L
#define NAP_MAX_NS 4000000L
#define FROZEN_GAP 1.0       /* seconds between two polls: this rank was not running */
#define GUARD_POLL 0.25      /* seconds between the guard thread's looks, at most */

enum { GUARD_OUT = 0, GUARD_IN, GUARD_TELLING };

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
        .rank = b->w->rank,
    };
    b->told = s.fatal ? 2 : 1;
    if (b->w->on_stall)
        b->w->on_stall(b->w->user, &s);
}

/* ---- the guards of blocking calls and their thread ------------------------ */

void comm_guard_enter(struct comm_watch *w, const char *where)
{
    if (!w || !w->thread_on)
        return;
    w->guard_where = where;
    w->guard_step = w->step;
    w->guard_start = now_seconds();
    w->guard_deadline = comm_watch_deadline(w);
    w->guard_entries++;
    atomic_store_explicit(&w->guard, GUARD_IN, memory_order_release);
}

void comm_guard_leave(struct comm_watch *w)
{
    if (!w || !w->thread_on)
        return;
    int in = GUARD_IN;
    /* fails while the thread looks or reports: that takes microseconds */
    while (!atomic_compare_exchange_weak_explicit(&w->guard, &in, GUARD_OUT,
                                                  memory_order_acq_rel, memory_order_relaxed)) {
        in = GUARD_IN;
        sched_yield();
    }
}

/* What the thread remembers of the guarded call it last looked at. */
struct guard_look {
    uint64_t entry;          /* guard_entries of that call */
    int told;                /* 0; 1: half the deadline reported; 2: all of it */
    double absent;           /* seconds of it this process was not running */
};

static void guard_tell(struct comm_watch *w, double waited, bool fatal)
{
    bool one = w->nranks == 2; /* a collective of two ranks lacks the other one */
    w->guard_missing = 1 - w->rank;
    struct comm_stall s = {
        .where = w->guard_where, .step = w->guard_step,
        .missing = one ? &w->guard_missing : NULL, .nmissing = one ? 1 : 0,
        .waited = waited, .deadline = w->guard_deadline, .fatal = fatal,
        .rank = w->rank, .off_main_thread = true,
    };
    w->on_stall(w->user, &s);
}

/* One look at the guard at `now`, the previous one having been at `last`;
 * returns the seconds until the next look (an eighth of a short deadline). */
static double guard_check(struct comm_watch *w, struct guard_look *g, double now, double last)
{
    int in = GUARD_IN;
    if (!atomic_compare_exchange_strong_explicit(&w->guard, &in, GUARD_TELLING,
                                                 memory_order_acquire, memory_order_relaxed))
        return GUARD_POLL;
    if (g->entry != w->guard_entries) {
        g->entry = w->guard_entries;
        g->told = 0;
        g->absent = 0;
    }
    /* the whole process was stopped: its absence is nobody's silence */
    if (now - last > FROZEN_GAP)
        g->absent += now - (last > w->guard_start ? last : w->guard_start);
    double waited = now - w->guard_start - g->absent, d = w->guard_deadline;
    if (d > 0 && g->told == 0 && waited >= d / 2) {
        g->told = 1;
        guard_tell(w, waited, false);
    }
    if (d > 0 && g->told == 1 && waited >= d) {
        g->told = 2;
        guard_tell(w, waited, true);
    }
    atomic_store_explicit(&w->guard, GUARD_IN, memory_order_release);
    return d > 0 && d / 8 < GUARD_POLL ? d / 8 : GUARD_POLL;
}

static void *guard_thread(void *arg)
{
    struct comm_watch *w = arg;
    struct guard_look g = { 0 };
    double last = now_seconds(), pause = GUARD_POLL;
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        double until = last + pause;
        struct timespec ts = { (time_t)until, (long)((until - (double)(time_t)until) * 1e9) };
        if (ts.tv_nsec >= 1000000000L)
            ts = (struct timespec){ ts.tv_sec + 1, 0 };
        pthread_cond_timedwait(&w->wake, &w->lock, &ts);
        if (w->stopping)
            break;
        pthread_mutex_unlock(&w->lock);
        double now = now_seconds();
        pause = guard_check(w, &g, now, last);
        last = now;
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* The thread, with every signal blocked: the handlers (a checkpoint
 * request, a stop) stay with the main thread, as before there was one. */
static int start_thread(struct comm_watch *w)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca))
        return -1;
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (!rc)
        rc = pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (rc)
        return rc;
    if ((rc = pthread_mutex_init(&w->lock, NULL))) {
        pthread_cond_destroy(&w->wake);
        return rc;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&w->thread, NULL, guard_thread, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        return rc;
    }
    w->thread_on = true;
    return 0;
}

int comm_watch_init(struct comm_watch *w, const struct comm_watch_settings *s, int rank,
                    int nranks, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    atomic_init(&w->guard, GUARD_OUT);
    w->rank = rank;
    w->nranks = nranks;
    if (s) {
        w->timeout = s->timeout;
        w->step_multiple = s->step_multiple;
        w->on_stall = s->on_stall;
        w->user = s->user;
    }
    w->missing = malloc((size_t)nranks * sizeof *w->missing);
    if (!w->missing) {
        snprintf(err, errlen, "out of memory for the watchdog");
        return -1;
    }
    /* one rank has nobody to wait for */
    int rc = w->timeout > 0 && w->on_stall && nranks > 1 ? start_thread(w) : 0;
    if (rc) {
        snprintf(err, errlen, "the watchdog's thread: %s", strerror(rc > 0 ? rc : errno));
        return -1;
    }
    return 0;
}

void comm_watch_free(struct comm_watch *w)
{
    if (w->thread_on) {
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        w->thread_on = false;
    }
    free(w->missing);
    w->missing = NULL;
}
