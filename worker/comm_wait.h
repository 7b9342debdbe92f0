/* Waiting on other ranks without hanging forever: the back-off of every
 * wait of a step (spin, then yield the core, then nap) and the watchdog's
 * deadline, after which the wait tells its caller who is missing. It knows
 * neither MPI requests nor shared-memory flags: comm.c and comm_node.c poll
 * what they wait for and call comm_backoff_pause between polls. */
#ifndef DDT_COMM_WAIT_H
#define DDT_COMM_WAIT_H

#include <stdbool.h>
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
};

/* Called once at half the deadline of a wait and once at the deadline
 * (fatal); a fatal call is expected to end the job. If it returns, the wait
 * goes on without a deadline. */
typedef void (*comm_stall_fn)(void *user, const struct comm_stall *s);

#define COMM_WATCH_STEPS 15  /* recent step times the median is taken over */

/* The watchdog of one rank's waits. The deadline of a wait is
 * max(timeout, step_multiple x the median of the recent step times), so a
 * slow but alive run is never ended; timeout 0 turns the deadline off. */
struct comm_watch {
    double timeout;          /* seconds; 0: waits never end */
    double step_multiple;
    comm_stall_fn on_stall;  /* NULL: nobody is told */
    void *user;
    int64_t step;            /* the step being taken (or about to be), from 1 */
    double recent[COMM_WATCH_STEPS]; /* seconds, a ring */
    int nrecent, next;
    double median;           /* of recent[0..nrecent) */
    int *missing;            /* scratch for a report: one slot per rank */
};

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

#endif
