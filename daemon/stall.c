/* The watchdog's report: a log line on the rank that noticed, the status of
 * the control socket on rank 0, and the end of the job at the deadline. */
#include "stall.h"

#include <mpi.h>
#include <stdio.h>

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

void stall_report(void *user, const struct comm_stall *s)
{
    struct control *ctl = user;
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char who[256], text[512];
    format_missing(s, who, sizeof who);
    snprintf(text, sizeof text, "rank %d has waited %.1f s in %s at step %ld: %s", rank,
             s->waited, s->where, (long)s->step, who);
    if (ctl) {
        /* only this thread writes the status: the last one published stands */
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
    MPI_Abort(MPI_COMM_WORLD, DDT_EXIT_STALLED);
}
