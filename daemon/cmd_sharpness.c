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
#include "commands.h"
#include "probe.h"
#include "rng.h"
#include "table.h"

struct sharpness_config {
    struct analysis_common common;
    double eps;
    int subspace;
    int iters;
};

static const struct option_def sharpness_options[] = {
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
    struct subspace s = { .n = p.n, .P = c.subspace, .seed = c.common.seed };
    size_t m = c.subspace ? (size_t)c.subspace : p.n;
    float *x = malloc(p.n * sizeof *x), *g = malloc(p.n * sizeof *g);
    float *y = calloc(m, sizeof *y), *cand = malloc(m * sizeof *cand);
    float *gy = malloc(m * sizeof *gy), *bound = malloc(m * sizeof *bound);
    if (!x || !g || !y || !cand || !gy || !bound) {
        probe_close(&p);
        return analysis_fail("sharpness", "out of memory");
    }
    /* the box: eps (|(A+ x)_i| + 1), A+ = A^T */
    transpose_apply(&s, p.x0, bound);
    for (size_t i = 0; i < m; i++)
        bound[i] = (float)(c.eps * (fabs(bound[i]) + 1.0));

    double f0 = probe_loss(&p, p.x0, NULL), fy = f0, best = f0, step = 1.0;
    int evaluations = 1, need_grad = 1, it;
    for (it = 0; it < c.iters; it++) {
        if (need_grad) {
            apply(&s, p.x0, y, x);
            probe_loss_grad(&p, x, g);
            transpose_apply(&s, g, gy);
            evaluations++;
            need_grad = 0;
        }
        for (size_t i = 0; i < m; i++) {
            float moved = y[i] + (float)step * bound[i] * (gy[i] > 0 ? 1.0f : gy[i] < 0 ? -1.0f : 0.0f);
            cand[i] = moved > bound[i] ? bound[i] : moved < -bound[i] ? -bound[i] : moved;
        }
        apply(&s, p.x0, cand, x);
        double fc = probe_loss(&p, x, NULL);
        evaluations++;
        if (fc > fy) {
            memcpy(y, cand, m * sizeof *y);
            fy = fc;
            step = step * 1.5 > 1.0 ? 1.0 : step * 1.5;
            need_grad = 1;
        } else {
            step *= 0.5;
        }
        if (fy > best)
            best = fy;
    }
    double sharp = 100.0 * (best - f0) / (1.0 + f0);
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
        double row[7] = { c.eps, c.subspace, it, evaluations, f0, best, sharp };
        table_row(&t, row);
        if (table_end(&t, c.common.out, err, sizeof err))
            fprintf(stderr, "ddtrain sharpness: %s\n", err);
    }
    free(x);
    free(g);
    free(y);
    free(cand);
    free(gy);
    free(bound);
    probe_close(&p);
    return 0;
}
