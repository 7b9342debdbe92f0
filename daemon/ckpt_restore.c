/* Reading a model and a run's configuration back out of a Checkpoint
 * message, for training and the analysis commands alike. */
#include "ckpt_restore.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

/* A tensor's shape in the checkpoint against rows x cols (a tensor of one
 * column is written with one dimension). */
static int check_shape(const Ddtrain__Tensor *t, int rows, int cols, char *err, size_t errlen)
{
    if (t->n_shape < 1 || t->n_shape > 2) {
        snprintf(err, errlen, "tensor %s has %zu dimensions in the checkpoint: allowed 1 or 2 (the model needs %dx%d)",
                 t->name, t->n_shape, rows, cols);
        return -1;
    }
    uint32_t r = t->shape[0], c = t->n_shape > 1 ? t->shape[1] : 1;
    if (r != (uint32_t)rows || c != (uint32_t)cols) {
        snprintf(err, errlen, "tensor %s has shape %ux%u in the checkpoint, the model needs %dx%d",
                 t->name, r, c, rows, cols);
        return -1;
    }
    return 0;
}

int ckpt_restore_tensor_part(Ddtrain__Tensor *const *ts, size_t n, const char *name, float *dst,
                             int rows, int cols, size_t first, size_t len, char *err,
                             size_t errlen)
{
    const Ddtrain__Tensor *t = ckpt_find(ts, n, name);
    if (!t) {
        snprintf(err, errlen, "the checkpoint has no tensor %s", name);
        return -1;
    }
    if (check_shape(t, rows, cols, err, errlen))
        return -1;
    size_t count = (size_t)rows * (size_t)cols;
    if (t->n_data != count) {
        snprintf(err, errlen, "tensor %s has %zu elements in the checkpoint, the model needs %zu",
                 name, t->n_data, count);
        return -1;
    }
    if (len)
        memcpy(dst, t->data + first, len * sizeof *dst);
    return 0;
}

static int restore_tensor(Ddtrain__Tensor *const *ts, size_t n, const char *name, float *dst,
                          int rows, int cols, char *err, size_t errlen)
{
    return ckpt_restore_tensor_part(ts, n, name, dst, rows, cols, 0,
                                    (size_t)rows * (size_t)cols, err, errlen);
}

/* How many tensors each repeated field holds, against what the model has. */
static int check_counts(const struct model *m, const Ddtrain__Checkpoint *msg, char *err,
                        size_t errlen)
{
    int nv = m->arena.nviews;
    if (msg->n_params != (size_t)nv) {
        snprintf(err, errlen, "params holds %zu tensors in the checkpoint: the model has %d parameter tensors, allowed exactly %d",
                 msg->n_params, nv, nv);
        return -1;
    }
    if (msg->n_bn_running != 1) {
        snprintf(err, errlen, "bn_running holds %zu tensors in the checkpoint: allowed exactly 1 (bn.running)",
                 msg->n_bn_running);
        return -1;
    }
    if (msg->n_input_norm != 2) {
        snprintf(err, errlen, "input_norm holds %zu tensors in the checkpoint: allowed exactly 2 (input.mean, input.inv_std)",
                 msg->n_input_norm);
        return -1;
    }
    return 0;
}

int ckpt_restore_model(struct model *m, const Ddtrain__Checkpoint *msg, bool skip_head,
                       char *err, size_t errlen)
{
    struct arena *a = &m->arena;
    if (msg->format_version != CKPT_MESSAGE_VERSION) {
        snprintf(err, errlen, "checkpoint message version %u is not supported (expected %d)",
                 msg->format_version, CKPT_MESSAGE_VERSION);
        return -1;
    }
    if (check_counts(m, msg, err, errlen))
        return -1;
    /* the head: the last linear layer's tensors */
    int head_layer = a->views[a->nviews - 1].layer;
    for (int v = 0; v < a->nviews; v++) {
        const struct tensor_view *tv = &a->views[v];
        if (skip_head && tv->layer == head_layer && tv->role != ROLE_BN_GAMMA &&
            tv->role != ROLE_BN_BETA)
            continue;
        if (restore_tensor(msg->params, msg->n_params, tv->name, a->w + tv->off, tv->rows,
                           tv->cols, err, errlen))
            return -1;
    }
    if (restore_tensor(msg->bn_running, msg->n_bn_running, "bn.running", m->bn_running,
                       (int)m->bn_running_n, 1, err, errlen) ||
        restore_tensor(msg->input_norm, msg->n_input_norm, "input.mean", m->in_mean, m->in_dim,
                       1, err, errlen) ||
        restore_tensor(msg->input_norm, msg->n_input_norm, "input.inv_std", m->in_inv_std,
                       m->in_dim, 1, err, errlen))
        return -1;
    return 0;
}

