/* `ddtrain train`: every rank trains on its slice of each global batch; rank 0
 * also plans each step, evaluates, logs and writes the run directory. */
#include "train.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "comm.h"
#include "dataset.h"
#include "fsutil.h"
#include "log.h"
#include "memory.h"
#include "metrics.h"
#include "model.h"
#include "noise.h"
#include "optim.h"
#include "progress.h"
#include "sampler.h"
#include "schedule.h"
#include "spec.h"

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

enum { PLAN_STOP = 1, PLAN_EVAL = 2, PLAN_LOG = 4, PLAN_CHECK = 8 };

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
};

/* ---- configuration ------------------------------------------------------------ */

static int build_schedule(struct trainer *t, char *err, int errlen)
{
    const struct train_config *c = &t->cfg;
    struct sched_config *s = &t->sched;
    sched_defaults(s);
    s->base_lr = c->lr;
    s->scaling = (enum lr_scaling)c->lr_scaling;
    s->ref_batch = c->ref_batch;
    s->epochs = c->epochs;
    s->warmup_epochs = c->warmup_epochs;
    s->warmup_steps = c->warmup_steps;
    s->warmup_start = c->warmup_start;
    s->decay = (enum lr_decay)c->lr_decay;
    s->gamma = c->lr_gamma;
    s->power = c->lr_power;
    s->floor = c->lr_floor;
    s->sgdr_t0 = c->sgdr_t0;
    s->sgdr_tmult = c->sgdr_tmult;
    s->cycle_epochs = c->cycle_epochs;
    s->onecycle_pct = c->onecycle_pct;
    s->onecycle_div = c->onecycle_div;
    s->onecycle_final_div = c->onecycle_final_div;
    s->momentum = c->momentum;
    s->momentum_min = c->momentum_min;
    s->base_batch = c->batch_size;
    s->batch_scales_lr = c->batch_scales_lr;
    if (sched_parse_milestones(s, c->lr_milestones, err, errlen))
        return -1;
    if (sched_parse_batch_list(s, c->batch_schedule, err, errlen))
        return -1;
    return sched_validate(s, err, errlen);
}

static int max_global_batch(const struct sched_config *s)
{
    int b = s->base_batch;
    for (int i = 0; i < s->nbatch; i++)
        if (s->batch_sizes[i] > b)
            b = s->batch_sizes[i];
    return b;
}

static int min_global_batch(const struct sched_config *s)
{
    int b = s->base_batch;
    for (int i = 0; i < s->nbatch; i++)
        if (s->batch_sizes[i] < b)
            b = s->batch_sizes[i];
    return b;
}

static long steps_in_epoch(const struct trainer *t, int64_t epoch)
{
    return (long)(t->train.n / (size_t)sched_batch_at(&t->sched, (double)epoch));
}

/* Loads both splits and checks them against the model; exit-2 errors. */
static int load_data(struct trainer *t, const struct spec *s, char *err)
{
    const struct train_config *c = &t->cfg;
    if (dataset_load(&t->train, c->data, "train", c->classes, err))
        return -1;
    if (dataset_load(&t->test, c->data, "test", c->classes, err))
        return -1;
    if (c->train_samples > 0 && (size_t)c->train_samples < t->train.n)
        dataset_truncate(&t->train, (size_t)c->train_samples);
    if (c->test_samples > 0 && (size_t)c->test_samples < t->test.n)
        dataset_truncate(&t->test, (size_t)c->test_samples);
    if (t->train.dim != (size_t)spec_input_width(s)) {
        snprintf(err, DDT_ERRLEN, "--model: the input width is %d but the data set '%s' has %zu features per sample",
                 spec_input_width(s), c->data, t->train.dim);
        return -1;
    }
    if (t->test.dim != t->train.dim) {
        snprintf(err, DDT_ERRLEN, "--data: the test split has %zu features per sample, the training split %zu",
                 t->test.dim, t->train.dim);
        return -1;
    }
    if (spec_output_width(s) != c->classes) {
        snprintf(err, DDT_ERRLEN, "--model: the output width is %d but --classes is %d",
                 spec_output_width(s), c->classes);
        return -1;
    }
    return 0;
}

