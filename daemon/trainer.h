/* The state of a training run on one rank, shared by the training loop and
 * the code that saves and restores it. */
#ifndef DDT_TRAINER_H
#define DDT_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

#include "batch_control.h"
#include "ckpt.h"
#include "ckpt_restore.h"
#include "control.h"
#include "dataset.h"
#include "engine.h"
#include "local_sgd.h"
#include "metrics.h"
#include "model.h"
#include "noise.h"
#include "progress.h"
#include "schedule.h"
#include "spec.h"
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
    double gain;             /* --lr-scaling adascale: the step's gain ratio (else 1) */
};

/* PLAN_LOCAL: a local SGD step (local_sgd.h); PLAN_AVERAGE goes with it and
 * ends a local period. PLAN_FAILED goes with PLAN_STOP: the run can no longer write its state
 * (metrics.jsonl), so every rank stops with DDT_EXIT_CKPT_FAILED. */
enum { PLAN_STOP = 1, PLAN_EVAL = 2, PLAN_LOG = 4, PLAN_CHECK = 8, PLAN_CKPT = 16,
       PLAN_FAILED = 32, PLAN_LOCAL = 64, PLAN_AVERAGE = 128 };

/* What a rank asks of all through a step's request slots. */
enum { REQUEST_CKPT = 0, REQUEST_STOP = 1 };

struct trainer {
    struct train_config cfg;
    int rank, nranks;
    struct dataset train, test;
    struct dataset val;      /* n = 0: no validation; a view of train's tail with --val-fraction */
    struct engine engine;    /* model, optimizer, communication */
    struct noise_scale noise;
    struct metrics metrics;
    struct progress progress;
    long total_steps;
    /* coordinator counters */
    int64_t step, epoch, batch_in_epoch;
    /* log interval accumulators (rank 0) */
    double log_loss, log_correct, log_count, log_grad_sq, log_time;
    long log_steps;
    double wait_time;
    double rss_baseline;     /* resident bytes when training began (MPI, libraries) */
    double t_start;
    long first_step;         /* step this session started at */
    double recent_loss, recent_sps; /* last logged, for status */
    double wall_before;      /* training seconds of earlier sessions of this run */
    struct control ctl;      /* rank 0 */
    char last_ckpt[512];
    int plan_batch;          /* the global batch of the last plan (rank 0) */
    const char *start_reason; /* --resume auto that found nothing: why it starts at step 0 */
    /* --early-stop / --keep-best, on every rank (the evaluations' sums are
     * allreduced, so every rank reaches the same verdicts) */
    double best_metric;      /* best watched value so far (valid when best_step > 0) */
    int64_t best_step;       /* step of the evaluation that set it; 0: none yet */
    int evals_since_best;
    bool early_stopped;      /* patience ran out: checkpoint, then stop */
    struct local_sgd local;  /* --local-steps: counters and the evaluation's backup */
    bool model_from_init;    /* --init-from without --model: the checkpoint's spec */
    /* --batch-auto and --lr-scaling adascale (train_adaptive.c) */
    int64_t samples_seen;    /* training samples stepped on: the noise window's clock */
    struct batchctl_config bctl_cfg;
    struct batchctl bctl;    /* rank 0 decides; its batches go into cfg.sched's list */
    double ada_iters;        /* AdaScale's clock: scale-invariant (base-batch) steps */
};

/* ---- the adaptive batch and AdaScale (train_adaptive.c) ---- */

/* Refuses what --batch-auto and --lr-scaling adascale cannot work with
 * (--batch-schedule, --warmup-steps, --no-noise-scale, a --batch-size that
 * is not a multiple of the ranks x --bn-group, ...). Returns 0 or -1 with err. */
int adaptive_check(const struct trainer *t, char *err, size_t errlen);

/* The largest batch --batch-auto may reach (0 without it): buffers are sized for it. */
int adaptive_max_batch(const struct trainer *t);

/* The controller's configuration and state, and the noise scale's window. */
void adaptive_init(struct trainer *t);

/* Rank 0 at the start of an epoch after the first: --batch-auto's decision,
 * written to metrics.jsonl and the log; a new batch is appended to the
 * schedule's batch list from this epoch on. */
void adaptive_epoch_start(struct trainer *t);

/* The schedule's position (AdaScale: its scale-invariant clock in epochs,
 * else the epoch position pos) and the gain of a step of `batch`. */
double adaptive_sched_pos(const struct trainer *t, double pos);
double adaptive_gain(const struct trainer *t, int batch);

/* Has training reached its end? --epochs of data, or AdaScale's clock at
 * --epochs; with `after_gain`, after one more step of that gain. */
