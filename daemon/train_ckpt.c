/* Turning a run's state into a Checkpoint message and back. */
#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "fsutil.h"
#include "config.h"
#include "spec.h"
#include "trainer.h"
#include "ckpt_restore.h"

/* Config lines as one allocation of strings; freed with free_lines. */
static char **config_lines(const struct train_config *c, size_t *n)
{
    size_t count = 0;
    for (const struct option_def *o = train_options; o->name; o++)
        count++;
    char **lines = calloc(count, sizeof *lines);
    if (!lines)
        return NULL;
    char value[CONFIG_STRLEN + 32];
    for (size_t i = 0; i < count; i++) {
        const struct option_def *o = &train_options[i];
        config_format_value(o, c, value, sizeof value);
        size_t len = strlen(o->name) + strlen(value) + 4;
        lines[i] = malloc(len);
        if (!lines[i]) {
            for (size_t k = 0; k < i; k++)
                free(lines[k]);
            free(lines);
            return NULL;
        }
        snprintf(lines[i], len, "%s = %s", o->name, value);
    }
    *n = count;
    return lines;
}

/* The tensors of a checkpoint message, as views into the run's arrays:
 * params, optimizer moments (m and v per tensor), bn running, input norm. */
struct ckpt_tensors {
    Ddtrain__Tensor *tensors;
    Ddtrain__Tensor **params, **moments;
    Ddtrain__Tensor *bn[1], *norm[2];
    uint32_t (*shapes)[2];
    char (*names)[48];
    int nparams, nmoments;
};

static int tensors_alloc(struct ckpt_tensors *ct, int nv)
{
    memset(ct, 0, sizeof *ct);
    ct->tensors = calloc((size_t)nv * 3 + 4, sizeof *ct->tensors);
    ct->params = calloc((size_t)nv, sizeof *ct->params);
    ct->moments = calloc((size_t)nv * 2, sizeof *ct->moments);
    ct->shapes = calloc((size_t)nv * 3 + 4, sizeof *ct->shapes);
    ct->names = calloc((size_t)nv * 2, sizeof *ct->names);
    return ct->tensors && ct->params && ct->moments && ct->shapes && ct->names ? 0 : -1;
}

static void tensors_free(struct ckpt_tensors *ct)
{
    free(ct->names);
    free(ct->shapes);
    free(ct->moments);
    free(ct->params);
    free(ct->tensors);
}

/* Views of the model's tensors as w and bn_running hold them (the model's
 * own, or local SGD's copies) and of the optimizer state (whole-arena
 * layout; opt_v NULL without a second moment). */
static void tensors_fill(struct ckpt_tensors *ct, const struct model *m, const float *w,
                         const float *bn_running, const float *opt_m, const float *opt_v)
{
    const struct arena *a = &m->arena;
    int nv = a->nviews, k = 0;
    for (int v = 0; v < nv; v++) {
        const struct tensor_view *tv = &a->views[v];
        ckpt_tensor_view(&ct->tensors[k], ct->shapes[k], tv->name, w + tv->off, tv->n,
                         (uint32_t)tv->rows, (uint32_t)tv->cols);
        ct->params[v] = &ct->tensors[k++];
    }
    ct->nparams = nv;
    int nm = 0;
    for (int v = 0; v < nv; v++) {
        const struct tensor_view *tv = &a->views[v];
        snprintf(ct->names[2 * v], sizeof ct->names[0], "%s.m", tv->name);
        ckpt_tensor_view(&ct->tensors[k], ct->shapes[k], ct->names[2 * v], opt_m + tv->off,
                         tv->n, (uint32_t)tv->rows, (uint32_t)tv->cols);
        ct->moments[nm++] = &ct->tensors[k++];
        if (opt_v) {
            snprintf(ct->names[2 * v + 1], sizeof ct->names[0], "%s.v", tv->name);
            ckpt_tensor_view(&ct->tensors[k], ct->shapes[k], ct->names[2 * v + 1],
                             opt_v + tv->off, tv->n, (uint32_t)tv->rows, (uint32_t)tv->cols);
            ct->moments[nm++] = &ct->tensors[k++];
        }
    }
    ct->nmoments = nm;
    ckpt_tensor_view(&ct->tensors[k], ct->shapes[k], "bn.running", bn_running,
                     m->bn_running_n, (uint32_t)m->bn_running_n, 1);
    ct->bn[0] = &ct->tensors[k++];
    ckpt_tensor_view(&ct->tensors[k], ct->shapes[k], "input.mean", m->in_mean,
                     (size_t)m->in_dim, (uint32_t)m->in_dim, 1);
    ct->norm[0] = &ct->tensors[k++];
    ckpt_tensor_view(&ct->tensors[k], ct->shapes[k], "input.inv_std", m->in_inv_std,
                     (size_t)m->in_dim, (uint32_t)m->in_dim, 1);
    ct->norm[1] = &ct->tensors[k++];
}