static int check_batches(const struct trainer *t, char *err)
{
    int lo = min_global_batch(&t->sched), hi = max_global_batch(&t->sched);
    if ((size_t)hi > t->train.n) {
        snprintf(err, DDT_ERRLEN, "--batch-size/--batch-schedule: a global batch of %d is larger than the %zu training samples",
                 hi, t->train.n);
        return -1;
    }
    if (lo < t->nranks) {
        snprintf(err, DDT_ERRLEN, "--batch-size/--batch-schedule: a global batch of %d cannot be split across %d ranks: allowed at least one sample per rank",
                 lo, t->nranks);
        return -1;
    }
    return 0;
}

static void optim_config_from(const struct train_config *c, struct optim_config *oc)
{
    memset(oc, 0, sizeof *oc);
    oc->kind = (enum optim_kind)c->optimizer;
    oc->nesterov = c->nesterov;
    oc->beta1 = (float)c->momentum;
    oc->beta2 = (float)c->beta2;
    oc->eps = (float)c->adam_eps;
    oc->weight_decay = (float)c->weight_decay;
    oc->wd_mode = (enum wd_mode)c->wd_mode;
    oc->wd_exempt_vectors = c->wd_exempt_bn_bias;
    oc->trust_coef = (float)c->trust_coef;
    oc->trust_exempt_vectors = true;
}

/* Writes the effective config into the run directory (atomically). */
static int write_effective_config(const struct trainer *t, char *err, int errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.txt", t->cfg.run_dir);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    fprintf(mem, "# effective configuration of this run; usable with --config\n");
    config_write(train_options, &t->cfg, mem);
    fclose(mem);
    int rc = fs_write_atomic(path, text, len, err, errlen);
    free(text);
    return rc;
}

/* ---- evaluation ---------------------------------------------------------------- */

/* Loss and accuracy over samples [0, n) of d, split across ranks. */
static void evaluate(struct trainer *t, const struct dataset *d, size_t n, double *loss,
                     double *acc)
{
    struct model *m = &t->model;
    size_t lo = n * (size_t)t->rank / (size_t)t->nranks;
    size_t hi = n * (size_t)(t->rank + 1) / (size_t)t->nranks;
    double sums[2] = { 0, 0 };
    struct pass_ctx ctx = { .train = false, .seed = t->cfg.seed };
    uint32_t idx[4096];
    for (size_t i = lo; i < hi;) {
        int B = (int)((hi - i) < (size_t)m->max_batch ? hi - i : (size_t)m->max_batch);
        if (B > 4096)
            B = 4096;
        for (int k = 0; k < B; k++)
            idx[k] = (uint32_t)(i + (size_t)k);
        dataset_gather(m->act[0], m->labels, d, idx, B, m->in_mean, m->in_inv_std);
        model_forward(m, &ctx, B);
        int correct;
        sums[0] += model_loss(m, m->labels, B, &correct);
        sums[1] += correct;
        i += (size_t)B;
    }
    if (t->nranks > 1)
        MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    *loss = n ? sums[0] / (double)n : NAN;
    *acc = n ? sums[1] / (double)n : NAN;
}

static void run_eval(struct trainer *t, const struct step_plan *p)
{
    size_t ntrain = t->train.n;
    if (t->cfg.eval_train_samples > 0 && (size_t)t->cfg.eval_train_samples < ntrain)
        ntrain = (size_t)t->cfg.eval_train_samples;
    double tr_loss, tr_acc, te_loss, te_acc;
    evaluate(t, &t->train, ntrain, &tr_loss, &tr_acc);
    evaluate(t, &t->test, t->test.n, &te_loss, &te_acc);
    if (t->rank != 0)
        return;
    double epoch = (double)(p->epoch + 1);
    if (p->batch_in_epoch + 1 < steps_in_epoch(t, p->epoch))
        epoch = p->epoch_pos;
    metrics_eval(&t->metrics, (long)p->step + 1, epoch, tr_loss, tr_acc, te_loss, te_acc);
    char line[256];
    snprintf(line, sizeof line,
             "epoch %.2f step %ld: train loss %.4f acc %.4f | test loss %.4f acc %.4f",
             epoch, (long)p->step + 1, tr_loss, tr_acc, te_loss, te_acc);
    if (!t->cfg.quiet)
        progress_line(&t->progress, line);
}

/* ---- the coordinator's plan ------------------------------------------------------ */

