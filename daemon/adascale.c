/* AdaScale's gain ratio from the noise scale's estimates. */
#include "adascale.h"

#include <math.h>

/* Johnson et al. 2020, Algorithm 1: r_t = E|g_S|^2 / E|g_1|^2 with
 * E|g_k|^2 = |G|^2 + sigma^2 / k, i.e. (sigma^2 + |G|^2) / (sigma^2/S + |G|^2);
 * the rate is r_t x lr(tau_t) and the clock tau advances by r_t a step. The
 * estimates are the averaged ones the noise scale keeps (noise.h), so the
 * same numbers decide the batch and the gain. */
double adascale_gain(double g2, double trace, double batch, double base)
{
    double S = batch / base;
    if (!(S > 0) || isnan(g2) || isnan(trace))
        return 1.0;
    double lo = S < 1 ? S : 1.0, hi = S < 1 ? 1.0 : S;
    double sigma2 = trace / base;
    if (!(sigma2 > 0))
        return 1.0;  /* no noise: a step of S samples is worth one base step */
    if (!(g2 > 0))
        return S;    /* all noise: it is worth S of them */
    double r = (sigma2 + g2) / (sigma2 / S + g2);
    return r < lo ? lo : r > hi ? hi : r;
}