/* Local SGD: every rank's own state as RankState messages viewing lc's
 * copies (rank 0). */
struct rank_states {
    Ddtrain__RankState *msgs, **ptrs;
    struct ckpt_tensors *ct;
};

static void rank_states_free(struct rank_states *rs, int nranks)
{
    if (rs->ct)
        for (int r = 0; r < nranks; r++)
            tensors_free(&rs->ct[r]);
    free(rs->ct);
    free(rs->ptrs);
    free(rs->msgs);
}

static int rank_states_build(struct rank_states *rs, const struct local_ckpt *lc,
                             const struct model *m, int nranks)
{
    size_t n = m->arena.n, nb = m->bn_running_n;
    rs->msgs = calloc((size_t)nranks, sizeof *rs->msgs);
    rs->ptrs = calloc((size_t)nranks, sizeof *rs->ptrs);
    rs->ct = calloc((size_t)nranks, sizeof *rs->ct);
    if (!rs->msgs || !rs->ptrs || !rs->ct)
        return -1;
    for (int r = 0; r < nranks; r++) {
        struct ckpt_tensors *ct = &rs->ct[r];
        size_t at = (size_t)r * n;
        if (tensors_alloc(ct, m->arena.nviews))
            return -1;
        tensors_fill(ct, m, lc->w + at, lc->bn + (size_t)r * nb, lc->m + at,
                     lc->v ? lc->v + at : NULL);
        Ddtrain__RankState init = DDTRAIN__RANK_STATE__INIT;
        Ddtrain__RankState *s = &rs->msgs[r];
        *s = init;
        s->rank = (uint32_t)r;
        s->n_params = (size_t)ct->nparams;
        s->params = ct->params;
        s->n_bn_running = 1;
        s->bn_running = ct->bn;
        s->n_optimizer = (size_t)ct->nmoments;
        s->optimizer = ct->moments;
        rs->ptrs[r] = s;
    }
    return 0;
}

static void schedule_state(const struct trainer *t, Ddtrain__ScheduleState *st,
                           uint32_t *auto_sizes)
{
    st->step = (uint64_t)t->step;
    st->epoch = (uint64_t)t->epoch;
    st->batch_in_epoch = (uint64_t)t->batch_in_epoch;
    st->seed = t->cfg.seed;
    st->global_batch = (uint32_t)sched_batch_at(&t->cfg.sched, (double)t->epoch);
    st->noise_num_ema = t->noise.s_ema;
    st->noise_den_ema = t->noise.g2_ema;
    st->noise_count = (uint64_t)t->noise.count;
    st->wall_seconds = t->wall_before + (MPI_Wtime() - t->t_start);
    st->log_loss = t->log_loss;
    st->log_correct = t->log_correct;
    st->log_count = t->log_count;
    st->log_grad_sq = t->log_grad_sq;
    st->log_steps = (uint64_t)t->log_steps;
    st->best_metric = t->best_metric;
    st->best_step = (uint64_t)t->best_step;
    st->evals_since_best = (uint32_t)t->evals_since_best;
    adaptive_save(t, st, auto_sizes);
}

/* RUN/checkpoints/best.ckpt, written atomically; the store's pruning
 * (--ckpt-keep) knows only step-N.ckpt names, so it is never removed. */