static void plan_next(struct trainer *t, struct step_plan *p)
{
    memset(p, 0, sizeof *p);
    if (t->batch_in_epoch >= steps_in_epoch(t, t->epoch)) {
        t->epoch++;
        t->batch_in_epoch = 0;
    }
    p->step = t->step;
    p->epoch = t->epoch;
    p->batch_in_epoch = t->batch_in_epoch;
    if (t->epoch >= t->cfg.epochs || (t->cfg.max_steps > 0 && t->step >= t->cfg.max_steps)) {
        p->flags = PLAN_STOP;
        return;
    }
    long spe = steps_in_epoch(t, t->epoch);
    double pos = (double)t->epoch + (double)t->batch_in_epoch / (double)spe;
    p->epoch_pos = pos;
    p->global_batch = sched_batch_at(&t->sched, (double)t->epoch);
    p->lr = sched_lr_at(&t->sched, pos, (long)t->step);
    p->momentum = sched_momentum_at(&t->sched, pos);
    bool last_of_epoch = t->batch_in_epoch + 1 == spe;
    bool last_step = (t->cfg.max_steps > 0 && t->step + 1 == t->cfg.max_steps) ||
                     (last_of_epoch && t->epoch + 1 == t->cfg.epochs);
    int ee = t->cfg.eval_every;
    if (last_step || (last_of_epoch && ee > 0 && (t->epoch + 1) % ee == 0))
        p->flags |= PLAN_EVAL;
    if ((t->step + 1) % t->cfg.log_every == 0 || last_step)
        p->flags |= PLAN_LOG;
    if (t->cfg.check_every > 0 && ((t->step + 1) % t->cfg.check_every == 0 || last_step))
        p->flags |= PLAN_CHECK;
}

/* ---- one step -------------------------------------------------------------------- */

static void log_step(struct trainer *t, const struct step_plan *p)
{
    double now = MPI_Wtime();
    double dt = now - t->log_time;
    double sps = dt > 0 ? t->log_count / dt : NAN;
    double loss = t->log_loss / t->log_count, acc = t->log_correct / t->log_count;
    double grad_norm = sqrt(t->log_grad_sq / (double)t->log_steps);
    double bnoise = noise_b_simple(&t->noise);
    double elapsed = now - t->t_start;
    double eta = elapsed / (double)(p->step + 1) * (double)(t->total_steps - p->step - 1);
    metrics_train(&t->metrics, (long)p->step + 1, p->epoch_pos, p->lr, p->momentum,
                  p->global_batch, loss, acc, sps, grad_norm, bnoise);
    if (!t->cfg.quiet)
        progress_step(&t->progress, (long)p->step + 1, t->total_steps, p->epoch_pos,
                      t->cfg.epochs, loss, acc, p->lr, sps, eta, bnoise);
    t->log_loss = t->log_correct = t->log_count = t->log_grad_sq = 0;
    t->log_steps = 0;
    t->log_time = now;
}

static void train_step(struct trainer *t, const struct step_plan *p)
{
    struct model *m = &t->model;
    size_t n = t->train.n;
    if (t->perm_epoch != p->epoch) {
        sampler_permutation(t->perm, n, t->cfg.seed, (uint64_t)p->epoch);
        t->perm_epoch = p->epoch;
    }
    int B = p->global_batch, first, count;
    sampler_slice(B, t->rank, t->nranks, &first, &count);
    const uint32_t *idx = t->perm + (size_t)p->batch_in_epoch * (size_t)B + (size_t)first;
    dataset_gather(m->act[0], m->labels, &t->train, idx, count, m->in_mean, m->in_inv_std);

    struct pass_ctx ctx = { .train = true, .seed = t->cfg.seed, .step = (uint64_t)p->step,
                            .first_sample = (uint64_t)first };
    model_forward(m, &ctx, count);
    int correct;
    double loss = model_loss(m, m->labels, count, &correct);
    comm_begin(&t->comm);
    model_backward(m, m->labels, count, comm_grad_ready, &t->comm);
    comm_finish(&t->comm, loss, correct, count);
    model_update_running(m);
    optim_step(&t->opt, &m->arena, (float)p->lr, (float)p->momentum, 1.0f / (float)B);

    /* noise scale from the per-rank (small batch) and global (big batch) norms */
    const double *st = t->comm.stats;
    double g2_big = 0;
    if (t->cfg.noise_scale && t->nranks > 1) {
        for (size_t i = 0; i < m->arena.n; i++)
            g2_big += (double)m->arena.g[i] * m->arena.g[i];
        g2_big /= (double)B * (double)B;
        double b_small = (double)B / t->nranks;
        double g2_small = st[STAT_GRAD_SQ_OVER_B] / t->nranks;
        noise_update(&t->noise, b_small, g2_small, (double)B, g2_big);
    }
    t->wait_time += t->comm.wait_seconds;
    t->log_loss += st[STAT_LOSS];
    t->log_correct += st[STAT_CORRECT];
    t->log_count += st[STAT_COUNT];
    t->log_grad_sq += g2_big;
    t->log_steps++;
}

