/* Signals as requests: SIGUSR1 asks for a checkpoint at the next step,
 * SIGTERM, SIGINT and SIGUSR2 (what launch/ddtrain-run turns SIGTERM into, as
 * mpirun forwards it) for a checkpoint and a clean exit; a second SIGINT ends
 * the process at once. Handlers only count requests; the loop acts on them. */
#ifndef DDT_SIGNALS_H
#define DDT_SIGNALS_H

void signals_install(void);

/* 1 if a request arrived since the previous call (several arriving in between
 * count as one), else 0. */
int signals_take_checkpoint(void);
int signals_take_stop(void);

#endif
