/* Gradient noise scale (McCandlish et al. 2018, appendix A.1): unbiased
 * estimates of |G|^2 and tr(Sigma) from gradient norms measured at two batch
 * sizes, averaged over a window of the most recent training samples (or, on
 * request, by the older exponential moving average per measurement). */
#ifndef DDT_NOISE_H
#define DDT_NOISE_H

/* The window holds at most this many measurements (the oldest go first)... */
#define NOISE_WINDOW_MAX 128
/* ... and at least this many, however old: one measurement alone is noisy. */
#define NOISE_WINDOW_KEEP 4

struct noise_scale {
    double decay;   /* EMA decay per measurement, e.g. 0.9 */
    double g2_ema;  /* EMA of the |G|^2 estimate */
    double s_ema;   /* EMA of the tr(Sigma) estimate */
    long count;     /* updates so far (for bias correction of the EMAs) */
    /* window > 0: the estimates are the averages, weighted by each
     * measurement's big batch, of the measurements taken over the last
     * `window` training samples; 0: the EMA above */
    double window;
    int n;                          /* measurements in the window, oldest first */
    double at[NOISE_WINDOW_MAX];    /* training samples seen when each was taken */
    double b[NOISE_WINDOW_MAX];     /* its big batch: the weight */
    double g2[NOISE_WINDOW_MAX];    /* its |G|^2 estimate */
    double s[NOISE_WINDOW_MAX];     /* its tr(Sigma) estimate */
    double last_g2, last_s;         /* the newest unsmoothed estimates (NaN before one) */
};

/* An estimator with the EMA (decay per measurement) and no window. */
void noise_init(struct noise_scale *n, double decay);

/* Averages over the last `samples` training samples instead (0: the EMA). */
void noise_set_window(struct noise_scale *n, double samples);

/* One observation, taken when `at` training samples had been seen: b_small,
 * b_big are batch sizes; g2_small is the mean over the small batches of
 * |g_small|^2 (mean gradients), g2_big is |g_big|^2.
 *   |G|^2   = (b_big g2_big - b_small g2_small) / (b_big - b_small)
 *   tr(S)   = (g2_small - g2_big) / (1/b_small - 1/b_big)
 * Returns 0, or -1 when b_small == b_big (nothing to learn) or an input is
 * not usable. */
int noise_update(struct noise_scale *n, double at, double b_small, double g2_small, double b_big,
                 double g2_big);

/* The smoothed estimates of |G|^2 and tr(Sigma) (window or bias-corrected
 * EMA). Returns 0, or -1 (both NaN) before the first update. */
int noise_estimates(const struct noise_scale *n, double *g2, double *trace);

/* B_simple = tr(Sigma) / |G|^2 from the smoothed estimates; NaN before the
 * first update or when the |G|^2 estimate is not positive (the gradient's
 * signal is then below what the measurements can resolve). */
double noise_b_simple(const struct noise_scale *n);

#endif
