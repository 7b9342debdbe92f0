/* Local and post-local SGD on the coordinator's side: the plan's flags, the
 * options, the report, the averaged model for evaluations and checkpoints. */
#include "local_sgd.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "average.h"
#include "log.h"
#include "trainer.h"

bool local_sgd_in_phase(const struct train_config *c, int64_t epoch)
{
    return c->local_steps > 0 && epoch >= c->local_steps_after;
}

/* After `done` steps of an epoch of spe: is a period over? */
static bool period_over(const struct train_config *c, int64_t done, long spe)
{
    return done % c->local_steps == 0 || done >= spe;
}

bool local_sgd_apart(const struct trainer *t)
{
    if (!local_sgd_in_phase(&t->cfg, t->epoch) || t->nranks == 1)
        return false;
    return !period_over(&t->cfg, t->batch_in_epoch, train_steps_in_epoch(t, t->epoch));
}

int local_sgd_check_options(const struct train_config *c, int argc, char **argv, int first,
                            char *err, size_t errlen)
{
    if (c->local_steps == 0) {
        if (c->local_steps_after > 0) {
            snprintf(err, errlen, "--local-steps-after: %d epochs of data-parallel SGD before what? it needs --local-steps H (H >= 1)",
                     c->local_steps_after);
            return -1;
        }
        if (c->local_average_optimizer) {
            snprintf(err, errlen, "--local-average-optimizer: only with --local-steps H (H >= 1), which is 0 (off)");
            return -1;
        }
        return 0;
    }
    /* sharding is on by default, and local SGD turns it off; only an asked
     * one (command line or --config file) is refused */
    if (c->shard_optimizer && train_option_given(argc, argv, first, "shard-optimizer")) {
        snprintf(err, errlen, "--shard-optimizer: not with --local-steps %d: local SGD keeps every rank's own parameters and optimizer state whole, so the optimizer cannot be sharded; drop --shard-optimizer (local SGD replicates it)",
                 c->local_steps);
        return -1;
    }
    if (c->local_steps_after >= c->sched.epochs) {
        snprintf(err, errlen, "--local-steps-after: %d is not below --epochs %d: the run would never take a local step; give fewer epochs of data-parallel SGD or drop --local-steps",
                 c->local_steps_after, c->sched.epochs);
        return -1;
    }
    return 0;
}

/* Floats an average moves per rank, beside the n of a data-parallel step's
 * gradient. */
static double average_floats(const struct trainer *t)
{
    const struct model *m = engine_model_const(&t->engine);
    double opt = 0;
    if (t->cfg.local_average_optimizer)
        opt = (double)m->arena.n * (t->engine.opt.v ? 2.0 : 1.0);
    return (double)m->arena.n + (double)m->bn_running_n + opt;
}

static void log_start(const struct trainer *t)
{
    const struct train_config *c = &t->cfg;
    int B = sched_batch_at(&c->sched, (double)c->local_steps_after), H = c->local_steps;
    const struct model *m = engine_model_const(&t->engine);
    double share = average_floats(t) / ((double)H * (double)m->arena.n);
    char when[96] = "from the first step";
    if (c->local_steps_after > 0)
        snprintf(when, sizeof when, "after %d epoch%s of data-parallel SGD (post-local SGD)",
                 c->local_steps_after, c->local_steps_after == 1 ? "" : "s");
    log_info("local SGD %s: every rank takes %d step%s on its own %d of each global batch of %d, then the ranks average their parameters and batch-norm statistics%s (also at each epoch's end); effective batch %d x %d = %d samples per average; an average moves %.0f floats per rank where %d data-parallel steps would reduce %.0f gradient floats: %.1f%% of the communication",
             when, H, H == 1 ? "" : "s", B / t->nranks, B,
             c->local_average_optimizer ? " and optimizer state" : "", H, B, H * B,
             average_floats(t), H, (double)H * (double)m->arena.n, 100.0 * share);
    if (t->nranks == 1)
        log_warn("--local-steps with one rank: the average of one replica is itself, so this is plain SGD at batch %d", B);
    if (c->noise_scale)
        log_info("local SGD: the gradient noise scale is not measured in local steps: it needs the gradient summed over ranks, which local steps do not communicate%s",
                 c->local_steps_after > 0 ? " (it is, in the data-parallel epochs)" : "");
}

