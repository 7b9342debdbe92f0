/* The trainer's side of --batch-auto and --lr-scaling adascale: the checks of
 * their options, the decisions at epoch starts, AdaScale's clock, and their
 * state in the checkpoint. The decisions themselves are batch_control.c's
 * and the gain adascale.c's, pure functions of the noise scale's estimates. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "adascale.h"
#include "log.h"
#include "trainer.h"

static bool ada(const struct trainer *t)
{
    return t->cfg.sched.scaling == SCALE_ADASCALE;
}

/* Base-batch steps in an epoch: AdaScale's clock reads in these epochs. */
static double base_steps_per_epoch(const struct trainer *t)
{
    size_t s = t->train.n / (size_t)t->cfg.sched.ref_batch;
    return s > 0 ? (double)s : 1.0;
}

/* The controller's bounds as the options and the rank count give them. */
static struct batchctl_config controller_config(const struct trainer *t)
{
    const struct train_config *c = &t->cfg;
    int G = c->model_opts.bn_group > 0 ? c->model_opts.bn_group : 1;
    int K = c->accumulate > 1 ? c->accumulate : 1;
    /* every rank's slice splits into K micro-batches of whole ghost groups */
    return (struct batchctl_config){ .min = c->sched.base_batch, .max = c->batch_auto,
                                     .quantum = t->nranks * G * K, .margin = 1.0, .confirm = 1 };
}

int adaptive_max_batch(const struct trainer *t)
{
    if (t->cfg.batch_auto <= 0)
        return 0;
    struct batchctl_config bc = controller_config(t);
    return batchctl_cap(&bc, t->train.n);
}

int adaptive_check(const struct trainer *t, char *err, size_t errlen)
{
    const struct train_config *c = &t->cfg;
    bool grow = c->batch_auto > 0;
    if (!grow && !ada(t))
        return 0;
    const char *who = grow ? "--batch-auto" : "--lr-scaling adascale";
    if (!c->noise_scale) {
        snprintf(err, errlen, "%s reads the gradient noise scale: drop --no-noise-scale", who);
        return -1;
    }
    /* local steps sum no gradients, so they measure no noise scale */
    if (c->local_steps > 0) {
        snprintf(err, errlen, "--local-steps with %s: local steps sum no gradients and measure no noise scale, which %s reads: use one or the other",
                 who, who);
        return -1;
    }
    /* a warm-up in steps is placed on the epoch axis by walking the epochs'
     * step counts, which neither a growing batch nor AdaScale's clock know
     * in advance */
    if (c->sched.warmup_steps > 0) {
        snprintf(err, errlen, "--warmup-steps with %s: the steps of the epochs to come are not known in advance: use --warmup-epochs",
                 who);
        return -1;
    }
    if (grow && c->sched.nbatch > 0) {
        snprintf(err, errlen, "--batch-schedule with --batch-auto: the controller writes the batch schedule itself: give one or the other");
        return -1;
    }
    if (grow) {
        struct batchctl_config bc = controller_config(t);
        return batchctl_validate(&bc, t->train.n, err, errlen);
    }
    return 0;
}

void adaptive_init(struct trainer *t)
{
    const struct train_config *c = &t->cfg;
    t->bctl_cfg = controller_config(t);
    batchctl_init(&t->bctl, &t->bctl_cfg);
    t->samples_seen = 0;
    t->ada_iters = 0;
    if (c->noise_average == NOISE_AVERAGE_WINDOW)
        noise_set_window(&t->noise, c->noise_window > 0 ? (double)c->noise_window
                                                         : (double)t->train.n);
}

void adaptive_epoch_start(struct trainer *t)
{
    if (t->cfg.batch_auto <= 0 || t->rank != 0)
        return;
    struct sched_config *s = &t->cfg.sched;
    double g2, trace;
    noise_estimates(&t->noise, &g2, &trace);
    struct batchctl_decision d;
    int b = batchctl_decide(&t->bctl_cfg, &t->bctl, t->train.n, g2, trace, &d);
    /* the line goes with the first step that runs on the decision, so that a
     * run resumed from the checkpoint before it writes it again */
    metrics_batch(&t->metrics, (long)t->step + 1, (double)t->epoch, d.why, d.from, d.to,
                  d.target, d.b_noise, g2, trace);
    if (b != sched_batch_at(s, (double)t->epoch) && s->nbatch < SCHED_MAX_BATCH_CHANGES) {
        s->batch_epochs[s->nbatch] = (double)t->epoch;
        s->batch_sizes[s->nbatch] = b;
        s->nbatch++;
    }
}

double adaptive_sched_pos(const struct trainer *t, double pos)
{
    return ada(t) ? t->ada_iters / base_steps_per_epoch(t) : pos;
}

