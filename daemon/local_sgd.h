/* Local and post-local SGD on the coordinator's side (Lin, Stich, Patel and
 * Jaggi, "Don't Use Large Mini-Batches, Use Local SGD", ICLR 2020): which
 * steps are local and which end a period, the options' checks, the log of
 * the effective batch and the communication saved, the averaged model that
 * evaluations and checkpoints see, and every rank's own state in a
 * checkpoint. The steps themselves are the engine's (step.h, average.h).
 *
 * A local phase starts at epoch --local-steps-after (0: at once). In it,
 * global batch k of an epoch is sliced across the ranks as in data-parallel
 * training, but each rank steps on its own slice's mean gradient; a period
 * ends after every H = --local-steps steps of the epoch and with the
 * epoch's last step, and then the ranks average their parameters and
 * batch-norm running statistics. Periods that follow the epoch, rather than
 * a count carried across epochs, need no state of their own, so a resume
 * or a checkpoint on request cannot move them. */
#ifndef DDT_LOCAL_SGD_H
#define DDT_LOCAL_SGD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ddtrain.pb-c.h"

struct trainer;
struct train_config;
struct step_plan;

struct local_sgd {
    bool check_pending;      /* rank 0: a replica check waits for the period's end */
    long steps, averages;    /* this session's local steps and averages */
    float *backup;           /* the rank's own model while an evaluation sees the mean */
};

/* Every rank's own state in a checkpoint of a local phase (rank 0's arrays;
 * on other ranks all NULL): nranks copies each, rank after rank, and the
 * means that the checkpoint's ordinary fields hold. */
struct local_ckpt {
    bool on;
    float *w, *bn, *m, *v;   /* v NULL without a second moment */
    float *avg_w, *avg_bn, *avg_m, *avg_v;
};

/* Is epoch in the local phase? */
bool local_sgd_in_phase(const struct train_config *c, int64_t epoch);

/* After t's counters: are the replicas apart (in the middle of a period)? */
bool local_sgd_apart(const struct trainer *t);

/* Refuses what local SGD cannot do or an option that means nothing without
 * it. Returns 0 or -1 with err. */
int local_sgd_check_options(const struct train_config *c, int argc, char **argv, int first,
                            char *err, size_t errlen);

/* After the engine exists: the evaluation's backup, and the log of what
 * local SGD will do (rank 0). Returns 0 or -1 with err. */
int local_sgd_init(struct trainer *t, char *err, size_t errlen);
void local_sgd_free(struct trainer *t);

/* Rank 0, planning step p of an epoch of spe steps: PLAN_LOCAL and
 * PLAN_AVERAGE; *check (the replica check the cadence asks for) waits for
 * the end of the period when the replicas are apart. */
void local_sgd_plan(struct trainer *t, struct step_plan *p, long spe, bool *check);

/* Bytes local SGD holds beyond data-parallel training, for a model of n
 * parameters, nb batch-norm running statistics and `moments` optimizer
 * moments per parameter, on nranks ranks (0 without --local-steps): on
 * every rank the average's rows (average_init: about n) and the
 * evaluation's backup (n + nb); on rank 0 (rank0) also a checkpoint's
 * gather, every rank's parameters, statistics and moments and their means
 * ((nranks + 1) x (n x (1 + moments) + nb)), which the checkpoint's
 * message views as it streams to disk, so all of it at once. */
double local_sgd_memory(const struct train_config *c, int nranks, bool rank0, size_t n,
                        size_t nb, int moments);

/* Counts a step for the final report. */
void local_sgd_count(struct trainer *t, const struct step_plan *p);

/* Rank 0 at the end: the local steps, the averages and the traffic saved. */
void local_sgd_report(const struct trainer *t);

/* Around an evaluation: when the replicas are apart, each rank's own model
 * is kept aside and the mean is evaluated (collective); returns whether
 * _end must put it back. */
bool local_sgd_eval_begin(struct trainer *t);
void local_sgd_eval_end(struct trainer *t, bool apart);

/* Collective: in a local phase, gathers every rank's parameters, running
 * statistics and optimizer state to rank 0, which also averages them
 * (lc->on); else lc->on is false and nothing happens. Returns 0, or -1 on
 * every rank when rank 0 is out of memory. */
int local_sgd_ckpt_gather(struct trainer *t, struct local_ckpt *lc);
void local_sgd_ckpt_free(struct local_ckpt *lc);

/* A checkpoint with every rank's state (rank_states): the view this rank
 * restores from. At the same rank count, the rank's own parameters, running
 * statistics and optimizer state; at another, the means, only at the end
 * of a period (the middle of one is refused with err). Returns 0 or -1. */
int local_sgd_restore_view(const struct trainer *t, const Ddtrain__Checkpoint *msg,
                           Ddtrain__Checkpoint *view, char *err, size_t errlen);

#endif