int local_sgd_init(struct trainer *t, char *err, size_t errlen)
{
    if (t->cfg.local_steps == 0)
        return 0;
    t->local.backup = arena_buffer(average_backup_floats(&t->engine));
    if (!t->local.backup) {
        snprintf(err, errlen, "out of memory for local SGD's copy of the model during evaluations");
        return -1;
    }
    if (t->rank == 0)
        log_start(t);
    return 0;
}

void local_sgd_free(struct trainer *t)
{
    free(t->local.backup);
    t->local.backup = NULL;
}

void local_sgd_plan(struct trainer *t, struct step_plan *p, long spe, bool *check)
{
    if (!local_sgd_in_phase(&t->cfg, p->epoch))
        return;
    p->flags |= PLAN_LOCAL;
    if (period_over(&t->cfg, p->batch_in_epoch + 1, spe))
        p->flags |= PLAN_AVERAGE;
    /* replicas apart in the middle of a period would fail the check */
    if (*check && !(p->flags & PLAN_AVERAGE)) {
        t->local.check_pending = true;
        *check = false;
    } else if ((p->flags & PLAN_AVERAGE) && t->local.check_pending) {
        t->local.check_pending = false;
        *check = true;
    }
}

double local_sgd_memory(const struct train_config *c, int nranks, bool rank0, size_t n,
                        size_t nb, int moments)
{
    if (c->local_steps == 0)
        return 0;
    /* as average_init and ckpt_alloc size them */
    size_t N = (size_t)nranks, most = n > nb ? n : nb, piece = (most + N - 1) / N;
    double floats = (double)(N * (piece ? piece : 1)) + (double)(n + nb);
    if (rank0)
        floats += (double)(N + 1) * ((double)n * (1.0 + moments) + (double)nb + 1);
    return floats * sizeof(float);
}

void local_sgd_count(struct trainer *t, const struct step_plan *p)
{
    if (p->flags & PLAN_LOCAL)
        t->local.steps++;
    if (p->flags & PLAN_AVERAGE)
        t->local.averages++;
}

void local_sgd_report(const struct trainer *t)
{
    if (t->cfg.local_steps == 0 || t->local.steps == 0)
        return;
    const struct model *m = engine_model_const(&t->engine);
    const double mib = 1024.0 * 1024.0 / sizeof(float);
    double sent = (double)t->local.averages * average_floats(t) / mib;
    double dp = (double)t->local.steps * (double)m->arena.n / mib;
    log_info("local SGD: %ld local steps, %ld averages (%.2f steps each): %.1f MiB averaged per rank where data-parallel steps would have reduced %.1f MiB of gradients (%.1f%% saved)",
             t->local.steps, t->local.averages,
             t->local.averages ? (double)t->local.steps / (double)t->local.averages : 0.0, sent,
             dp, dp > 0 ? 100.0 * (1.0 - sent / dp) : 0.0);
}

bool local_sgd_eval_begin(struct trainer *t)
{
    if (!local_sgd_apart(t))
        return false;
    average_replicas_save(&t->engine, t->local.backup);
    return true;
}

void local_sgd_eval_end(struct trainer *t, bool apart)
{
    if (apart)
        average_replicas_restore(&t->engine, t->local.backup);
}

void local_sgd_ckpt_free(struct local_ckpt *lc)
{
    free(lc->w);
    free(lc->bn);
    free(lc->m);
    free(lc->v);
    free(lc->avg_w);
    free(lc->avg_bn);
    free(lc->avg_m);
    free(lc->avg_v);
    memset(lc, 0, sizeof *lc);
}

/* Rank 0's room for nranks copies and the means; NULL arrays elsewhere. */
static bool ckpt_alloc(struct local_ckpt *lc, size_t N, size_t n, size_t nb, bool second)
{
    /* + 1: a model without batch norm still gets a buffer */
    lc->w = arena_buffer(N * n);
    lc->bn = arena_buffer(N * nb + 1);
    lc->m = arena_buffer(N * n);
    lc->v = second ? arena_buffer(N * n) : NULL;
    lc->avg_w = arena_buffer(n);
    lc->avg_bn = arena_buffer(nb + 1);
    lc->avg_m = arena_buffer(n);
    lc->avg_v = second ? arena_buffer(n) : NULL;
    return lc->w && lc->bn && lc->m && lc->avg_w && lc->avg_bn && lc->avg_m &&
           (!second || (lc->v && lc->avg_v));
}

/* Every rank's n floats at mine to rank 0's all (rank after rank), and
 * their mean (average_rows: the bits of the ranks' own average) to avg. */
