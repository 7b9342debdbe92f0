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
    MPI_Comm_rank(comm, &p->rank);
    MPI_Comm_size(comm, &p->nranks);
    if (ckpt_model_open(&p->cm, ckpt, NULL, PROBE_BATCH, err, errlen))
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
