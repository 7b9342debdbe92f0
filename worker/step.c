/* One training step: slice, forward, loss, backward with bucket launches,
 * reduction, running statistics, optimizer, parameter exchange, and the
 * norms of the gradient noise scale. */
#include "step.h"

#include "sampler.h"

/* This rank's rows of the plan's global batch, from the epoch's permutation
 * (made once per epoch). */
static const uint32_t *step_slice(struct engine *e, const struct step_input *in, int *first,
                                  int *count)
{
    if (e->perm_epoch != in->epoch) {
        sampler_permutation(e->perm, e->train->n, in->seed, (uint64_t)in->epoch);
        e->perm_epoch = in->epoch;
    }
    int B = in->global_batch;
    sampler_slice(B, e->rank, e->nranks, first, count);
    return e->perm + (size_t)in->batch_in_epoch * (size_t)B + (size_t)*first;
}

/* The noise scale from the per-rank (small batch) and global (big batch)
 * norms; with one rank, from the two halves of its batch, or from its
 * micro-batches (parts_sq: the sum of their gradients' squared norms) when
 * it accumulates them. */
static void step_noise_norms(struct engine *e, int B, int count, bool measure, int parts,
                             double parts_sq, struct step_result *out)
{
    const double *st = e->comm.stats;
    const struct model *m = &e->model;
    double g2_big = measure ? comm_summed_grad_sq(&e->comm) / ((double)B * (double)B) : 0;
    out->measured = measure;
    out->has_small = false;
    out->b_big = (double)B;
    out->g2_big = g2_big;
    out->b_small = out->g2_small = 0;
    if (measure && e->nranks > 1) {
        out->has_small = true;
        out->b_small = (double)B / e->nranks;
        out->g2_small = st[STAT_GRAD_SQ_OVER_B] / e->nranks;
    } else if (m->measure_halves && parts > 1) {
        double b = (double)count / parts;
        out->has_small = true;
        out->b_small = b;
        out->g2_small = parts_sq / parts / (b * b);
    } else if (m->measure_halves) {
        double b1 = (double)(count / 2), b2 = (double)(count - count / 2);
        out->has_small = true;
        out->b_small = (double)count / 2.0;
        out->g2_small = (m->half_sq[0] / (b1 * b1) + m->half_sq[1] / (b2 * b2)) / 2.0;
    }
}

/* A local step's statistics (loss, counts, requests) summed over ranks: a
 * blocking allreduce, the same order every step, under the watchdog. */
static void step_sum_stats(struct engine *e)
{
    struct grad_comm *c = &e->comm;
    c->wait_seconds = 0;
    if (e->nranks == 1)
        return;
    double t0 = MPI_Wtime();
    comm_guard_enter(&c->watch, "the allreduce of a local step's statistics");
    MPI_Allreduce(MPI_IN_PLACE, c->stats, STAT_N, MPI_DOUBLE, MPI_SUM, c->comm);
    comm_guard_leave(&c->watch);
    c->wait_seconds = MPI_Wtime() - t0;
}

/* Forward and backward of this rank's slice idx[0..count) (rows from
 * `first` of the global batch) in e->accumulate micro-batches, one after the
 * other through the same activation buffers: the first overwrites the
 * gradients, the others add to them, and only the last one's backward
 * starts the reduction of each bucket. Batch norm's groups are each
 * micro-batch's (or ghost groups inside it), so with whole ghost groups this
 * is one pass over the slice, bit for bit (layer_fc.c says why). Returns
 * the loss sum and *correct over the slice; *parts_sq: the micro-batches'
 * squared gradient norms, summed, when one rank measures the noise scale;
 * phase: the seconds spent forward and backward (reductions included). */