static int write_best(const struct trainer *t, const Ddtrain__Checkpoint *msg, char *err,
                      size_t errlen)
{
    char dir[4200], path[4300];
    snprintf(dir, sizeof dir, "%s/checkpoints", t->cfg.run_dir);
    if (fs_mkdir_p(dir, err, errlen))
        return -1;
    snprintf(path, sizeof path, "%s/best.ckpt", dir);
    return ckpt_write_file(path, msg, err, errlen);
}

int train_ckpt_save(struct trainer *t, char *err, size_t errlen)
{
    return train_ckpt_save_as(t, false, err, errlen);
}

int train_ckpt_save_as(struct trainer *t, bool best, char *err, size_t errlen)
{
    const float *opt_m, *opt_v;
    float *m_all, *v_all;
    struct local_ckpt lc;
    if (engine_gather_optimizer_state(&t->engine, &opt_m, &opt_v, &m_all, &v_all) ||
        local_sgd_ckpt_gather(t, &lc)) {
        snprintf(err, errlen, "out of memory gathering the optimizer state");
        free(m_all);
        free(v_all);
        return -1;
    }
    if (t->rank != 0) {
        local_sgd_ckpt_free(&lc);
        return 0;
    }
    const struct model *m = engine_model(&t->engine);
    struct ckpt_tensors ct;
    struct rank_states rs = { 0 };
    size_t nlines = 0;
    char **lines = config_lines(&t->cfg, &nlines);
    char spec_text[2048];
    int rc = -1;
    if (tensors_alloc(&ct, m->arena.nviews) || !lines ||
        (lc.on && rank_states_build(&rs, &lc, m, t->nranks))) {
        snprintf(err, errlen, "out of memory building the checkpoint");
        goto out;
    }
    /* in a local phase, the ordinary fields hold the means over the ranks */
    if (lc.on)
        tensors_fill(&ct, m, lc.avg_w, lc.avg_bn, lc.avg_m, lc.avg_v);
    else
        tensors_fill(&ct, m, m->arena.w, m->bn_running, opt_m, opt_v);

    Ddtrain__RunConfig rcfg = DDTRAIN__RUN_CONFIG__INIT;
    rcfg.n_lines = nlines;
    rcfg.lines = lines;
    Ddtrain__ScheduleState st = DDTRAIN__SCHEDULE_STATE__INIT;
    uint32_t auto_sizes[SCHED_MAX_BATCH_CHANGES];
    schedule_state(t, &st, auto_sizes);
    spec_format(&m->spec, spec_text, sizeof spec_text);

    Ddtrain__Checkpoint msg = DDTRAIN__CHECKPOINT__INIT;
    msg.format_version = CKPT_MESSAGE_VERSION;
    msg.config = &rcfg;
    msg.schedule = &st;
    msg.model_spec = spec_text;
    msg.n_params = (size_t)ct.nparams;
    msg.params = ct.params;
    msg.n_bn_running = 1;
    msg.bn_running = ct.bn;
    msg.n_input_norm = 2;
    msg.input_norm = ct.norm;
    msg.n_optimizer = (size_t)ct.nmoments;
    msg.optimizer = ct.moments;
    msg.optimizer_steps = (uint64_t)engine_optimizer_steps(&t->engine);
    msg.nranks = (uint32_t)t->nranks;
    msg.n_rank_states = lc.on ? (size_t)t->nranks : 0;
    msg.rank_states = rs.ptrs;
    char cerr[DDT_ERRLEN];
    if (best ? write_best(t, &msg, cerr, sizeof cerr)
             : ckpt_store_save(t->cfg.run_dir, (uint64_t)t->step, &msg, t->cfg.ckpt_keep,
                               t->last_ckpt, sizeof t->last_ckpt, cerr, sizeof cerr)) {
        snprintf(err, errlen, "%s", cerr);
        goto out;
    }
    rc = 0;
out:
    if (lines)
        for (size_t i = 0; i < nlines; i++)
            free(lines[i]);
    free(lines);
    tensors_free(&ct);
    rank_states_free(&rs, t->nranks);
    local_sgd_ckpt_free(&lc);
    free(m_all);
    free(v_all);
    return rc;
}