double adaptive_gain(const struct trainer *t, int batch)
{
    if (!ada(t))
        return 1.0;
    double g2, trace;
    noise_estimates(&t->noise, &g2, &trace);
    return adascale_gain(g2, trace, (double)batch, (double)t->cfg.sched.ref_batch);
}

bool adaptive_at_end(const struct trainer *t, double after_gain)
{
    if (!ada(t))
        return t->epoch >= t->cfg.sched.epochs;
    return t->ada_iters + after_gain >= (double)t->cfg.sched.epochs * base_steps_per_epoch(t);
}

void adaptive_after_step(struct trainer *t, const struct step_plan *p)
{
    t->samples_seen += p->global_batch;
    if (ada(t))
        t->ada_iters += p->gain;
}

void adaptive_estimate_total(struct trainer *t, int batch, double gain)
{
    long total;
    if (ada(t)) {
        double left = (double)t->cfg.sched.epochs * base_steps_per_epoch(t) - t->ada_iters;
        total = (long)t->step + (left > 0 ? (long)ceil(left / gain) : 0);
    } else if (t->cfg.batch_auto > 0) {
        long spe = (long)(t->train.n / (size_t)batch);
        total = (long)t->step + (spe - (long)t->batch_in_epoch) +
                spe * (t->cfg.sched.epochs - 1 - (long)t->epoch);
    } else {
        return;
    }
    if (t->cfg.max_steps > 0 && t->cfg.max_steps < total)
        total = t->cfg.max_steps;
    t->total_steps = total;
}

void adaptive_save(const struct trainer *t, Ddtrain__ScheduleState *st, uint32_t *sizes)
{
    const struct noise_scale *n = &t->noise;
    st->samples_seen = (uint64_t)t->samples_seen;
    st->n_noise_window_at = st->n_noise_window_batch = (size_t)n->n;
    st->n_noise_window_g2 = st->n_noise_window_trace = (size_t)n->n;
    /* protobuf-c packs from these without writing to them */
    st->noise_window_at = (double *)n->at;
    st->noise_window_batch = (double *)n->b;
    st->noise_window_g2 = (double *)n->g2;
    st->noise_window_trace = (double *)n->s;
    st->noise_last_g2 = n->last_g2;
    st->noise_last_trace = n->last_s;
    st->adascale_iters = t->ada_iters;
    if (t->cfg.batch_auto <= 0)
        return;
    const struct sched_config *s = &t->cfg.sched;
    for (int i = 0; i < s->nbatch; i++)
        sizes[i] = (uint32_t)s->batch_sizes[i];
    st->n_auto_batch_epochs = st->n_auto_batch_sizes = (size_t)s->nbatch;
    st->auto_batch_epochs = (double *)s->batch_epochs;
    st->auto_batch_sizes = sizes;
    st->auto_batch_streak = (uint32_t)t->bctl.streak;
}

/* A restored batch the controller cannot have chosen at this rank count:
 * one chosen on another count that does not split here, or one above the
 * cap. Names the rank counts, so the refusal does not read like damage. */
static int refuse_batch(const struct trainer *t, uint32_t ck_nranks, size_t i, uint32_t b,
                        int cap, char *err, size_t errlen)
{
    const struct train_config *c = &t->cfg;
    int G = c->model_opts.bn_group > 0 ? c->model_opts.bn_group : 1;
    int K = c->accumulate > 1 ? c->accumulate : 1;
    char there[32] = "at another rank count", again[80] = "at the rank count that wrote it";
    if (ck_nranks > 0) {
        snprintf(there, sizeof there, "on %" PRIu32 " ranks", ck_nranks);
        snprintf(again, sizeof again, "on %" PRIu32 " ranks", ck_nranks);
    }
    if (ck_nranks == (uint32_t)t->nranks)
        snprintf(again, sizeof again, "with the --batch-auto and --train-samples that wrote it");
    if (b % (uint32_t)t->bctl_cfg.quantum != 0)
        snprintf(err, errlen, "schedule.auto_batch entry %zu: batch %" PRIu32 " chosen %s is not a multiple of %d (%d ranks x --bn-group %d x --accumulate %d), so it does not split here: resume %s",
                 i, b, there, t->bctl_cfg.quantum, t->nranks, G, K, again);
    else
        snprintf(err, errlen, "schedule.auto_batch entry %zu: batch %" PRIu32 " chosen %s is above %d, the largest batch --batch-auto allows here on %d ranks: resume %s",
                 i, b, there, cap, t->nranks, again);
    return -1;
}

/* The controller's batches: as many epochs as sizes, whole increasing epochs
 * up to the checkpoint's, growing batches within the controller's bounds at
 * this rank count. */
