/* `ddtrain sharpness CKPT --eps E [--subspace P]`: Keskar et al.'s (2016)
 * sharpness, metric 2.1: the largest increase of the loss f over the box
 * C_eps = { y : |y_i| <= eps (|(A+ x)_i| + 1) } around the parameters x,
 *     100 (max_{y in C_eps} f(x + A y) - f(x)) / (1 + f(x)),
 * with A the identity or a seeded n x P random matrix.
 *
 * The maximisation is projected sign-gradient ascent with step control: from
 * y = 0, step to clip(y + a b sign(grad_y f)) with b the box half-widths and a
 * a step fraction (starting at 1, the corner that maximises the linear model
 * of f); a step that raises f is kept and a grows by half, otherwise a halves.
 * At least 10 iterations (default 20); each costs one gradient and one loss
 * evaluation over the samples, split across ranks.
 *
 * A's entries are N(0, 1/n), regenerated from the seed on each use (n P
 * floats would not fit); its columns are then orthonormal up to O(sqrt(P/n)),
 * so A+ is taken as A^T. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "ascent.h"
#include "commands.h"
#include "exit_status.h"
#include "probe.h"
#include "rng.h"
#include "table.h"

struct sharpness_config {
    struct analysis_common common;
    double eps;
    int subspace;
    int iters;
};

const struct option_def sharpness_options[] = {
    { "eps", OPT_DOUBLE, offsetof(struct sharpness_config, eps), 0, 1, "1e-3", NULL,
      OPTF_POSITIVE, "box size epsilon" },
    { "subspace", OPT_INT, offsetof(struct sharpness_config, subspace), 0, 100000, "0", NULL, 0,
      "maximise in a random P-dimensional subspace (0: the full space)" },
    { "iters", OPT_INT, offsetof(struct sharpness_config, iters), 10, 100000, "20", NULL, 0,
      "ascent iterations" },
    ANALYSIS_OPTIONS(struct sharpness_config),
    { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL },
};

/* The map y -> A y and its transpose, for A = I (P == 0) or random. */
struct subspace {
    size_t n;
    int P;
    uint64_t seed;
};

static float a_entry(const struct subspace *s, size_t i, int j)
{
    return (float)(rng_normal(s->seed, RNG_DIRECTION, 7000 + (uint64_t)j, i, 0) / sqrt((double)s->n));
}

/* x (n) = x0 + A y */
static void apply(const struct subspace *s, const float *x0, const float *y, float *x)
{
    if (s->P == 0) {
        for (size_t i = 0; i < s->n; i++)
            x[i] = x0[i] + y[i];
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        double acc = 0;
        for (int j = 0; j < s->P; j++)
            acc += (double)a_entry(s, i, j) * y[j];
        x[i] = (float)(x0[i] + acc);
    }
}

/* out (m) = A^T g */
static void transpose_apply(const struct subspace *s, const float *g, float *out)
{
    if (s->P == 0) {
        memcpy(out, g, s->n * sizeof *out);
        return;
    }
    double *acc = calloc((size_t)s->P, sizeof *acc);
    for (size_t i = 0; i < s->n; i++)
        for (int j = 0; j < s->P; j++)
            acc[j] += (double)a_entry(s, i, j) * g[i];
    for (int j = 0; j < s->P; j++)
        out[j] = (float)acc[j];
    free(acc);
}

/* f(x0 + A y) and its gradient A^T grad f, for box_ascent. */
struct sharp_ctx {
    struct probe *p;
    struct subspace s;
    float *x, *g;
};

static double sharp_f(void *user, const float *y, float *grad_y)
{
    struct sharp_ctx *c = user;
    apply(&c->s, c->p->x0, y, c->x);
    if (!grad_y)
        return probe_loss(c->p, c->x, NULL);
    double f = probe_loss_grad(c->p, c->x, c->g);
    transpose_apply(&c->s, c->g, grad_y);
    return f;
}

int sharpness_main(int argc, char **argv, int first)
{
    struct sharpness_config c;
    char *pos[1], err[1024];
    int rc = analysis_args("sharpness", "ddtrain sharpness CKPT --eps E [--subspace P] [options]",
                           sharpness_options, &c, argc, argv, first, pos, 1);
    if (rc)
        return rc == 1 ? 0 : rc;
    struct probe p;
    if (probe_open(&p, pos[0], (size_t)c.common.samples, c.common.seed, MPI_COMM_WORLD, err,
                   sizeof err))
        return analysis_fail("sharpness", err);
    struct sharp_ctx ctx = { .p = &p, .s = { .n = p.n, .P = c.subspace, .seed = c.common.seed } };
    size_t m = c.subspace ? (size_t)c.subspace : p.n;
    ctx.x = malloc(p.n * sizeof *ctx.x);
    ctx.g = malloc(p.n * sizeof *ctx.g);
    float *y = malloc(m * sizeof *y), *bound = malloc(m * sizeof *bound);
    float *work = malloc(2 * m * sizeof *work);
    if (!ctx.x || !ctx.g || !y || !bound || !work) {
        probe_close(&p);
        return analysis_fail("sharpness", "out of memory");
    }
    /* the box: eps (|(A+ x)_i| + 1), A+ = A^T */
    transpose_apply(&ctx.s, p.x0, bound);
    for (size_t i = 0; i < m; i++)
        bound[i] = (float)(c.eps * (fabs(bound[i]) + 1.0));
    struct ascent_result res;
    box_ascent(sharp_f, &ctx, bound, m, c.iters, y, work, &res);
    double sharp = 100.0 * (res.best - res.f0) / (1.0 + res.f0);
    int written = 0;
    if (p.rank == 0) {
        char header[2048];
        snprintf(header, sizeof header,
                 "ddtrain sharpness ckpt=%s eps=%g subspace=%d samples=%zu seed=%llu "
                 "method=projected-sign-gradient-ascent",
                 pos[0], c.eps, c.subspace, p.nsubset, (unsigned long long)c.common.seed);
        static const char *const cols[] = { "eps", "subspace", "iterations", "evaluations",
                                            "loss", "max_loss", "sharpness" };
        struct table t;
        table_begin(&t, c.common.json, header, cols, 7);
        double row[7] = { c.eps, c.subspace, res.iterations, res.evaluations, res.f0, res.best,
                          sharp };
        table_row(&t, row);
        if (table_end(&t, c.common.out, err, sizeof err)) {
            fprintf(stderr, "ddtrain sharpness: %s\n", err);
            written = DDT_EXIT_FAILURE;
        }
    }
    free(ctx.x);
    free(ctx.g);
    free(y);
    free(bound);
    free(work);
    probe_close(&p);
    return written;
}
