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

/* Says that every rank can take a stop signal now: creates the file named by
 * DDTRAIN_READY_FILE (if set), which launch/ddtrain-run waits for before it
 * forwards a stop as SIGUSR2, since a rank without its handlers yet would die
 * of it. Call on one rank once every rank has installed its handlers (they
 * have met in a collective since). */
void signals_announce_ready(void);

#endif