bool adaptive_at_end(const struct trainer *t, double after_gain);

/* After a step, on every rank: the clocks. */
void adaptive_after_step(struct trainer *t, const struct step_plan *p);

/* The steps a run of auto batches or AdaScale's clock will take, estimated
 * from where it is (rank 0, for the progress line and the ETA). */
void adaptive_estimate_total(struct trainer *t, int batch, double gain);

/* Checkpoint fields: written into st (the arrays point into t), read back
 * (before the schedule's position is checked, which needs the batches). */
void adaptive_save(const struct trainer *t, Ddtrain__ScheduleState *st, uint32_t *sizes);
/* ck_nranks: the rank count that wrote the checkpoint (0: not recorded). */
int adaptive_restore(struct trainer *t, const Ddtrain__ScheduleState *st, uint32_t ck_nranks,
                     char *err, size_t errlen);

/* ---- set-up (train_setup.c) ---- */

/* Refuses optimizer options that contradict --optimizer or that it would
 * ignore (--nesterov with adam, --wd-mode with adamw, ...), and warns of an
 * Adam-like optimizer at SGD's default rate (--lr not given). Returns 0 or
 * -1 with err. */
int train_check_optimizer(const struct trainer *t, int argc, char **argv, int first, char *err,
                          size_t errlen);

/* Is --name (--name=V, --no-name) on the command line, or a `name = V`
 * line in its --config file? */
bool train_option_given(int argc, char **argv, int first, const char *name);

/* --init-from CKPT without --model (on the command line or in --config)
 * and not resuming: the model is the checkpoint's (its spec into
 * cfg.model, model_from_init set; rank 0 says so). Returns 0 or -1 with
 * err. */
int train_model_from_init(struct trainer *t, int argc, char **argv, int first, char *err,
                          size_t errlen);

/* The schedule from the options; fills err and returns -1 when invalid. */
int train_build_schedule(struct trainer *t, char *err, size_t errlen);

/* ---- gradient accumulation (train_accum.c) ---- */

/* --accumulate K against the schedule's global batches and the rank count:
 * K must split every rank's slice of each into equal micro-batches, and a
 * --bn-group must fit in one. Returns 0 or -1 with err (what is allowed). */
int train_check_accumulate(const struct trainer *t, char *err, size_t errlen);

/* The most samples a rank forwards at once: a slice, or its micro-batch. */
int train_micro_batch_max(const struct trainer *t, int max_global);

/* Rank 0, with --accumulate: what a step does, on stderr. */
void train_log_accumulate(const struct trainer *t);

/* Rank 0, several ranks with few samples each: more ranks gain little
 * (train_small_batch.c). */
void train_warn_small_slices(const struct trainer *t);

/* Bytes of both data splits as this rank holds them. */
size_t train_data_bytes(const struct trainer *t);

/* Steps of an epoch: the training set over that epoch's global batch. */
long train_steps_in_epoch(const struct trainer *t, int64_t epoch);

/* Data, model, optimizer, communication; then the checkpoint's state when
 * resuming, or its weights with --init-from. A named model's spec s is
 * rewritten for the data's sample shape and class count. Returns 0, 2 for
 * the user's errors (err says which), 1 for others. */
int train_setup(struct trainer *t, struct spec *s, const Ddtrain__Checkpoint *resume,
                char *err, size_t errlen);

/* Rank 0: the run directory, its control socket, config.txt and metrics. */
int train_open_run_dir(struct trainer *t, bool resuming, char *err, size_t errlen);

/* With --resume: finds the checkpoint and rebuilds the configuration from it
 * and the command line. Returns 0 (with *out, or NULL when there is nothing
 * to resume yet) or 2 with err. */
int train_resolve_resume(struct trainer *t, int argc, char **argv, int first,
                         Ddtrain__Checkpoint **out, char *err, size_t errlen);

/* Writes a checkpoint of everything needed to continue the run into the run
 * directory's store. Every rank calls it: a sharded optimizer's state is
 * gathered to rank 0, which writes (the rest of the state is replicated). */
int train_ckpt_save(struct trainer *t, char *err, size_t errlen);

/* The same, or (best) the run's best checkpoint RUN/checkpoints/best.ckpt,
 * which neither `latest` names nor --ckpt-keep removes. */
int train_ckpt_save_as(struct trainer *t, bool best, char *err, size_t errlen);

/* Restores the model (see ckpt_restore_model) and, unless weights_only, the
 * optimizer state and counters from msg. */
int train_ckpt_restore(struct trainer *t, const Ddtrain__Checkpoint *msg, bool weights_only,
                       bool skip_head, char *err, size_t errlen);


#endif
