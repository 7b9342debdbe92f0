/* The state of a training run on one rank, shared by the training loop and
 * the code that saves and restores it. */
#ifndef DDT_TRAINER_H
#define DDT_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

#include "comm.h"
#include "ckpt.h"
#include "control.h"
#include "dataset.h"
#include "metrics.h"
#include "model.h"
#include "noise.h"
#include "optim.h"
#include "progress.h"
#include "schedule.h"
#include "train.h"

/* What the coordinator tells every rank before a step. */
struct step_plan {
    int64_t step;            /* steps done before this one */
    int64_t epoch;
    int64_t batch_in_epoch;
    int32_t global_batch;
    int32_t flags;
    double lr, momentum;
    double epoch_pos;        /* epoch + fraction done, for logs */
};

enum { PLAN_STOP = 1, PLAN_EVAL = 2, PLAN_LOG = 4, PLAN_CHECK = 8, PLAN_CKPT = 16 };

struct trainer {
    struct train_config cfg;
    int rank, nranks;
    struct dataset train, test;
    struct model model;
    struct optim opt;
    struct sched_config sched;
    struct grad_comm comm;
    struct noise_scale noise;
    uint32_t *perm;
    int64_t perm_epoch;
    struct metrics metrics;
    struct progress progress;
    long total_steps;
    /* coordinator counters */
    int64_t step, epoch, batch_in_epoch;
    /* log interval accumulators (rank 0) */
    double log_loss, log_correct, log_count, log_grad_sq, log_time;
    long log_steps;
    double wait_time, step_time;
    double t_start;
    long first_step;         /* step this session started at */
    double recent_loss, recent_sps; /* last logged, for status */
    double wall_before;      /* training seconds of earlier sessions of this run */
    struct control ctl;      /* rank 0 */
    char last_ckpt[512];
};

/* Writes a checkpoint of everything needed to continue the run into the run
 * directory's store (rank 0 only: every replica holds the same state). */
int train_ckpt_save(struct trainer *t, char *err, int errlen);

/* Restores parameters, batch-norm running statistics and input
 * normalisation into m, checking every name and shape; skip_head leaves the
 * last linear layer as it is. */
int ckpt_restore_model(struct model *m, const Ddtrain__Checkpoint *msg, bool skip_head,
                       char *err, int errlen);

/* The run configuration a checkpoint carries (defaults for what it lacks). */
int ckpt_parse_config(const Ddtrain__Checkpoint *msg, struct train_config *cfg, char *err,
                      int errlen);

/* Restores the model (see ckpt_restore_model) and, unless weights_only, the
 * optimizer state and counters from msg. */
int train_ckpt_restore(struct trainer *t, const Ddtrain__Checkpoint *msg, bool weights_only,
                       bool skip_head, char *err, int errlen);


#endif
