/* Loss and gradient of a checkpoint's model over a fixed subset of its data. */
#include "probe.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evaluate.h"
#include "sampler.h"

enum { PROBE_BATCH = 512 };

int probe_open(struct probe *p, const char *ckpt, size_t samples, uint64_t seed, MPI_Comm comm,
               char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->comm = comm;
    p->seed = seed;
    MPI_Comm_rank(comm, &p->rank);
    MPI_Comm_size(comm, &p->nranks);
    if (ckpt_model_open(&p->cm, ckpt, NULL, NULL, PROBE_BATCH, err, errlen))
        return -1;
    size_t ntrain = p->cm.train.n;
    p->nsubset = samples && samples < ntrain ? samples : ntrain;
    p->subset = malloc(ntrain * sizeof *p->subset);
    p->n = p->cm.model.arena.n;
    p->x0 = malloc(p->n * sizeof *p->x0);
    if (!p->subset || !p->x0) {
        snprintf(err, errlen, "out of memory");
        probe_close(p);
        return -1;
    }
    /* a seeded subset: the first samples of a permutation keyed by the seed,
     * from the subset stream (not a training epoch's order) */
    if (p->nsubset < ntrain)
        sampler_subset(p->subset, ntrain, seed, 0);
    else
        for (size_t i = 0; i < ntrain; i++)
            p->subset[i] = (uint32_t)i;
    memcpy(p->x0, p->cm.model.arena.w, p->n * sizeof *p->x0);
    return 0;
}

void probe_close(struct probe *p)
{
    ckpt_model_free(&p->cm);
    free(p->subset);
    free(p->perm);
    free(p->recal_sums);
    free(p->x0);
    memset(p, 0, sizeof *p);
}

/* Loss and correct-count sums over this rank's share of the subset, and
 * with grad (n floats) the gradient sum too. */
static void pass(struct probe *p, double sums[2], float *grad)
{
    struct model *m = &p->cm.model;
    size_t lo = p->nsubset * (size_t)p->rank / (size_t)p->nranks;
    size_t hi = p->nsubset * (size_t)(p->rank + 1) / (size_t)p->nranks;
    struct pass_ctx ctx = { .train = false };
    sums[0] = sums[1] = 0;
    if (grad)
        memset(grad, 0, p->n * sizeof *grad);
    for (size_t i = lo; i < hi; i += PROBE_BATCH) {
        int B = (int)(hi - i < PROBE_BATCH ? hi - i : PROBE_BATCH);
        int correct;
        sums[0] += model_batch_loss(m, &p->cm.train, p->subset + i, B, &ctx, &correct);
        sums[1] += correct;
        if (grad) {
            model_backward(m, m->labels, B, NULL, NULL);
            for (size_t k = 0; k < p->n; k++)
                grad[k] += m->arena.g[k];
        }
    }
}

static void set_params(struct probe *p, const float *w)
{
    if (w)
        memcpy(p->cm.model.arena.w, w, p->n * sizeof *w);
}

int probe_bn_prepare(struct probe *p, size_t n, char *err, size_t errlen)
{
    size_t ntrain = p->cm.train.n, nb = p->cm.model.bn_running_n;
    p->nrecal = 0;
    if (n == 0 || nb == 0)
        return 0;
    p->recal = p->subset;
    if (p->nsubset == ntrain) {
        /* the subset is the set in order: draw the same seeded order a
         * smaller subset would have */
        p->perm = malloc(ntrain * sizeof *p->perm);
        if (p->perm)
            sampler_subset(p->perm, ntrain, p->seed, 0);
        p->recal = p->perm;
    }
    p->recal_sums = malloc((nb + 1) * sizeof *p->recal_sums);
    if (!p->recal || !p->recal_sums) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->nrecal = n < p->nsubset ? n : p->nsubset;
    return 0;
}

bool probe_bn_recalibrate(struct probe *p, const float *w)
{
    set_params(p, w);
    if (p->nrecal == 0)
        return false;
    struct model *m = &p->cm.model;
    size_t nb = m->bn_running_n;
    double *sums = p->recal_sums;
    memset(sums, 0, (nb + 1) * sizeof *sums);
    /* chunks dealt in turn, so that each chunk's groups are the same
     * whatever the rank count; only the order of the final sum changes */
    for (size_t c = (size_t)p->rank; c * PROBE_BATCH < p->nrecal; c += (size_t)p->nranks) {
        size_t first = c * PROBE_BATCH;
        int B = (int)(p->nrecal - first < PROBE_BATCH ? p->nrecal - first : PROBE_BATCH);
        struct pass_ctx ctx = { .train = true, .seed = p->seed, .step = 0, .first_sample = first };
        int correct;
        model_batch_loss(m, &p->cm.train, p->recal + first, B, &ctx, &correct);
        /* bn_batch holds sums over the chunk's groups, then the group count */
        for (size_t i = 0; i <= nb; i++)
            sums[i] += m->bn_batch[i];
    }
    MPI_Allreduce(MPI_IN_PLACE, sums, (int)(nb + 1), MPI_DOUBLE, MPI_SUM, p->comm);
    for (size_t i = 0; i < nb; i++)
        m->bn_running[i] = (float)(sums[i] / sums[nb]);
    return true;
}

double probe_loss(struct probe *p, const float *w, double *acc)
{
    set_params(p, w);
    double sums[2];
    pass(p, sums, NULL);
    MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, p->comm);
    if (acc)
        *acc = sums[1] / (double)p->nsubset;
    return sums[0] / (double)p->nsubset;
}

double probe_test_loss(struct probe *p, const float *w, size_t ntest, double *acc)
{
    set_params(p, w);
    double loss, a;
    if (ntest == 0 || ntest > p->cm.test.n)
        ntest = p->cm.test.n;
    evaluate_split(&p->cm.model, &p->cm.test, ntest, p->comm, &loss, &a);
    if (acc)
        *acc = a;
    return loss;
}

double probe_loss_grad(struct probe *p, const float *w, float *grad)
{
    set_params(p, w);
    double sums[2];
    pass(p, sums, grad);
    MPI_Allreduce(MPI_IN_PLACE, grad, (int)p->n, MPI_FLOAT, MPI_SUM, p->comm);
    MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, p->comm);
    float inv = 1.0f / (float)p->nsubset;
    for (size_t k = 0; k < p->n; k++)
        grad[k] *= inv;
    return sums[0] / (double)p->nsubset;
}

int probe_parse_range(const char *text, double *lo, double *hi, int *count)
{
    char *end;
    errno = 0;
    *lo = strtod(text, &end);
    if (end == text || errno)
        return -1;
    if (!*end) {
        *hi = *lo;
        *count = 1;
        return 1;
    }
    if (*end != ':')
        return -1;
    const char *p = end + 1;
    *hi = strtod(p, &end);
    if (end == p || *end != ':' || errno || !(*hi > *lo))
        return -1;
    p = end + 1;
    long n = strtol(p, &end, 10);
    if (end == p || *end || errno || n < 2 || n > 100000)
        return -1;
    *count = (int)n;
    return *count;
}