/* Steps of epoch e, as train_steps_in_epoch counts them. */
static uint64_t steps_in_epoch(const struct sched_config *s, size_t train_n, uint64_t e)
{
    return (uint64_t)(train_n / (size_t)sched_batch_at(s, (double)e));
}

/* A counter that grows at most once a step. */
static int check_at_most_step(const char *field, uint64_t value, uint64_t step, char *err,
                              size_t errlen)
{
    if (value <= step)
        return 0;
    snprintf(err, errlen, "%s is %" PRIu64 ": allowed at most schedule.step, %" PRIu64, field,
             value, step);
    return -1;
}

static int check_amount(const char *field, double value, char *err, size_t errlen)
{
    if (isfinite(value) && value >= 0)
        return 0;
    snprintf(err, errlen, "%s is %g: allowed a finite number from 0", field, value);
    return -1;
}

/* The most steps an AdaScale run can take: its clock advances by the gain a
 * step, never below min(1, batch / --ref-batch) (adascale_gain), and stops
 * at --epochs base-batch epochs. An epoch has at least one step (no batch
 * is above the training set), so it bounds the epoch as well. */
static double adascale_max_steps(const struct sched_config *s, size_t train_n)
{
    int lo = s->base_batch;
    for (int i = 0; i < s->nbatch; i++)
        if (s->batch_sizes[i] < lo)
            lo = s->batch_sizes[i];
    double base_spe = (double)(train_n / (size_t)s->ref_batch);
    double gain_lo = (double)lo / s->ref_batch < 1 ? (double)lo / s->ref_batch : 1.0;
    return ceil((double)s->epochs * (base_spe > 0 ? base_spe : 1.0) / gain_lo) + 2;
}

/* AdaScale lets the data run past --epochs, so its epoch is bounded by its
 * step and the step by the clock: the walk over the epochs stays short. */
static int check_adascale_epoch(const Ddtrain__ScheduleState *st, const struct sched_config *s,
                                size_t train_n, char *err, size_t errlen)
{
    double most = adascale_max_steps(s, train_n);
    if ((double)st->step > most) {
        snprintf(err, errlen, "schedule.step is %" PRIu64 ": AdaScale's clock reaches --epochs %d within %.0f steps of this schedule and data: allowed at most %.0f",
                 st->step, s->epochs, most, most);
        return -1;
    }
    if (st->epoch > st->step) {
        snprintf(err, errlen, "schedule.epoch is %" PRIu64 ": every epoch has at least one step and schedule.step is %" PRIu64 ": allowed 0 to %" PRIu64,
                 st->epoch, st->step, st->step);
        return -1;
    }
    return 0;
}

/* The position (epoch, batch) inside the schedule, then the step, global
 * batch and seed that go with it. */