static void gather_mean(struct trainer *t, const float *mine, size_t n, float *all, float *avg,
                        const float **src)
{
    if (t->nranks > 1) {
        comm_guard_enter(engine_watch(&t->engine), "the checkpoint's gather of local SGD's replicas");
        MPI_Gather(mine, (int)n, MPI_FLOAT, all, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
        comm_guard_leave(engine_watch(&t->engine));
    } else {
        memcpy(all, mine, n * sizeof *all);
    }
    if (t->rank != 0)
        return;
    for (int r = 0; r < t->nranks; r++)
        src[r] = all + (size_t)r * n;
    average_rows(avg, src, t->nranks, n);
}

int local_sgd_ckpt_gather(struct trainer *t, struct local_ckpt *lc)
{
    memset(lc, 0, sizeof *lc);
    if (!local_sgd_in_phase(&t->cfg, t->epoch))
        return 0;
    struct model *m = engine_model(&t->engine);
    const float *om, *ov;
    float *m_all, *v_all;
    /* local SGD never shards: these are the rank's own arrays, nothing gathered */
    if (engine_gather_optimizer_state(&t->engine, &om, &ov, &m_all, &v_all))
        return -1;
    size_t N = (size_t)t->nranks, n = m->arena.n, nb = m->bn_running_n;
    const float **src = calloc(N, sizeof *src);
    int ok = src != NULL;
    if (t->rank == 0 && ok)
        ok = ckpt_alloc(lc, N, n, nb, ov != NULL);
    if (t->nranks > 1) {
        comm_guard_enter(engine_watch(&t->engine), "the broadcast of rank 0's room for local SGD's replicas");
        MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        comm_guard_leave(engine_watch(&t->engine));
    }
    if (!ok) {
        free(src);
        local_sgd_ckpt_free(lc);
        return -1;
    }
    lc->on = true;
    gather_mean(t, m->arena.w, n, lc->w, lc->avg_w, src);
    gather_mean(t, m->bn_running, nb, lc->bn, lc->avg_bn, src);
    gather_mean(t, om, n, lc->m, lc->avg_m, src);
    if (ov)
        gather_mean(t, ov, n, lc->v, lc->avg_v, src);
    free(src);
    return 0;
}

int local_sgd_restore_view(const struct trainer *t, const Ddtrain__Checkpoint *msg,
                           Ddtrain__Checkpoint *view, char *err, size_t errlen)
{
    *view = *msg;
    uint32_t N = msg->nranks;
    if (msg->n_rank_states != N) {
        snprintf(err, errlen, "rank_states: %zu rank states in a checkpoint written by %u rank%s (one per rank expected)",
                 msg->n_rank_states, N, N == 1 ? "" : "s");
        return -1;
    }
    for (uint32_t r = 0; r < N; r++)
        if (!msg->rank_states[r] || msg->rank_states[r]->rank != r) {
            snprintf(err, errlen, "rank_states[%u]: holds rank %u, expected %u (in rank order)", r,
                     msg->rank_states[r] ? msg->rank_states[r]->rank : 0, r);
            return -1;
        }
    if (N == (uint32_t)t->nranks) {
        const Ddtrain__RankState *rs = msg->rank_states[t->rank];
        view->n_params = rs->n_params;
        view->params = rs->params;
        view->n_bn_running = rs->n_bn_running;
        view->bn_running = rs->bn_running;
        view->n_optimizer = rs->n_optimizer;
        view->optimizer = rs->optimizer;
        return 0;
    }
    const Ddtrain__ScheduleState *st = msg->schedule;
    int64_t epoch = (int64_t)st->epoch, done = (int64_t)st->batch_in_epoch;
    if (local_sgd_in_phase(&t->cfg, epoch) && !period_over(&t->cfg, done, train_steps_in_epoch(t, epoch))) {
        snprintf(err, errlen, "the checkpoint was written by %u rank%s in the middle of a local SGD period (epoch %lld, step %lld of it, --local-steps %d), where every rank's model is its own: continue it on %u rank%s, or resume on %d from a checkpoint at the end of a period (every %d steps of an epoch, and its end)",
                 N, N == 1 ? "" : "s", (long long)epoch, (long long)done, t->cfg.local_steps, N,
                 N == 1 ? "" : "s", t->nranks, t->cfg.local_steps);
        return -1;
    }
    if (t->rank == 0)
        log_warn("--resume: local SGD state of %u rank%s on %d: every rank starts from the checkpoint's means (the parameters and batch-norm statistics agree at the end of a period; the optimizer states are averaged)",
                 N, N == 1 ? "" : "s", t->nranks);
    return 0;
}
