/* Waiting on other ranks without hanging forever: the back-off of every
 * wait of a step (spin, then yield the core, then nap) and the watchdog's
 * deadline, after which the wait tells its caller who is missing. It knows
 * neither MPI requests nor shared-memory flags: comm.c and comm_node.c poll
 * what they wait for and call comm_backoff_pause between polls. The
 * collectives that must stay blocking (their non-blocking forms may sum in
 * another order) cannot poll: a guard marks them, and a thread of the
 * watchdog's own measures them (comm_guard_enter). */
#ifndef DDT_COMM_WAIT_H
#define DDT_COMM_WAIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a wait that ran long tells the caller's on_stall. */
struct comm_stall {
    const char *where;       /* the wait: "the gradient allreduce", ... */
    int64_t step;            /* the step it belongs to, counted from 1 */
    const int *missing;      /* the ranks not heard from, ascending; NULL when a
                              * collective cannot say which rank it lacks */
    int nmissing;
    double waited;           /* seconds so far */
    double deadline;         /* seconds the wait may last */
    bool fatal;              /* the deadline has passed (else half of it has) */
    int rank;                /* the rank that waits */
    bool off_main_thread;    /* told by the guards' thread while the main thread
                              * is inside an MPI call: make no MPI call (see
                              * comm_guard_enter) */
};

/* Called once at half the deadline of a wait and once at the deadline
 * (fatal); a fatal call is expected to end the job. If it returns, the wait
 * goes on without a deadline. It may be called from the guards' thread
 * (s->off_main_thread), while the main thread waits in the guarded call. */
typedef void (*comm_stall_fn)(void *user, const struct comm_stall *s);

#define COMM_WATCH_STEPS 15  /* recent step times the median is taken over */

/* What a watchdog is built from. */
struct comm_watch_settings {
    double timeout;          /* seconds; 0: waits never end */
    double step_multiple;
    comm_stall_fn on_stall;  /* NULL: nobody is told */
    void *user;
};

/* The watchdog of one rank's waits. The deadline of a wait is
 * max(timeout, step_multiple x the median of the recent step times), so a
 * slow but alive run is never ended; timeout 0 turns the deadline off. */
struct comm_watch {
    double timeout;          /* seconds; 0: waits never end */
    double step_multiple;
    comm_stall_fn on_stall;  /* NULL: nobody is told */
    void *user;
    int rank, nranks;
    int64_t step;            /* the step being taken (or about to be), from 1 */
    double recent[COMM_WATCH_STEPS]; /* seconds, a ring */
    int nrecent, next;
    double median;           /* of recent[0..nrecent) */
    int *missing;            /* scratch for a report: one slot per rank */
    /* the guard of a blocking collective: who holds `guard` owns the
     * guard_* fields (see comm_wait.c) */
    _Atomic int guard;       /* GUARD_OUT, GUARD_IN (the main thread), GUARD_TELLING (the thread) */
    const char *guard_where;
    int64_t guard_step;
    double guard_start;      /* monotonic seconds */
    double guard_deadline;   /* seconds; 0: none */
    uint64_t guard_entries;  /* tells one guarded call from the next */
    int guard_missing;       /* the report's rank (two ranks: the other one) */
    /* the thread that watches the guards (when thread_on) */
    bool thread_on, stopping;
    pthread_t thread;
    pthread_mutex_t lock;    /* over stopping, for the condition */
    pthread_cond_t wake;     /* CLOCK_MONOTONIC */
};

/* The watchdog of rank `rank` of `nranks` (s NULL: off): its fields, its
 * report scratch and, when there is a deadline, somebody to tell and more
 * than one rank, the thread that watches the guards (signals stay with the
 * other threads). One engine, one watchdog: one thread per process.
 * Returns 0, or -1 with err (out of memory, no thread). */
int comm_watch_init(struct comm_watch *w, const struct comm_watch_settings *s, int rank,
                    int nranks, char *err, size_t errlen);
/* Stops and joins the thread and frees the scratch; not inside a guard.
 * Harmless on a zeroed watch, a failed one, or twice. */
void comm_watch_free(struct comm_watch *w);

/* A step took `seconds`: the deadline follows the median of the recent ones. */
void comm_watch_step_time(struct comm_watch *w, double seconds);

/* Seconds a wait may last now (0: no deadline). */
double comm_watch_deadline(const struct comm_watch *w);

/* The state of one wait. Polls are free until the first pause that reads
 * the clock, so a wait that is over at once costs nothing more. */
struct comm_backoff {
    struct comm_watch *w;
    unsigned polls;
    double start;            /* when spinning stopped (monotonic seconds) */
    double nap_from;         /* yield until then, nap after */
    double deadline;         /* seconds after start; 0: none */
    double last;             /* the previous pause */
    long nap_ns;
    int told;                /* 0; 1: half the deadline reported; 2: all of it */
};

static inline void comm_backoff_init(struct comm_backoff *b, struct comm_watch *w)
{
    b->w = w;
    b->polls = 0;
}

/* After a poll that found the wait not over: spins for the first polls,
 * then yields the core, then (once the wait has lasted longer than a step
 * should) naps for a time growing to a few milliseconds. Returns true when
 * the watchdog must hear of this wait: comm_backoff_report says whom it
 * lacks. */
bool comm_backoff_pause(struct comm_backoff *b);

/* Tells on_stall of the wait (missing: see struct comm_stall). */
void comm_backoff_report(struct comm_backoff *b, const char *where, const int *missing,
                         int nmissing);

/* The main thread is about to make the blocking MPI call `where` (a
 * literal: "the allreduce of the evaluation's sums"), which cannot poll.
 * The watchdog's thread then measures it against comm_watch_deadline as it
 * stands now: at half of it on_stall hears of it, at all of it (fatal) too,
 * with missing NULL, except with two ranks, where a collective lacks the
 * other one. comm_guard_leave after the call. Two atomic stores and a clock
 * read: nothing that changes the call or what it sums. w NULL, or a watch
 * without a thread: nothing.
 *
 * Why the thread may call on_stall: ddtrain initialises MPI with MPI_Init,
 * MPI_THREAD_SINGLE, so only the main thread may call MPI, and it is
 * inside the stalled call; MPI_Abort from this thread would be outside the
 * standard. A higher thread level would not make it legal either
 * (FUNNELED: the main thread only; SERIALIZED: never two at once) short of
 * MPI_THREAD_MULTIPLE, which makes every call of a healthy step take locks.
 * So the thread makes no MPI call: it sets s->off_main_thread, and the
 * daemon's on_stall (stall.c) logs, publishes the status (a lock, no MPI)
 * and ends the process with _exit(5); mpirun (Open MPI 4.1) then ends the
 * other ranks, stopped ones included, and exits 5, as it does after
 * MPI_Abort, and launch/ddtrain-run with it (tried: tests/e2e_stall.sh). */
void comm_guard_enter(struct comm_watch *w, const char *where);
/* The blocking call has returned; waits for a report of it under way. */
void comm_guard_leave(struct comm_watch *w);

#endif