/* Where the engine's optimizer state comes from, where errors go, and what
 * the engine asked for. */
struct optimizer_source {
    const Ddtrain__Checkpoint *msg;
    char *err;
    size_t errlen;
    int calls;
    bool second_moment;
};

/* An engine_state_fill_fn: a piece of a tensor's moments from the checkpoint. */
static int restore_optimizer_part(void *user, const struct tensor_view *tv, float *m_dst,
                                  float *v_dst, size_t first, size_t len)
{
    struct optimizer_source *src = user;
    const Ddtrain__Checkpoint *msg = src->msg;
    char mname[48], vname[48];
    src->calls++;
    src->second_moment = v_dst != NULL;
    snprintf(mname, sizeof mname, "%s.m", tv->name);
    snprintf(vname, sizeof vname, "%s.v", tv->name);
    if (ckpt_restore_tensor_part(msg->optimizer, msg->n_optimizer, mname, m_dst, tv->rows,
                                 tv->cols, first, len, src->err, src->errlen) ||
        (v_dst && ckpt_restore_tensor_part(msg->optimizer, msg->n_optimizer, vname, v_dst,
                                           tv->rows, tv->cols, first, len, src->err,
                                           src->errlen)))
        return -1;
    return 0;
}

/* The optimizer state: one moment (or two) per parameter tensor, no more. */
static int restore_optimizer(struct trainer *t, const Ddtrain__Checkpoint *msg, char *err,
                             size_t errlen)
{
    struct optimizer_source src = { msg, err, errlen, 0, false };
    if (engine_restore_optimizer_state(&t->engine, restore_optimizer_part, &src))
        return -1;
    /* a rank that holds no optimizer state was never asked (and learns nothing) */
    if (src.calls && ckpt_check_optimizer(msg, engine_model(&t->engine)->arena.nviews,
                                          src.second_moment, err, errlen))
        return -1;
    engine_set_optimizer_steps(&t->engine, (long)msg->optimizer_steps);
    return 0;
}

int train_ckpt_restore(struct trainer *t, const Ddtrain__Checkpoint *msg, bool weights_only,
                       bool skip_head, char *err, size_t errlen)
{
    /* everything is checked before the first counter or tensor is used;
     * --batch-auto's batches first, which the schedule's position needs */
    if (!weights_only &&
        (adaptive_restore(t, msg->schedule, msg->nranks, err, errlen) ||
         ckpt_check_model_spec(msg, &engine_model(&t->engine)->spec, err, errlen) ||
         ckpt_check_schedule(msg, &t->cfg.sched, t->cfg.seed, t->train.n, err, errlen)))
        return -1;
    /* local SGD: this rank's own state, or at another rank count the means */
    Ddtrain__Checkpoint view;
    if (!weights_only && msg->n_rank_states > 0) {
        if (local_sgd_restore_view(t, msg, &view, err, errlen))
            return -1;
        msg = &view;
    }
    if (ckpt_restore_model(engine_model(&t->engine), msg, skip_head, err, errlen))
        return -1;
    if (weights_only)
        return 0;
    if (restore_optimizer(t, msg, err, errlen))
        return -1;
    const Ddtrain__ScheduleState *st = msg->schedule;
    t->step = (int64_t)st->step;
    t->epoch = (int64_t)st->epoch;
    t->batch_in_epoch = (int64_t)st->batch_in_epoch;
    t->noise.s_ema = st->noise_num_ema;
    t->noise.g2_ema = st->noise_den_ema;
    t->noise.count = (long)st->noise_count;
    t->wall_before = st->wall_seconds;
    t->log_loss = st->log_loss;
    t->log_correct = st->log_correct;
    t->best_metric = st->best_metric;
    t->best_step = (int64_t)st->best_step;
    t->evals_since_best = (int)st->evals_since_best;
    /* a run that stopped early stays stopped, as a finished one does */
    t->early_stopped = t->cfg.early_stop > 0 && t->evals_since_best >= t->cfg.early_stop;
    t->log_count = st->log_count;
    t->log_grad_sq = st->log_grad_sq;
    t->log_steps = (long)st->log_steps;
    return 0;
}
