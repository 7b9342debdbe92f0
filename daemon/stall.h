/* What a rank does when the watchdog of its waits fires (worker/comm_wait.h):
 * it says which wait, which step and which ranks, rank 0 shows it in
 * `ddtrain ctl status`, and at the deadline the job ends with
 * DDT_EXIT_STALLED so that a scheduler's `--resume auto` restarts it. */
#ifndef DDT_STALL_H
#define DDT_STALL_H

#include "comm_wait.h"
#include "control.h"

/* How many median step times a wait may last when that exceeds
 * --stall-timeout: a slow but alive run is never ended. */
#define STALL_STEP_MULTIPLE 20.0

/* The engine's on_stall (comm_stall_fn); user is the rank's control socket
 * (rank 0: it publishes the report) or NULL (the other ranks). A fatal
 * report ends the job and does not return: with MPI_Abort on the main
 * thread; from the watchdog's thread, which may not call MPI, this process
 * ends with _exit(DDT_EXIT_STALLED) and mpirun ends the others. */
void stall_report(void *user, const struct comm_stall *s);

#endif