static double step_micro_batches(struct engine *e, const struct step_input *in,
                                 const uint32_t *idx, int first, int count, bool measure,
                                 double *parts_sq, int *correct, double phase[2])
{
    struct model *m = &e->model;
    struct grad_comm *c = &e->comm;
    int parts = e->accumulate > 1 ? e->accumulate : 1;
    /* keyed by the epoch and each sample's row: the same image at any rank count */
    struct augment_pass aug = { .how = e->augment, .seed = in->seed,
                                .epoch = (uint64_t)in->epoch };
    double loss = 0;
    *correct = 0;
    phase[0] = phase[1] = 0;
    for (int k = 0; k < parts; k++) {
        double t0 = MPI_Wtime();
        /* equal parts (train_setup checks that K divides every slice) */
        int lo, n, right;
        sampler_slice(count, k, parts, &lo, &n);
        struct pass_ctx ctx = { .train = true, .seed = in->seed, .step = (uint64_t)in->step,
                                .first_sample = (uint64_t)(first + lo), .part = k,
                                .parts = parts };
        loss += model_batch_loss_augmented(m, e->train, idx + lo, n, &ctx, &aug, &right);
        *correct += right;
        double t1 = MPI_Wtime();
        if (k == 0 && !in->local)
            comm_begin(c, measure && e->nranks > 1);
        m->accumulate = k > 0;
        /* one rank's noise scale: its halves, or its micro-batches */
        m->measure_halves = measure && e->nranks == 1 && (parts > 1 || n >= 2);
        m->measure_whole = parts > 1;
        bool last = k == parts - 1;
        bool reduce = last && !in->local;
        model_backward(m, m->labels, n, reduce ? comm_grad_ready : NULL, reduce ? c : NULL);
        *parts_sq += m->half_sq[0];
        phase[0] += t1 - t0;
        phase[1] += MPI_Wtime() - t1;
    }
    m->accumulate = false;
    return loss;
}

void step_run(struct engine *e, const struct step_input *in, struct step_result *out)
{
    struct model *m = &e->model;
    struct grad_comm *c = &e->comm;
    /* the watchdog's deadline follows the recent step times */
    double t0 = MPI_Wtime();
    c->watch.step = in->step + 1;
    int B = in->global_batch, first, count;
    const uint32_t *idx = step_slice(e, in, &first, &count);

    /* the noise scale needs two extra reads of the gradients: not every
     * step; a local step has no summed gradient to measure it against */
    bool measure = in->measure_noise && !in->local;
    double parts_sq = 0;
    int correct;
    double phase[2];
    double loss = step_micro_batches(e, in, idx, first, count, measure, &parts_sq, &correct,
                                     phase);
    double t2 = MPI_Wtime(), reduced_in_backward = in->local ? 0 : c->reduce_seconds;
    c->stats[STAT_LOSS] = loss;
    c->stats[STAT_CORRECT] = correct;
    c->stats[STAT_COUNT] = count;
    /* a request seen by any rank reaches every rank */
    for (int k = 0; k < STEP_REQUESTS; k++)
        c->stats[STAT_REQUEST + k] = in->requests[k];
    if (in->local)
        step_sum_stats(e);
    else
        comm_finish(c);
    double t3 = MPI_Wtime(), reduced = in->local ? 0 : c->reduce_seconds;
    model_update_running(m);
    double t4 = MPI_Wtime();
    /* the norm of the summed gradient is the same on every rank (sharded:
     * the shards' sums are allreduced), so every replica clips alike; a
     * local step (never sharded) clips its own rank's mean gradient */
    int scale_by = in->local ? count : B;
    float grad_scale = in->clip_norm > 0
                           ? optim_clip_grad_scale(comm_summed_grad_sq(c), scale_by, in->clip_norm)
                           : 1.0f / (float)scale_by;
    optim_step(&e->opt, &m->arena, (float)in->lr, (float)in->momentum, grad_scale);
    double t5 = MPI_Wtime();
    if (!in->local) {
        comm_gather_params(c);
    } else if (in->average) {
        double ta = MPI_Wtime();
        average_replicas(e, in->average_optimizer);
        c->wait_seconds += MPI_Wtime() - ta;
    }

    double t6 = MPI_Wtime();
    step_noise_norms(e, B, count, measure, e->accumulate, parts_sq, out);
    out->loss_sum = c->stats[STAT_LOSS];
    out->correct = c->stats[STAT_CORRECT];
    out->count = c->stats[STAT_COUNT];
    for (int k = 0; k < STEP_REQUESTS; k++)
        out->requests[k] = (int)c->stats[STAT_REQUEST + k];
    out->wait_seconds = c->wait_seconds;
    double t7 = MPI_Wtime();
    out->seconds[STEP_T_FORWARD] = t2 - t0 - phase[1]; /* the slice, data and forward */
    out->seconds[STEP_T_BACKWARD] = phase[1] - reduced_in_backward;
    out->seconds[STEP_T_REDUCE] = reduced;
    out->seconds[STEP_T_OPTIM] = t5 - t4;
    out->seconds[STEP_T_WAIT] = t3 - t2 - (reduced - reduced_in_backward) + t6 - t5;
    out->seconds[STEP_T_OTHER] = t4 - t3 + t7 - t6;
    comm_watch_step_time(&c->watch, t7 - t0);
}
