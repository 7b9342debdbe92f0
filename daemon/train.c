/* `ddtrain train`: every rank trains on its slice of each global batch; rank 0
 * also plans each step, evaluates, logs and writes the run directory. */
#include "train.h"
#include "trainer.h"

#include <cblas.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "exit_status.h"
#include "fsutil.h"
#include "log.h"
#include "memory.h"
#include "metrics.h"
#include "models.h"
#include "noise.h"
#include "progress.h"
#include "signals.h"
#include "schedule.h"
#include "spec.h"
#include "step.h"

/* ---- evaluation ---------------------------------------------------------------- */

/* Evaluates on every rank (the sums are allreduced, so every rank gets the
 * same numbers); rank 0 logs. Returns the value --early-stop and
 * --keep-best watch: the validation set's loss or accuracy, else the test
 * set's. */
static double run_eval(struct trainer *t, const struct step_plan *p)
{
    size_t ntrain = t->train.n;
    if (t->cfg.eval_train_samples > 0 && (size_t)t->cfg.eval_train_samples < ntrain)
        ntrain = (size_t)t->cfg.eval_train_samples;
    double tr_loss, tr_acc, te_loss, te_acc, va_loss = NAN, va_acc = NAN;
    /* local SGD in the middle of a period: the mean of the replicas */
    bool apart = local_sgd_eval_begin(t);
    engine_evaluate(&t->engine, &t->train, ntrain, &tr_loss, &tr_acc);
    if (t->val.n > 0)
        engine_evaluate(&t->engine, &t->val, t->val.n, &va_loss, &va_acc);
    engine_evaluate(&t->engine, &t->test, t->test.n, &te_loss, &te_acc);
    local_sgd_eval_end(t, apart);
    bool acc = t->cfg.early_stop_metric == EARLY_STOP_ACCURACY;
    double watched = t->val.n > 0 ? (acc ? va_acc : va_loss) : (acc ? te_acc : te_loss);
    if (t->rank != 0)
        return watched;
    double epoch = (double)(p->epoch + 1);
    if (p->batch_in_epoch + 1 < train_steps_in_epoch(t, p->epoch))
        epoch = p->epoch_pos;
    /* a failed write is kept in t->metrics and acted on in after_step */
    metrics_eval(&t->metrics, (long)p->step + 1, epoch, tr_loss, tr_acc, va_loss, va_acc,
                 te_loss, te_acc, t->wall_before + (MPI_Wtime() - t->t_start));
    char line[256], val[64] = "";
    if (t->val.n > 0)
        snprintf(val, sizeof val, " | val loss %.4f acc %.4f", va_loss, va_acc);
    snprintf(line, sizeof line,
             "epoch %.2f step %ld: train loss %.4f acc %.4f%s | test loss %.4f acc %.4f",
             epoch, (long)p->step + 1, tr_loss, tr_acc, val, te_loss, te_acc);
    if (!t->cfg.quiet)
        progress_line(&t->progress, line);
    return watched;
}

/* The epoch (with its fraction) at the end of `step` steps, as evaluation
 * lines count it. */
static double epoch_at_step(const struct trainer *t, int64_t step)
{
    int64_t e = 0;
    long n;
    while (step > 0 && step >= (n = train_steps_in_epoch(t, e)) && n > 0) {
        step -= n;
        e++;
    }
    return step > 0 ? (double)e + (double)step / (double)train_steps_in_epoch(t, e) : (double)e;
}

/* Rank 0: why --early-stop ends the run, on stderr and in metrics.jsonl (a
 * failed write is acted on in after_step, as an evaluation's). */
static void report_early_stop(struct trainer *t, const char *what)
{
    const struct train_config *c = &t->cfg;
    double best_epoch = epoch_at_step(t, t->best_step);
    log_info("early stop: %s has not improved for %d evaluation%s (best %.6g, epoch %g, at step %ld, --early-stop %d); stopping after step %ld",
             what, t->evals_since_best, t->evals_since_best == 1 ? "" : "s", t->best_metric,
             best_epoch, (long)t->best_step, c->early_stop, (long)t->step);
    metrics_early_stop(&t->metrics, (long)t->step, what, t->best_metric, (long)t->best_step,
                       best_epoch, c->early_stop, t->evals_since_best);
}

