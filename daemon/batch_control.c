/* --batch-auto's decisions: when to double the global batch, from the
 * gradient noise scale. */
#include "batch_control.h"

#include <math.h>
#include <stdio.h>

int batchctl_cap(const struct batchctl_config *c, size_t n)
{
    long cap = c->max;
    if ((size_t)cap > n)
        cap = (long)n;
    if (c->quantum > 1)
        cap -= cap % c->quantum;
    return cap < c->min ? c->min : (int)cap;
}

int batchctl_validate(const struct batchctl_config *c, size_t n, char *err, size_t errlen)
{
    if (c->max < c->min) {
        snprintf(err, errlen, "--batch-auto: %d is below --batch-size %d: allowed the largest batch the run may grow to, at least --batch-size (0: a fixed batch)",
                 c->max, c->min);
        return -1;
    }
    if (c->quantum > 0 && c->min % c->quantum != 0) {
        snprintf(err, errlen, "--batch-size %d with --batch-auto: every batch the controller picks is --batch-size x 2^k or the largest multiple of %d (the ranks times --bn-group times --accumulate) up to --batch-auto, so --batch-size must be a multiple of %d",
                 c->min, c->quantum, c->quantum);
        return -1;
    }
    if ((size_t)c->min > n) {
        snprintf(err, errlen, "--batch-size %d with --batch-auto: the training set has only %zu samples: allowed at most %zu",
                 c->min, n, n);
        return -1;
    }
    return 0;
}

void batchctl_init(struct batchctl *s, const struct batchctl_config *c)
{
    s->batch = c->min;
    s->streak = 0;
}

/* B_simple from the estimates: the noise's share of the gradient. A |G|^2
 * estimate at or below 0 with positive noise means the signal is below what
 * the measurements resolve, i.e. the noise scale exceeds any batch measured:
 * +inf. No positive noise: NaN, nothing to go by. */
static double b_noise_of(double g2, double trace)
{
    if (!(trace > 0) || isnan(g2))
        return NAN;
    return g2 > 0 ? trace / g2 : INFINITY;
}

/* The largest candidate the noise scale supports: min x 2^k below the cap,
 * or the cap itself. */
static int target_of(const struct batchctl_config *c, int cap, int from, double bn)
{
    int t = from;
    for (;;) {
        long next = 2L * t;
        if (next > cap)
            next = cap;
        if (next <= t || !(bn >= c->margin * (double)next))
            return t;
        t = (int)next;
    }
}

int batchctl_decide(const struct batchctl_config *c, struct batchctl *s, size_t n, double g2,
                    double trace, struct batchctl_decision *d)
{
    int cap = batchctl_cap(c, n);
    d->from = d->to = d->target = s->batch;
    d->b_noise = b_noise_of(g2, trace);
    if (s->batch >= cap) {
        d->why = "at max";
        s->streak = 0;
        return s->batch;
    }
    if (isnan(d->b_noise)) {
        /* no evidence either way: hold, and start counting afresh */
        d->why = "no estimate";
        s->streak = 0;
        return s->batch;
    }
    d->target = target_of(c, cap, s->batch, d->b_noise);
    if (d->target <= s->batch) {
        d->why = "hold";
        s->streak = 0;
        return s->batch;
    }
    /* hysteresis: a single noisy estimate above the threshold does not move
     * the batch; `confirm` decision points in a row must ask for more */
    if (++s->streak < c->confirm) {
        d->why = "confirming";
        return s->batch;
    }
    s->streak = 0;
    s->batch = d->to = d->target;
    d->why = "grow";
    return s->batch;
}