static int restore_batches(struct trainer *t, const Ddtrain__ScheduleState *st,
                           uint32_t ck_nranks, char *err, size_t errlen)
{
    struct sched_config *s = &t->cfg.sched;
    size_t n = st->n_auto_batch_sizes;
    int cap = batchctl_cap(&t->bctl_cfg, t->train.n), prev = t->bctl_cfg.min;
    if (n != st->n_auto_batch_epochs || n > SCHED_MAX_BATCH_CHANGES) {
        snprintf(err, errlen, "schedule.auto_batch_sizes has %zu entries and auto_batch_epochs %zu: allowed the same count, at most %d",
                 n, st->n_auto_batch_epochs, SCHED_MAX_BATCH_CHANGES);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        double e = st->auto_batch_epochs[i];
        uint32_t b = st->auto_batch_sizes[i];
        /* decisions are taken at epoch starts: whole epochs */
        if (!(e >= 1 && e <= (double)st->epoch && e == floor(e) &&
              (i == 0 || e > s->batch_epochs[i - 1])) ||
            b <= (uint32_t)prev) {
            snprintf(err, errlen, "schedule.auto_batch entry %zu (epoch %g, batch %u): allowed increasing whole epochs from 1 to schedule.epoch %" PRIu64 " and growing batches from above %d up to %d",
                     i, e, b, st->epoch, prev, cap);
            return -1;
        }
        if (b > (uint32_t)cap || b % (uint32_t)t->bctl_cfg.quantum != 0)
            return refuse_batch(t, ck_nranks, i, b, cap, err, errlen);
        s->batch_epochs[i] = e;
        s->batch_sizes[i] = prev = (int)b;
    }
    /* confirm decision points in a row grow the batch and reset the count */
    if (st->auto_batch_streak >= (uint32_t)t->bctl_cfg.confirm) {
        snprintf(err, errlen, "schedule.auto_batch_streak is %" PRIu32 ": allowed 0 to %d (a streak of %d grows the batch and starts afresh)",
                 st->auto_batch_streak, t->bctl_cfg.confirm - 1, t->bctl_cfg.confirm);
        return -1;
    }
    s->nbatch = (int)n;
    t->bctl.batch = prev;
    t->bctl.streak = (int)st->auto_batch_streak;
    return 0;
}

static int restore_window(struct noise_scale *n, const Ddtrain__ScheduleState *st, char *err,
                          size_t errlen)
{
    size_t k = st->n_noise_window_at;
    if (k > NOISE_WINDOW_MAX || st->n_noise_window_batch != k || st->n_noise_window_g2 != k ||
        st->n_noise_window_trace != k) {
        snprintf(err, errlen, "schedule.noise_window_* have %zu, %zu, %zu and %zu entries: allowed the same count, at most %d",
                 k, st->n_noise_window_batch, st->n_noise_window_g2, st->n_noise_window_trace,
                 NOISE_WINDOW_MAX);
        return -1;
    }
    for (size_t i = 0; i < k; i++) {
        /* measured at the samples seen then: in order, none past the checkpoint's */
        double at = st->noise_window_at[i];
        if (!(at >= (i > 0 ? st->noise_window_at[i - 1] : 0) && at <= (double)st->samples_seen)) {
            snprintf(err, errlen, "schedule.noise_window_at entry %zu is %g: allowed samples seen in order, from %g to schedule.samples_seen %" PRIu64,
                     i, at, i > 0 ? st->noise_window_at[i - 1] : 0.0, st->samples_seen);
            return -1;
        }
        if (!(st->noise_window_batch[i] > 0) || !isfinite(st->noise_window_at[i]) ||
            !isfinite(st->noise_window_g2[i]) || !isfinite(st->noise_window_trace[i])) {
            snprintf(err, errlen, "schedule.noise_window entry %zu is not a measurement: allowed finite numbers and a positive batch",
                     i);
            return -1;
        }
        n->at[i] = st->noise_window_at[i];
        n->b[i] = st->noise_window_batch[i];
        n->g2[i] = st->noise_window_g2[i];
        n->s[i] = st->noise_window_trace[i];
    }
    n->n = (int)k;
    /* a checkpoint from before the window has no newest pair: 0 reads as none */
    n->last_g2 = k > 0 ? st->noise_last_g2 : NAN;
    n->last_s = k > 0 ? st->noise_last_trace : NAN;
    return 0;
}

int adaptive_restore(struct trainer *t, const Ddtrain__ScheduleState *st, uint32_t ck_nranks,
                     char *err, size_t errlen)
{
    if (!st)
        return 0;  /* ckpt_check_schedule says what is missing */
    if (restore_window(&t->noise, st, err, errlen))
        return -1;
    if (t->cfg.batch_auto > 0 && restore_batches(t, st, ck_nranks, err, errlen))
        return -1;
    if (!(st->adascale_iters >= 0) || !isfinite(st->adascale_iters)) {
        snprintf(err, errlen, "schedule.adascale_iters is %g: allowed a finite number from 0",
                 st->adascale_iters);
        return -1;
    }
    t->ada_iters = st->adascale_iters;
    t->samples_seen = (int64_t)st->samples_seen;
    return 0;
}