/* --early-stop / --keep-best after an evaluation, on every rank alike:
 * returns whether the watched value improved (then the best checkpoint is
 * due), and sets t->early_stopped when the patience has run out. A NaN
 * never improves. */
static bool track_best(struct trainer *t, double v)
{
    const struct train_config *c = &t->cfg;
    if (c->early_stop == 0 && !c->keep_best)
        return false;
    bool acc = c->early_stop_metric == EARLY_STOP_ACCURACY;
    bool better = t->best_step == 0 ? !isnan(v) : acc ? v > t->best_metric : v < t->best_metric;
    const char *what = t->val.n > 0 ? (acc ? "val_accuracy" : "val_loss")
                                    : (acc ? "test_accuracy" : "test_loss");
    if (better) {
        t->best_metric = v;
        t->best_step = t->step;
        t->evals_since_best = 0;
    } else {
        t->evals_since_best++;
    }
    if (t->rank == 0 && t->progress.line_open) {
        fputc('\n', stderr);
        t->progress.line_open = false;
    }
    if (better && t->rank == 0)
        log_info("best %s %.6g at step %ld", what, v, (long)t->step);
    if (c->early_stop > 0 && t->evals_since_best >= c->early_stop) {
        t->early_stopped = true;
        if (t->rank == 0)
            report_early_stop(t, what);
    }
    return better;
}

/* ---- the coordinator's plan ------------------------------------------------------ */

/* A batch schedule's change, said when it takes effect (rank 0). */
static void announce_batch(struct trainer *t, const struct step_plan *p)
{
    if (t->plan_batch > 0) {
        if (t->progress.line_open) {
            fputc('\n', stderr);
            t->progress.line_open = false;
        }
        char why[64] = "--batch-schedule";
        double g2, trace;
        if (t->cfg.batch_auto > 0 && noise_estimates(&t->noise, &g2, &trace) == 0 &&
            !(g2 > 0) && trace > 0)
            /* the controller reads this as an infinite noise scale */
            snprintf(why, sizeof why, "--batch-auto, B_noise unbounded: |G|^2 estimate <= 0");
        else if (t->cfg.batch_auto > 0)
            snprintf(why, sizeof why, "--batch-auto, B_noise %.0f", noise_b_simple(&t->noise));
        log_info("epoch %ld: the global batch changes from %d to %d (%s), %d per rank; lr %.4g",
                 (long)p->epoch, t->plan_batch, p->global_batch, why,
                 p->global_batch / t->nranks, p->lr);
    }
    t->plan_batch = p->global_batch;
}