/* ---- set-up and the loop ---------------------------------------------------------- */

static int setup(struct trainer *t, const struct spec *s, char *err)
{
    const struct train_config *c = &t->cfg;
    if (load_data(t, s, err) || check_batches(t, err))
        return 2;
    struct model_options mo = { .bn_group = c->bn_group, .bn_eps = (float)c->bn_eps,
                                .bn_momentum = (float)c->bn_momentum };
    int max_slice = (max_global_batch(&t->sched) + t->nranks - 1) / t->nranks;
    if (model_build(&t->model, s, max_slice, &mo, err, DDT_ERRLEN))
        return 1;
    model_init_params(&t->model, c->seed);
    dataset_feature_stats(&t->train, t->model.in_mean, t->model.in_inv_std);
    struct optim_config oc;
    optim_config_from(c, &oc);
    if (optim_init(&t->opt, &oc, t->model.arena.n)) {
        snprintf(err, DDT_ERRLEN, "out of memory for the optimizer state");
        return 1;
    }
    t->perm = malloc(t->train.n * sizeof *t->perm);
    if (!t->perm) {
        snprintf(err, DDT_ERRLEN, "out of memory for the sample permutation");
        return 1;
    }
    t->perm_epoch = -1;
    comm_init(&t->comm, MPI_COMM_WORLD, &t->model, (size_t)c->bucket_kb * 1024 / sizeof(float),
              c->overlap, c->noise_scale && t->nranks > 1);
    noise_init(&t->noise, c->noise_ema);
    t->total_steps = 0;
    for (int e = 0; e < c->epochs; e++)
        t->total_steps += steps_in_epoch(t, e);
    if (c->max_steps > 0 && c->max_steps < t->total_steps)
        t->total_steps = c->max_steps;
    return 0;
}

static int open_run_dir(struct trainer *t, char *err)
{
    char path[4096];
    if (fs_mkdir_p(t->cfg.run_dir, err, DDT_ERRLEN))
        return -1;
    snprintf(path, sizeof path, "%s/metrics.jsonl", t->cfg.run_dir);
    struct stat st;
    if (stat(path, &st) == 0) {
        snprintf(err, DDT_ERRLEN, "--run-dir: %s already holds a run (%s exists): choose another run directory",
                 t->cfg.run_dir, path);
        return -1;
    }
    if (write_effective_config(t, err, DDT_ERRLEN))
        return -1;
    return metrics_open(&t->metrics, t->cfg.run_dir, err, DDT_ERRLEN);
}

static size_t dataset_bytes(const struct dataset *d)
{
    size_t elem = d->type == SAMPLE_U8 ? 1 : sizeof(float);
    return d->n * d->dim * elem + d->n * sizeof(int32_t);
}