static int check_position(const Ddtrain__ScheduleState *st, const struct sched_config *sched,
                          uint64_t seed, size_t train_n, char *err, size_t errlen)
{
    /* AdaScale's clock lags the data's, so its runs go on past --epochs of data */
    if (st->epoch >= (uint64_t)sched->epochs && sched->scaling != SCALE_ADASCALE) {
        snprintf(err, errlen, "schedule.epoch is %" PRIu64 ": the run has %d epochs (--epochs): allowed 0 to %d",
                 st->epoch, sched->epochs, sched->epochs - 1);
        return -1;
    }
    if (sched->scaling == SCALE_ADASCALE &&
        check_adascale_epoch(st, sched, train_n, err, errlen))
        return -1;
    uint64_t spe = steps_in_epoch(sched, train_n, st->epoch);
    int batch = sched_batch_at(sched, (double)st->epoch);
    if (st->batch_in_epoch > spe) {
        snprintf(err, errlen, "schedule.batch_in_epoch is %" PRIu64 ": epoch %" PRIu64 " has %" PRIu64 " global batches of %d out of %zu training samples: allowed 0 to %" PRIu64,
                 st->batch_in_epoch, st->epoch, spe, batch, train_n, spe);
        return -1;
    }
    if (st->global_batch != (uint32_t)batch) {
        snprintf(err, errlen, "schedule.global_batch is %" PRIu32 ": the schedule's global batch at epoch %" PRIu64 " is %d: allowed only %d",
                 st->global_batch, st->epoch, batch, batch);
        return -1;
    }
    uint64_t step = st->batch_in_epoch;
    for (uint64_t e = 0; e < st->epoch; e++)
        step += steps_in_epoch(sched, train_n, e);
    if (st->step != step) {
        snprintf(err, errlen, "schedule.step is %" PRIu64 ": epoch %" PRIu64 " batch %" PRIu64 " of this schedule and data is step %" PRIu64 ": allowed only %" PRIu64,
                 st->step, st->epoch, st->batch_in_epoch, step, step);
        return -1;
    }
    if (st->seed != seed) {
        snprintf(err, errlen, "schedule.seed is %" PRIu64 ": the run's --seed is %" PRIu64 ": allowed only %" PRIu64,
                 st->seed, seed, seed);
        return -1;
    }
    return 0;
}

int ckpt_check_schedule(const Ddtrain__Checkpoint *msg, const struct sched_config *sched,
                        uint64_t seed, size_t train_n, char *err, size_t errlen)
{
    const Ddtrain__ScheduleState *st = msg->schedule;
    if (!st) {
        snprintf(err, errlen, "the checkpoint has no schedule state");
        return -1;
    }
    if (check_position(st, sched, seed, train_n, err, errlen) ||
        check_at_most_step("optimizer_steps", msg->optimizer_steps, st->step, err, errlen) ||
        check_at_most_step("schedule.log_steps", st->log_steps, st->step, err, errlen) ||
        check_at_most_step("schedule.noise_count", st->noise_count, st->step, err, errlen) ||
        check_amount("schedule.log_count", st->log_count, err, errlen) ||
        check_amount("schedule.wall_seconds", st->wall_seconds, err, errlen))
        return -1;
    return 0;
}

int ckpt_check_optimizer(const Ddtrain__Checkpoint *msg, int nviews, bool second_moment,
                         char *err, size_t errlen)
{
    size_t want = (size_t)nviews * (second_moment ? 2 : 1);
    if (msg->n_optimizer == want)
        return 0;
    snprintf(err, errlen, "optimizer holds %zu tensors in the checkpoint: the optimizer keeps %s of each of the model's %d parameter tensors, allowed exactly %zu",
             msg->n_optimizer, second_moment ? "two moments" : "one moment", nviews, want);
    return -1;
}

int ckpt_check_model_spec(const Ddtrain__Checkpoint *msg, const struct spec *s, char *err,
                          size_t errlen)
{
    char text[2048];
    spec_format(s, text, sizeof text);
    if (strcmp(msg->model_spec, text) == 0)
        return 0;
    snprintf(err, errlen, "model_spec is '%s': the configuration (--model, --bn, --dropout) makes '%s': allowed only the same",
             msg->model_spec, text);
    return -1;
}

int ckpt_parse_config(const Ddtrain__Checkpoint *msg, struct train_config *cfg, char *err,
                      size_t errlen)
{
    char sub[DDT_ERRLEN];
    train_config_defaults(cfg);
    for (size_t i = 0; msg->config && i < msg->config->n_lines; i++) {
        char line[CONFIG_STRLEN + 64];
        snprintf(line, sizeof line, "%s", msg->config->lines[i]);
        char *eq = strstr(line, " = ");
        if (!eq)
            continue;
        *eq = 0;
        if (config_set(train_options, cfg, line, eq + 3, sub, sizeof sub)) {
            snprintf(err, errlen, "its configuration does not parse: %s", sub);
            return -1;
        }
    }
    return 0;
}