static void plan_next(struct trainer *t, struct step_plan *p)
{
    memset(p, 0, sizeof *p);
    if (t->metrics.failed) {
        /* after_step has said why */
        p->flags = PLAN_STOP | PLAN_FAILED;
        return;
    }
    if (t->early_stopped) {
        /* track_best has said why; the final checkpoint is written */
        p->flags = PLAN_STOP;
        return;
    }
    bool new_epoch = false;
    if (t->batch_in_epoch >= train_steps_in_epoch(t, t->epoch)) {
        t->epoch++;
        t->batch_in_epoch = 0;
        new_epoch = true;
    }
    p->step = t->step;
    p->epoch = t->epoch;
    p->batch_in_epoch = t->batch_in_epoch;
    if (adaptive_at_end(t, 0) || (t->cfg.max_steps > 0 && t->step >= t->cfg.max_steps)) {
        p->flags = PLAN_STOP;
        return;
    }
    /* --batch-auto decides at epoch starts, so an epoch has one batch */
    if (new_epoch)
        adaptive_epoch_start(t);
    long spe = train_steps_in_epoch(t, t->epoch);
    double pos = (double)t->epoch + (double)t->batch_in_epoch / (double)spe;
    p->epoch_pos = pos;
    p->global_batch = sched_batch_at(&t->cfg.sched, (double)t->epoch);
    /* AdaScale: gain x the schedule on its scale-invariant clock; else
     * sched_pos is pos, the gain 1 and the rate as it always was */
    double sched_pos = adaptive_sched_pos(t, pos);
    p->gain = adaptive_gain(t, p->global_batch);
    p->lr = sched_lr_at(&t->cfg.sched, sched_pos, (long)t->step);
    if (t->cfg.sched.scaling == SCALE_ADASCALE)
        p->lr *= p->gain;
    p->momentum = sched_momentum_at(&t->cfg.sched, sched_pos);
    if (p->global_batch != t->plan_batch)
        announce_batch(t, p);
    adaptive_estimate_total(t, p->global_batch, p->gain);
    bool last_of_epoch = t->batch_in_epoch + 1 == spe;
    bool last_of_run = t->cfg.sched.scaling == SCALE_ADASCALE
                           ? adaptive_at_end(t, p->gain)
                           : last_of_epoch && t->epoch + 1 == t->cfg.sched.epochs;
    bool last_step = (t->cfg.max_steps > 0 && t->step + 1 == t->cfg.max_steps) || last_of_run;
    int ee = t->cfg.eval_every;
    if (last_step || (last_of_epoch && ee > 0 && (t->epoch + 1) % ee == 0))
        p->flags |= PLAN_EVAL;
    if ((t->step + 1) % t->cfg.log_every == 0 || last_step)
        p->flags |= PLAN_LOG;
    bool check = t->cfg.check_every > 0 && ((t->step + 1) % t->cfg.check_every == 0 || last_step);
    local_sgd_plan(t, p, spe, &check);
    if (check)
        p->flags |= PLAN_CHECK;
    int ce = t->cfg.ckpt_every_epochs;
    if ((t->cfg.ckpt_every > 0 && (t->step + 1) % t->cfg.ckpt_every == 0) ||
        (last_of_epoch && ce > 0 && (t->epoch + 1) % ce == 0) ||
        (last_step && t->cfg.ckpt_at_end))
        p->flags |= PLAN_CKPT;
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
    bool ada = t->cfg.sched.scaling == SCALE_ADASCALE;
    struct metrics_noise x = { .g2 = t->noise.last_g2, .trace = t->noise.last_s,
                               .samples = (long long)t->samples_seen, .adascale = ada, .gain = p->gain,
                               .si_epoch = adaptive_sched_pos(t, p->epoch_pos) };
    double elapsed = now - t->t_start;
    long done = (long)p->step + 1 - t->first_step;
    double eta = done > 0 ? elapsed / (double)done * (double)(t->total_steps - p->step - 1) : NAN;
    /* a failed write is kept in t->metrics and acted on in after_step */
    metrics_train(&t->metrics, (long)p->step + 1, p->epoch_pos, p->lr, p->momentum,
                  p->global_batch, loss, acc, sps, grad_norm, bnoise, &x);
    if (!t->cfg.quiet)
        progress_step(&t->progress, (long)p->step + 1, t->total_steps, p->epoch_pos,
                      t->cfg.sched.epochs, loss, acc, p->lr,
                      t->cfg.sched.nbatch > 0 || t->cfg.batch_auto > 0 || ada ? p->global_batch : 0,
                      sps, eta, bnoise, ada ? p->gain : NAN);
    t->recent_loss = loss;
    t->recent_sps = sps;
    t->log_loss = t->log_correct = t->log_count = t->log_grad_sq = 0;
    t->log_steps = 0;
    t->log_time = now;
}

/* Hands the plan and this rank's requests to the engine, then feeds the
 * noise scale and the log interval from what every rank did. */
static void train_step(struct trainer *t, const struct step_plan *p, struct step_result *r)
{
    struct step_input in = {
        .step = p->step, .epoch = p->epoch, .batch_in_epoch = p->batch_in_epoch,
        .global_batch = p->global_batch, .lr = p->lr, .momentum = p->momentum,
        .seed = t->cfg.seed,
        /* the noise scale needs two extra reads of the gradients: not every step */
        .measure_noise = t->cfg.noise_scale && p->step % t->cfg.noise_every == 0,
        .clip_norm = t->cfg.clip_norm,
        .local = (p->flags & PLAN_LOCAL) != 0,
        .average = (p->flags & PLAN_AVERAGE) != 0,
        .average_optimizer = t->cfg.local_average_optimizer,
    };
    /* a signal or control request seen by any rank reaches every rank */
    int ctl_ckpt = 0, ctl_stop = 0;
    if (t->rank == 0)
        control_take(&t->ctl, &ctl_ckpt, &ctl_stop);
    in.requests[REQUEST_CKPT] = signals_take_checkpoint() || ctl_ckpt;
    in.requests[REQUEST_STOP] = signals_take_stop() || ctl_stop;
    step_run(&t->engine, &in, r);
    local_sgd_count(t, p);

    if (r->has_small)
        noise_update(&t->noise, (double)t->samples_seen, r->b_small, r->g2_small, r->b_big,
                     r->g2_big);
    t->wait_time += r->wait_seconds;
    t->log_loss += r->loss_sum;
    t->log_correct += r->correct;
    t->log_count += r->count;
    if (r->measured) {
        t->log_grad_sq += r->g2_big;
        t->log_steps++;
    }
}

