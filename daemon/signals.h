/* Signals as requests: SIGUSR1 asks for a checkpoint at the next step,
 * SIGTERM, SIGINT and SIGUSR2 (what launch/ddtrain-run turns SIGTERM into, as
 * mpirun forwards it) for a checkpoint and a clean exit; a second SIGINT ends
 * the process at once. Handlers only set flags; the loop acts on them. */
#ifndef DDT_SIGNALS_H
#define DDT_SIGNALS_H

void signals_install(void);

/* Returns and clears the pending requests. */
int signals_take_checkpoint(void);
int signals_take_stop(void);

#endif
