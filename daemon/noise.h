/* Gradient noise scale (McCandlish et al. 2018, appendix A.1): unbiased
 * estimates of |G|^2 and tr(Sigma) from gradient norms measured at two batch
 * sizes, smoothed by separate exponential moving averages. */
#ifndef DDT_NOISE_H
#define DDT_NOISE_H

struct noise_scale {
    double decay;   /* EMA decay per step, e.g. 0.99 */
    double g2_ema;  /* EMA of the |G|^2 estimate */
    double s_ema;   /* EMA of the tr(Sigma) estimate */
    long count;     /* updates so far (for bias correction of the EMAs) */
};

void noise_init(struct noise_scale *n, double decay);

/* One observation: b_small, b_big are batch sizes; g2_small is the mean over
 * the small batches of |g_small|^2 (mean gradients), g2_big is |g_big|^2.
 *   |G|^2   = (b_big g2_big - b_small g2_small) / (b_big - b_small)
 *   tr(S)   = (g2_small - g2_big) / (1/b_small - 1/b_big)
 * Returns 0, or -1 when b_small == b_big (nothing to learn). */
int noise_update(struct noise_scale *n, double b_small, double g2_small, double b_big,
                 double g2_big);

/* B_simple = tr(Sigma) / |G|^2 from the (bias-corrected) averages; NaN before
 * the first update or when the |G|^2 average is not positive. */
double noise_b_simple(const struct noise_scale *n);

#endif