/* ---- set-up and the loop ---------------------------------------------------------- */

/* Peak RSS of the largest rank beside the sum of what a rank must hold. */
static void report_memory(struct trainer *t)
{
    double peak = (double)mem_peak_rss(), worst = peak;
    if (t->nranks > 1) {
        comm_guard_enter(engine_watch(&t->engine), "the reduce of the memory report");
        MPI_Reduce(&peak, &worst, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        comm_guard_leave(engine_watch(&t->engine));
    }
    if (t->rank != 0)
        return;
    const double mib = 1024.0 * 1024.0;
    double data = (double)train_data_bytes(t);
    struct engine_memory em;
    engine_memory_budget(&t->engine, &em);
    double params = em.params, opt = em.optimizer, comm = em.reduction, act = em.activations;
    /* rank 0's, the largest: it gathers local SGD's replicas at checkpoints */
    const struct model *m = engine_model_const(&t->engine);
    double local = local_sgd_memory(&t->cfg, t->nranks, true, m->arena.n, m->bn_running_n,
                                    t->engine.opt.v ? 2 : 1);
    char lsgd[48] = "";
    if (t->cfg.local_steps > 0)
        snprintf(lsgd, sizeof lsgd, " + local SGD %.1f", local / mib);
    log_info("memory per rank: peak RSS %.1f MiB; budget %.1f MiB = data %.1f + parameters and gradients %.1f + optimizer %.1f + reduction buffer %.1f + activations %.1f%s; the process held %.1f MiB (MPI, libraries) before any of it",
             worst / mib, (data + params + opt + comm + act + local) / mib, data / mib,
             params / mib, opt / mib, comm / mib, act / mib, lsgd, t->rss_baseline / mib);
}

static void trainer_free(struct trainer *t)
{
    if (t->rank == 0)
        control_stop(&t->ctl);
    metrics_close(&t->metrics);
    local_sgd_free(t);
    engine_free(&t->engine);
    dataset_free(&t->val);
    dataset_free(&t->train);
    dataset_free(&t->test);
}

/* Every rank reaches the same verdict on the same arguments, so an error
 * found by all needs no communication; one found by some is shared here
 * (guarded once the engine exists). */
static int agree_status(struct trainer *t, int status)
{
    int worst = status;
    comm_guard_enter(engine_watch(&t->engine), "the agreement on the run's set-up");
    MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    comm_guard_leave(engine_watch(&t->engine));
    return worst;
}

/* After a failed set-up, on every rank: rank 0 says what failed, and
 * another rank only what rank 0 did not say (every rank that loads the same
 * missing data set would say the same). */
static void report_setup_error(struct trainer *t, int status, const char *err)
{
    char first[2 * DDT_ERRLEN];
    snprintf(first, sizeof first, "%s", t->rank == 0 && status ? err : "");
    comm_guard_enter(engine_watch(&t->engine), "the report of the set-up's errors");
    MPI_Bcast(first, (int)sizeof first, MPI_CHAR, 0, MPI_COMM_WORLD);
    comm_guard_leave(engine_watch(&t->engine));
    if (status != 0 && err[0] && (t->rank == 0 || strcmp(err, first) != 0))
        log_error("%s", err);
}

static void print_usage(void)
{
    fprintf(stdout, "usage: ddtrain train [options]\n"
                    "       mpirun -np N ddtrain train [options]   (or launch/ddtrain-run)\n\n"
                    "options, by topic:\n\n");
    config_help_grouped(train_options, train_option_groups, stdout);
}

/* --model list: every named model as it builds for Fashion-MNIST's samples;
 * a training step costs about three forward passes (backward: two). */
static void print_models(void)
{
    struct shape in = MODELS_DEFAULT_SHAPE;
    printf("named models (--model NAME), counted for %dx%dx%d samples and %d classes; a run takes its data set's sample shape and class count\n\n",
           in.c, in.h, in.w, MODELS_DEFAULT_CLASSES);
    printf("%-10s %11s %13s  %s\n", "name", "parameters", "train MFLOPs", "source");
    for (int i = 0; i < models_count(); i++) {
        const struct model_entry *e = models_at(i);
        size_t params;
        double flops;
        char err[256];
        if (models_measure(e, in, MODELS_DEFAULT_CLASSES, &params, &flops, err, sizeof err))
            printf("%-10s %11s %13s  %s (not in this build: %s)\n", e->name, "-", "-", e->source,
                   err);
        else
            printf("%-10s %11zu %13.1f  %s\n", e->name, params, 3 * flops / 1e6, e->source);
    }
    printf("\ntrain MFLOPs: millions of floating-point operations per training sample (3x the forward pass)\n");
}

/* Every rank: a checkpoint, tried once more when the first try fails (the
 * failed temporary file is gone by then). Rank 0 says what happened; every
 * rank learns whether it was saved. Returns 0 or -1 on every rank. */
static int save_checkpoint(struct trainer *t, bool stopping)
{
    char err[DDT_ERRLEN];
    for (int attempt = 1;; attempt++) {
        double t0 = MPI_Wtime();
        int rc = train_ckpt_save(t, err, sizeof err);
        if (t->nranks > 1) {
            comm_guard_enter(engine_watch(&t->engine), "the broadcast of the checkpoint's outcome");
            MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
            comm_guard_leave(engine_watch(&t->engine));
        }
        if (rc == 0) {
            if (t->rank == 0)
                log_info("checkpoint %s (%.2f s)%s", t->last_ckpt, MPI_Wtime() - t0,
                         stopping ? "; stopping as asked" : "");
            return 0;
        }
        if (t->rank == 0 && attempt == 1)
            log_warn("checkpoint at step %ld failed: %s; trying once more", (long)t->step, err);
        if (attempt == 1)
            continue;
        if (t->rank == 0)
            log_error("checkpoint at step %ld failed again: %s; stopping with exit status %d: the state after step %ld is not saved (newest checkpoint of this session: %s); make room or repair the run directory, then continue with --resume auto",
                      (long)t->step, err, DDT_EXIT_CKPT_FAILED, (long)t->step,
                      t->last_ckpt[0] ? t->last_ckpt : "none");
        return -1;
    }
}

/* The best checkpoint, on every rank (a sharded optimizer's state and local
 * SGD's replicas are gathered); a failure ends the run as a failed
 * checkpoint does. After a lost metrics line no rank saves (after_step and
 * the next plan stop the run): only rank 0 knows of it, so it says. */
static int save_best(struct trainer *t)
{
    char err[DDT_ERRLEN];
    int go = !t->metrics.failed;
    if (t->nranks > 1) {
        comm_guard_enter(engine_watch(&t->engine), "the broadcast of whether to save the best checkpoint");
        MPI_Bcast(&go, 1, MPI_INT, 0, MPI_COMM_WORLD);
        comm_guard_leave(engine_watch(&t->engine));
    }
    int rc = go ? train_ckpt_save_as(t, true, err, sizeof err) : 0;
    if (t->nranks > 1) {
        comm_guard_enter(engine_watch(&t->engine), "the broadcast of the best checkpoint's outcome");
        MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
        comm_guard_leave(engine_watch(&t->engine));
    }
    if (rc && t->rank == 0)
        log_error("best checkpoint at step %ld failed: %s; stopping with exit status %d",
                  (long)t->step, err, DDT_EXIT_CKPT_FAILED);
    return rc;
}

/* Rank 0: has metrics.jsonl lost a line? Said once, at the step it failed
 * (the run stops before the next one). */
static bool metrics_lost(const struct trainer *t)
{
    if (t->rank != 0 || !t->metrics.failed)
        return false;
    char err[4400];
    metrics_error(&t->metrics, err, sizeof err);
    log_error("%s; stopping after step %ld with exit status %d and no further checkpoint, so that a run resumed from the last one (--resume auto) writes the lost lines again",
              err, (long)t->step, DDT_EXIT_CKPT_FAILED);
    return true;
}

/* Decides after a step whether to checkpoint and whether to stop. Returns -1
 * to go on, else the exit status (*stop: stopping on request). */
static int after_step(struct trainer *t, const struct step_plan *p, const struct step_result *r,
                      bool *stop)
{
    bool want_stop = r->requests[REQUEST_STOP] > 0;
    bool want = want_stop || r->requests[REQUEST_CKPT] > 0 || (p->flags & PLAN_CKPT) ||
                (t->early_stopped && t->cfg.ckpt_at_end);
    *stop = want_stop;
    /* a checkpoint past the lost lines would make a resumed run skip them */
    int go = !metrics_lost(t);
    if (!want)
        return -1;
    /* every rank takes part: a sharded optimizer's state is gathered first */
    if (t->nranks > 1) {
        comm_guard_enter(engine_watch(&t->engine), "the broadcast of whether to checkpoint");
        MPI_Bcast(&go, 1, MPI_INT, 0, MPI_COMM_WORLD);
        comm_guard_leave(engine_watch(&t->engine));
    }
    if (!go || save_checkpoint(t, want_stop))
        return DDT_EXIT_CKPT_FAILED;
    return want_stop ? DDT_EXIT_OK : -1;
}

/* RUN/finished says that training ran to its end (not stopped on request)
 * and, with --ckpt-at-end, that its final checkpoint is on disk: what sweeps
 * look for. Returns 0 or -1 (said why). */
static int mark_finished(const struct trainer *t)
{
    char path[4200], text[64], err[512];
    snprintf(path, sizeof path, "%s/finished", t->cfg.run_dir);
    int len = snprintf(text, sizeof text, "step %ld\n", (long)t->step);
    if (fs_write_atomic(path, text, (size_t)len, err, sizeof err) == 0)
        return 0;
    log_error("%s; exit status %d: the run ended but cannot say so", err, DDT_EXIT_CKPT_FAILED);
    return -1;
}

static void publish_status(struct trainer *t, const struct step_plan *p)
{
    struct control_status s;
    memset(&s, 0, sizeof s);
    s.step = (unsigned long)t->step;
    s.epoch = (unsigned long)t->epoch;
    s.global_batch = (unsigned long)p->global_batch;
    s.lr = p->lr;
    s.recent_loss = t->recent_loss;
    s.samples_per_sec = t->recent_sps;
    double elapsed = MPI_Wtime() - t->t_start;
    long done = (long)t->step - t->first_step;
    s.eta_seconds = done > 0 ? elapsed / (double)done * (double)(t->total_steps - t->step) : NAN;
    snprintf(s.last_checkpoint, sizeof s.last_checkpoint, "%s", t->last_ckpt);
    control_publish(&t->ctl, &s);
}

/* The options, the resumed run's configuration, the model spec and the
 * schedule. Returns 0, 1 after --help, or 2 (rank 0 has said why). */
static int parse_options(struct trainer *t, int argc, char **argv, int first, struct spec *s,
                         Ddtrain__Checkpoint **resume)
{
    char err[2 * DDT_ERRLEN];
    char *pos[1];
    int npos;
    train_config_defaults(&t->cfg);
    int rc = config_parse_args(train_options, &t->cfg, argc, argv, first, pos, 0, &npos, err, sizeof err);
    if (rc == 1) {
        if (t->rank == 0)
            print_usage();
        return 1;
    }
    if (rc == 0 && !strcmp(t->cfg.model, "list")) {
        if (t->rank == 0)
            print_models();
        return 1;
    }
    if (rc == 0 && t->cfg.resume[0] &&
        train_resolve_resume(t, argc, argv, first, resume, err, sizeof err))
        rc = -1;
    if (rc == 0 && !*resume && train_model_from_init(t, argc, argv, first, err, sizeof err))
        rc = -1;
    char spec_err[256];
    /* a named model is resolved here for Fashion-MNIST's samples, which
     * checks the name early; train_setup resolves it again for the data */
    int classes = t->cfg.classes > 1 ? t->cfg.classes : MODELS_DEFAULT_CLASSES;
    if (rc == 0 && models_parse(s, t->cfg.model, MODELS_DEFAULT_SHAPE, classes, t->cfg.bn,
                                (float)t->cfg.dropout, spec_err, sizeof spec_err) != 0) {
        snprintf(err, sizeof err, "--model: '%s': %s", t->cfg.model, spec_err);
        rc = -1;
    }
    if (rc == 0 && t->cfg.reset_head && !t->cfg.init_from[0]) {
        snprintf(err, sizeof err, "--reset-head: only makes sense with --init-from CKPT");
        rc = -1;
    }
    if (rc == 0 && train_build_schedule(t, err, sizeof err))
        rc = -1;
    if (rc == 0 && train_check_optimizer(t, argc, argv, first, err, sizeof err))
        rc = -1;
    if (rc == 0 && local_sgd_check_options(&t->cfg, argc, argv, first, err, sizeof err))
        rc = -1;
    if (rc != 0) {
        if (t->rank == 0)
            fprintf(stderr, "ddtrain train: %s\n", err);
        ckpt_free(*resume);
        *resume = NULL;
        return 2;
    }
    return 0;
}

/* Data, engine, restored state, then the run directory on rank 0; every
 * rank learns whether all succeeded. Returns 0 or the exit status. */
static int start_run(struct trainer *t, struct spec *s, Ddtrain__Checkpoint *resume)
{
    char err[2 * DDT_ERRLEN];
    int status = train_setup(t, s, resume, err, sizeof err);
    bool resuming = resume != NULL;
    ckpt_free(resume);
    if (agree_status(t, status) != 0) {
        report_setup_error(t, status, err);
        return status ? status : 2;
    }
    status = t->rank == 0 && train_open_run_dir(t, resuming, err, sizeof err) ? 2 : 0;
    if (agree_status(t, status) != 0) {
        if (status)
            log_error("%s", err);
        return 2;
    }
    if (t->rank == 0) {
        const struct model *m = engine_model(&t->engine);
        char spec_text[1024];
        spec_format(&m->spec, spec_text, sizeof spec_text);
        progress_init(&t->progress);
        log_info("training %s (%zu parameters) on %zu samples, %d rank%s, %ld steps",
                 spec_text, model_param_count(m), t->train.n, t->nranks,
                 t->nranks == 1 ? "" : "s", t->total_steps);
        train_log_accumulate(t);
        train_warn_small_slices(t);
        if (t->val.view)
            log_info("validation: %zu samples held out of the training set (--val-fraction %g, drawn from --seed)",
                     t->val.n, t->cfg.val_fraction);
        else if (t->val.n > 0)
            log_info("validation: %zu samples of %s (--val-data)", t->val.n, t->cfg.val_data);
        if (t->cfg.test_data[0])
            log_info("test: %zu samples of %s (--test-data)", t->test.n, t->cfg.test_data);
        if ((t->cfg.early_stop > 0 || t->cfg.keep_best) && t->val.n == 0)
            log_warn("--early-stop/--keep-best without a validation set watch the test set, which then no longer measures generalisation: hold out one with --val-fraction or give --val-data");
    }
    return 0;
}

/* After a step every rank takes: divergence, the replica check, evaluation,
 * a checkpoint. Returns -1 to go on, else the exit status (*stopped: on
 * request or divergence rather than at the end). */
static int after_train_step(struct trainer *t, const struct step_plan *p,
                            const struct step_result *r, bool *stopped)
{
    bool diverged = !isfinite(r->loss_sum);
    if ((p->flags & PLAN_LOG || diverged) && t->rank == 0)
        log_step(t, p);
    if (diverged && t->cfg.stop_on_divergence) {
        /* every rank sees the same summed loss, so all stop together */
        if (t->rank == 0)
            log_error("step %ld: the loss is %g: the run diverged; stopping (--no-stop-on-divergence goes on)",
                      (long)t->step, r->loss_sum);
        *stopped = true;
        return 3;
    }
    if (p->flags & PLAN_CHECK) {
        unsigned long long h;
        if (!engine_replicas_agree(&t->engine, &h)) {
            log_error("step %ld: the parameters differ between ranks (this rank's checksum %016llx); stopping",
                      (long)t->step, h);
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
    }
    if ((p->flags & PLAN_EVAL) && track_best(t, run_eval(t, p)) && save_best(t))
        return DDT_EXIT_CKPT_FAILED;
    bool stop;
    int status = after_step(t, p, r, &stop);
    if (t->rank == 0)
        publish_status(t, p);
    if (status >= 0) {
        *stopped = true;
        return status;
    }
    return -1;
}

/* The plan from rank 0 to every rank, under the watchdog: a rank waits here
 * while rank 0 logs and writes checkpoints, and for a rank 0 that stalled. */
static void broadcast_plan(struct trainer *t, struct step_plan *p)
{
    MPI_Request req;
    MPI_Ibcast(p, (int)sizeof *p, MPI_BYTE, 0, MPI_COMM_WORLD, &req);
    engine_wait(&t->engine, &req, t->rank == 0 ? -1 : 0, (int64_t)t->step + 1,
                "the broadcast of the next step's plan");
}

/* Plan, broadcast, step, and what follows, until the plan says stop.
 * Returns the exit status. */
static int train_loop(struct trainer *t, bool *stopped)
{
    t->t_start = t->log_time = MPI_Wtime();
    t->first_step = (long)t->step;
    if (t->rank == 0) {
        /* what status says before the first step ends */
        struct step_plan now = { .global_batch = sched_batch_at(&t->cfg.sched, (double)t->epoch),
                                   .lr = sched_lr_at(&t->cfg.sched, (double)t->epoch, (long)t->step) };
        t->recent_loss = NAN;
        t->plan_batch = now.global_batch;
        publish_status(t, &now);
    }
    *stopped = false;
    for (;;) {
        struct step_plan p;
        if (t->rank == 0)
            plan_next(t, &p);
        if (t->nranks > 1)
            broadcast_plan(t, &p);
        if (p.flags & PLAN_STOP) {
            *stopped = (p.flags & PLAN_FAILED) != 0;
            return *stopped ? DDT_EXIT_CKPT_FAILED : DDT_EXIT_OK;
        }
        struct step_result r;
        train_step(t, &p, &r);
        /* every rank keeps the counters, from the plan */
        t->step = p.step + 1;
        t->epoch = p.epoch;
        t->batch_in_epoch = p.batch_in_epoch + 1;
        adaptive_after_step(t, &p);
        int status = after_train_step(t, &p, &r, stopped);
        if (status >= 0)
            return status;
    }
}

int train_main(int argc, char **argv, int first)
{
    static struct trainer tr;
    struct trainer *t = &tr;
    memset(t, 0, sizeof *t);
    MPI_Comm_rank(MPI_COMM_WORLD, &t->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &t->nranks);
    t->rss_baseline = (double)mem_current_rss();
    log_set_identity(t->rank, t->rank == 0 ? "coord" : "worker");

    struct spec s;
    Ddtrain__Checkpoint *resume = NULL;
    int rc = parse_options(t, argc, argv, first, &s, &resume);
    if (rc)
        return rc == 1 ? 0 : rc;
    openblas_set_num_threads(t->cfg.threads);
    signals_install();
    int status = start_run(t, &s, resume);
    if (status) {
        trainer_free(t);
        return status;
    }
    if (t->rank == 0)
        signals_announce_ready();
    bool stopped;
    int exit_status = train_loop(t, &stopped);
    if (t->rank == 0 && !stopped && mark_finished(t))
        exit_status = DDT_EXIT_CKPT_FAILED;
    report_memory(t);
    if (t->rank == 0)
        local_sgd_report(t);
    if (t->rank == 0) {
        double total = MPI_Wtime() - t->t_start;
        char dur[32];
        progress_format_duration(total, dur, sizeof dur);
        log_info("done: step %ld after %s; waiting on communication %.1f%% of the time",
                 (long)t->step, dur, total > 0 ? 100.0 * t->wait_time / total : 0.0);
    }
    trainer_free(t);
    return exit_status;
}
