/* The gradient noise scale estimator of McCandlish et al. 2018, "An Empirical
 * Model of Large-Batch Training", appendix A.1. */
#include "noise.h"

#include <math.h>
#include <string.h>

void noise_init(struct noise_scale *n, double decay)
{
    memset(n, 0, sizeof *n);
    n->decay = decay;
}

/* A mean gradient over b samples has E|g_b|^2 = |G|^2 + tr(Sigma)/b. Two
 * measurements at b_small and b_big give two equations in the two unknowns,
 * solved in noise.h's formulas; each estimate is unbiased, their ratio is not,
 * which is why the two are averaged separately and divided only at the end. */
int noise_update(struct noise_scale *n, double b_small, double g2_small, double b_big,
                 double g2_big)
{
    if (b_small == b_big)
        return -1;
    /* a non-positive batch or an overflowed norm would poison the averages for good */
    if (!(b_small > 0 && b_big > 0) || !isfinite(g2_small) || !isfinite(g2_big))
        return -1;
    double g2 = (b_big * g2_big - b_small * g2_small) / (b_big - b_small);
    double s = (g2_small - g2_big) / (1.0 / b_small - 1.0 / b_big);
    n->g2_ema = n->decay * n->g2_ema + (1.0 - n->decay) * g2;
    n->s_ema = n->decay * n->s_ema + (1.0 - n->decay) * s;
    n->count++;
    return 0;
}

/* Both averages start at 0 and carry the same bias (1 - decay^count), which
 * cancels in the ratio; it is removed anyway so that the two terms read as
 * estimates of tr(Sigma) and |G|^2. */
double noise_b_simple(const struct noise_scale *n)
{
    if (n->count <= 0)
        return NAN;
    double g2 = n->g2_ema, s = n->s_ema;
    double correction = 1.0 - pow(n->decay, (double)n->count);
    if (correction > 0) {
        g2 /= correction;
        s /= correction;
    }
    if (!(g2 > 0))
        return NAN;
    return s / g2;
}