/* Peak RSS of the largest rank beside the sum of what a rank must hold. */
static void report_memory(const struct trainer *t)
{
    double peak = (double)mem_peak_rss(), worst = peak;
    if (t->nranks > 1)
        MPI_Reduce(&peak, &worst, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (t->rank != 0)
        return;
    const double mib = 1024.0 * 1024.0;
    double data = (double)(dataset_bytes(&t->train) + dataset_bytes(&t->test));
    double params = 2.0 * (double)t->model.arena.n * sizeof(float);
    double opt = (double)t->model.arena.n * sizeof(float) * (t->opt.v ? 2.0 : 1.0);
    double act = (double)model_activation_bytes(&t->model);
    log_info("memory per rank: peak RSS %.1f MiB; budget %.1f MiB = data %.1f + parameters and gradients %.1f + optimizer %.1f + activations %.1f",
             worst / mib, (data + params + opt + act) / mib, data / mib, params / mib,
             opt / mib, act / mib);
}

static void trainer_free(struct trainer *t)
{
    metrics_close(&t->metrics);
    free(t->perm);
    optim_free(&t->opt);
    model_free(&t->model);
    dataset_free(&t->train);
    dataset_free(&t->test);
}

/* Every rank reaches the same verdict on the same arguments, so an error
 * found by all needs no communication; one found by some is broadcast. */
static int agree_status(int status)
{
    int worst = status;
    MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

static void print_usage(void)
{
    fprintf(stdout, "usage: ddtrain train [options]\n"
                    "       mpirun -np N ddtrain train [options]   (or launch/ddtrain-run)\n\n"
                    "options:\n");
    config_help(train_options, stdout);
}

int train_main(int argc, char **argv, int first)
{
    static struct trainer tr;
    struct trainer *t = &tr;
    memset(t, 0, sizeof *t);
    MPI_Comm_rank(MPI_COMM_WORLD, &t->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &t->nranks);
    log_set_identity(t->rank, t->rank == 0 ? "coord" : "worker");

    char err[CONFIG_ERRLEN + DDT_ERRLEN];
    char *pos[1];
    int npos;
    config_defaults(train_options, &t->cfg);
    int rc = config_parse_args(train_options, &t->cfg, argc, argv, first, pos, 0, &npos, err);
    if (rc == 1) {
        if (t->rank == 0)
            print_usage();
        return 0;
    }
    struct spec s;
    char spec_err[256];
    if (rc == 0 && spec_parse(&s, t->cfg.model, t->cfg.bn, (float)t->cfg.dropout, spec_err,
                              (int)sizeof spec_err) != 0) {
        snprintf(err, sizeof err, "--model: '%s': %s", t->cfg.model, spec_err);
        rc = -1;
    }
    if (rc == 0 && build_schedule(t, err, (int)sizeof err))
        rc = -1;
    if (rc != 0) {
        if (t->rank == 0)
            fprintf(stderr, "ddtrain train: %s\n", err);
        return 2;
    }
    openblas_set_num_threads(t->cfg.threads);

    int status = setup(t, &s, err);
    if (agree_status(status) != 0) {
        if (status != 0)
            log_error("%s", err);
        trainer_free(t);
        return status ? status : 2;
    }
    status = t->rank == 0 && open_run_dir(t, err) ? 2 : 0;
    if (agree_status(status) != 0) {
        if (status)
            log_error("%s", err);
        trainer_free(t);
        return 2;
    }
    if (t->rank == 0) {
        char spec_text[1024];
        spec_format(&t->model.spec, spec_text, sizeof spec_text);
        progress_init(&t->progress);
        log_info("training %s (%zu parameters) on %zu samples, %d rank%s, %ld steps",
                 spec_text, model_param_count(&t->model), t->train.n, t->nranks,
                 t->nranks == 1 ? "" : "s", t->total_steps);
    }

    t->t_start = t->log_time = MPI_Wtime();
    int exit_status = 0;
    for (;;) {
        struct step_plan p;
        if (t->rank == 0)
            plan_next(t, &p);
        if (t->nranks > 1)
            MPI_Bcast(&p, (int)sizeof p, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (p.flags & PLAN_STOP)
            break;
        train_step(t, &p);
        if (t->rank == 0) {
            t->step++;
            t->batch_in_epoch++;
            if (!isfinite(t->comm.stats[STAT_LOSS]))
                log_warn("step %ld: the loss is %g", (long)p.step + 1, t->comm.stats[STAT_LOSS]);
        }
        if ((p.flags & PLAN_LOG) && t->rank == 0)
            log_step(t, &p);
        if (p.flags & PLAN_CHECK) {
            unsigned long long h;
            if (!comm_replicas_agree(MPI_COMM_WORLD, t->model.arena.w, t->model.arena.n, &h)) {
                log_error("step %ld: the parameters differ between ranks (this rank's checksum %016llx); stopping",
                          (long)p.step + 1, h);
                MPI_Abort(MPI_COMM_WORLD, 3);
            }
        }
        if (p.flags & PLAN_EVAL)
            run_eval(t, &p);
    }
    report_memory(t);
    if (t->rank == 0) {
        double total = MPI_Wtime() - t->t_start;
        char dur[32];
        progress_format_duration(total, dur, sizeof dur);
        log_info("done: %ld steps in %s; waiting on communication %.1f%% of the time",
                 (long)t->step, dur, total > 0 ? 100.0 * t->wait_time / total : 0.0);
    }
    trainer_free(t);
    return exit_status;
}
