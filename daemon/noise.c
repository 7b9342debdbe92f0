/* The gradient noise scale estimator (McCandlish et al. 2018, appendix A.1). */
#include "noise.h"

#include <math.h>
#include <string.h>

void noise_init(struct noise_scale *n, double decay)
{
    memset(n, 0, sizeof *n);
    n->decay = decay;
}

int noise_update(struct noise_scale *n, double b_small, double g2_small, double b_big,
                 double g2_big)
{
    if (b_small == b_big)
        return -1;
    /* unbiased estimates from E|g_B|^2 = |G|^2 + tr(Sigma) / B at two sizes */
    double g2 = (b_big * g2_big - b_small * g2_small) / (b_big - b_small);
    double s = (g2_small - g2_big) / (1.0 / b_small - 1.0 / b_big);
    /* separate averages: the ratio of averages is far less noisy than the
     * average of ratios */
    n->g2_ema = n->decay * n->g2_ema + (1.0 - n->decay) * g2;
    n->s_ema = n->decay * n->s_ema + (1.0 - n->decay) * s;
    n->count++;
    return 0;
}

double noise_b_simple(const struct noise_scale *n)
{
    if (n->count == 0)
        return NAN;
    double correction = 1.0 - pow(n->decay, (double)n->count);
    double g2 = n->g2_ema / correction, s = n->s_ema / correction;
    return g2 > 0 ? s / g2 : NAN;
}
