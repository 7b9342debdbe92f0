/* One training step of one rank, from the coordinator's plan to the summed
 * statistics: the only place the parts of the engine meet in order. */
#ifndef DDT_STEP_H
#define DDT_STEP_H

#include <stdbool.h>
#include <stdint.h>

#include "comm.h"
#include "engine.h"

/* Requests a step carries from any rank to every rank. */
#define STEP_REQUESTS COMM_REQUESTS

/* The coordinator's plan for the step, the same on every rank, and this
 * rank's requests (each a count, summed over ranks). */
struct step_input {
    int64_t step;            /* steps done before this one: keys dropout */
    int64_t epoch;           /* keys the permutation and the augmentation */
    int64_t batch_in_epoch;  /* global batch k takes positions [k B, (k+1) B) */
    int global_batch;        /* B, split across the ranks */
    double lr, momentum;
    uint64_t seed;
    bool measure_noise;      /* measure the norms the noise scale needs */
    double clip_norm;        /* clip the mean gradient's global norm to this (0: off) */
    /* local SGD (engine built with local_sgd): the rank steps on its own
     * slice's mean gradient, nothing summed but the statistics; average:
     * then the replicas are averaged (average_replicas), with their
     * optimizer state when average_optimizer */
    bool local, average, average_optimizer;
    int requests[STEP_REQUESTS];
};

/* Where this rank's step time went, in seconds (a clock read between the
 * parts; the sums of the reduction are clocked inside comm). Phases do not
 * overlap: backward is without the sums made during it, wait is every time
 * blocked on other ranks (the rest of the reduction and statistics, and the
 * parameter exchange). */
enum {
    STEP_T_FORWARD = 0,      /* the slice's data, forward and loss */
    STEP_T_BACKWARD,
    STEP_T_REDUCE,           /* summing the shards */
    STEP_T_OPTIM,            /* the optimizer pass */
    STEP_T_WAIT,
    STEP_T_OTHER,            /* running statistics, the noise scale's norms */
    STEP_T_N
};

/* What the step did, summed over every rank (times: this rank's). */
struct step_result {
    double loss_sum, correct, count;
    int requests[STEP_REQUESTS];
    /* the noise scale's measurements (McCandlish et al.): |mean gradient|^2
     * at b_big (when measured) and its mean over batches of b_small (when
     * has_small: several ranks, or one rank's two halves) */
    bool measured, has_small;
    double b_small, g2_small, b_big, g2_big;
    double wait_seconds;     /* blocked on communication */
    double seconds[STEP_T_N];
};

/* Takes this rank's slice of the plan's global batch, forwards, backward with
 * each bucket's reduction started when it is ready, finishes the reduction,
 * moves the running statistics, steps the optimizer and exchanges the
 * parameters. A local step sums only the statistics, moves the running
 * statistics from the rank's own batch, steps on the rank's own gradient
 * and, at the end of a local period, averages the replicas. Collective;
 * allocates nothing. */
void step_run(struct engine *e, const struct step_input *in, struct step_result *out);

#endif
