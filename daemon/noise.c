/* The gradient noise scale estimator of McCandlish et al. 2018, "An Empirical
 * Model of Large-Batch Training", appendix A.1. */
#include "noise.h"

#include <math.h>
#include <string.h>

void noise_init(struct noise_scale *n, double decay)
{
    memset(n, 0, sizeof *n);
    n->decay = decay;
    n->last_g2 = n->last_s = NAN;
}

void noise_set_window(struct noise_scale *n, double samples)
{
    n->window = samples > 0 ? samples : 0;
}

/* Drops the oldest measurement. */
static void window_pop(struct noise_scale *n)
{
    size_t rest = (size_t)(n->n - 1) * sizeof n->at[0];
    memmove(n->at, n->at + 1, rest);
    memmove(n->b, n->b + 1, rest);
    memmove(n->g2, n->g2 + 1, rest);
    memmove(n->s, n->s + 1, rest);
    n->n--;
}

/* A fixed decay per measurement makes the average's memory a number of
 * measurements, whatever the batch: one every 10 steps at decay 0.9 remembers
 * ~100 steps, which for a large batch is the first minutes of a run that has
 * long moved on. The window is measured in training samples instead, so it
 * spans the same amount of training at any batch, and it never holds fewer
 * than NOISE_WINDOW_KEEP measurements. */
static void window_push(struct noise_scale *n, double at, double b, double g2, double s)
{
    if (n->n == NOISE_WINDOW_MAX)
        window_pop(n);
    n->at[n->n] = at;
    n->b[n->n] = b;
    n->g2[n->n] = g2;
    n->s[n->n] = s;
    n->n++;
    while (n->n > NOISE_WINDOW_KEEP && !(at - n->at[0] < n->window))
        window_pop(n);
}

/* A mean gradient over b samples has E|g_b|^2 = |G|^2 + tr(Sigma)/b. Two
 * measurements at b_small and b_big give two equations in the two unknowns,
 * solved in noise.h's formulas; each estimate is unbiased, their ratio is not,
 * which is why the two are averaged separately and divided only at the end. */
int noise_update(struct noise_scale *n, double at, double b_small, double g2_small, double b_big,
                 double g2_big)
{
    if (b_small == b_big)
        return -1;
    /* a non-positive batch or an overflowed norm would poison the averages for good */
    if (!(b_small > 0 && b_big > 0) || !isfinite(g2_small) || !isfinite(g2_big) ||
        !isfinite(at))
        return -1;
    double g2 = (b_big * g2_big - b_small * g2_small) / (b_big - b_small);
    double s = (g2_small - g2_big) / (1.0 / b_small - 1.0 / b_big);
    n->g2_ema = n->decay * n->g2_ema + (1.0 - n->decay) * g2;
    n->s_ema = n->decay * n->s_ema + (1.0 - n->decay) * s;
    n->count++;
    n->last_g2 = g2;
    n->last_s = s;
    /* the larger batch's measurement is the one with the most samples in it */
    window_push(n, at, b_big > b_small ? b_big : b_small, g2, s);
    return 0;
}

/* The window: sum(b_i x_i) / sum(b_i). The EMA: both averages start at 0 and
 * carry the same bias (1 - decay^count), which cancels in the ratio; it is
 * removed anyway so that the two terms read as estimates. */
int noise_estimates(const struct noise_scale *n, double *g2, double *trace)
{
    *g2 = *trace = NAN;
    if (n->count <= 0)
        return -1;
    if (n->window > 0 && n->n > 0) {
        double w = 0, sg = 0, ss = 0;
        for (int i = 0; i < n->n; i++) {
            w += n->b[i];
            sg += n->b[i] * n->g2[i];
            ss += n->b[i] * n->s[i];
        }
        *g2 = sg / w;
        *trace = ss / w;
        return 0;
    }
    double correction = 1.0 - pow(n->decay, (double)n->count);
    *g2 = n->g2_ema;
    *trace = n->s_ema;
    if (correction > 0) {
        *g2 /= correction;
        *trace /= correction;
    }
    return 0;
}

double noise_b_simple(const struct noise_scale *n)
{
    double g2, s;
    if (noise_estimates(n, &g2, &s) || !(g2 > 0))
        return NAN;
    return s / g2;
}
