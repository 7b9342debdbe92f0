/* The watchdog's report: a log line on the rank that noticed, the status of
 * the control socket on rank 0, and the end of the job at the deadline. */
#include "stall.h"

#include <mpi.h>
#include <stdio.h>
#include <unistd.h>

#include "exit_status.h"
#include "log.h"

/* "rank 1", "ranks 1, 3" or what a collective can say. */
static void format_missing(const struct comm_stall *s, char *out, size_t len)
{
    if (!s->missing || s->nmissing == 0) {
        snprintf(out, len, "a rank of this collective has not joined it (which one cannot be told here)");
        return;
    }
    int at = snprintf(out, len, "no progress from rank%s", s->nmissing > 1 ? "s" : "");
    for (int i = 0; i < s->nmissing && at > 0 && (size_t)at < len; i++)
        at += snprintf(out + at, len - (size_t)at, "%s %d", i ? "," : "", s->missing[i]);
}

/* Makes no MPI call before the end: it may run on the watchdog's thread
 * (comm_guard_enter in comm_wait.h says why that thread must not). */
void stall_report(void *user, const struct comm_stall *s)
{
    struct control *ctl = user;
    char who[256], when[64], text[512];
    format_missing(s, who, sizeof who);
    if (s->step > 0)
        snprintf(when, sizeof when, "at step %ld", (long)s->step);
    else
        snprintf(when, sizeof when, "before the first step");
    snprintf(text, sizeof text, "rank %d has waited %.1f s in %s %s: %s", s->rank, s->waited,
             s->where, when, who);
    if (ctl) {
        /* only the main thread writes the status, or the watchdog's while
         * the main thread is held inside a guard (it cannot leave until
         * this returns): the last one published stands */
        struct control_status st = ctl->status;
        snprintf(st.stall, sizeof st.stall, "%s%s", text,
                 s->fatal ? "; ending the job" : "; still waiting");
        control_publish(ctl, &st);
    }
    if (!s->fatal) {
        log_warn("stall: %s; the job ends at %.0f s (--stall-timeout)", text, s->deadline);
        return;
    }
    log_error("stall: %s; no progress for %.0f s (--stall-timeout): ending the job with exit status %d, which --resume auto continues",
              text, s->deadline, DDT_EXIT_STALLED);
    /* off the main thread MPI may not be called (MPI_THREAD_SINGLE): the
     * process ends without it, and mpirun ends the others and exits with
     * this status, as after MPI_Abort; _exit, not exit: exit would run the
     * atexit handlers (Open MPI's among them) under the main thread, which
     * is inside MPI */
    if (s->off_main_thread)
        _exit(DDT_EXIT_STALLED);
    MPI_Abort(MPI_COMM_WORLD, DDT_EXIT_STALLED);
}
