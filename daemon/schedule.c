/* Learning-rate, momentum and batch-size schedules as pure functions of the
 * position in training (see schedule.h for the formulas' sources). */
#include "schedule.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sched_defaults(struct sched_config *c)
{
    memset(c, 0, sizeof *c);
    c->base_lr = 0.1;
    c->scaling = SCALE_NONE;
    c->ref_batch = 256;
    c->epochs = 10;
    c->warmup_start = -1;
    c->decay = DECAY_CONSTANT;
    c->gamma = 0.1;
    c->power = 1;
    c->sgdr_t0 = 10;
    c->sgdr_tmult = 1;
    c->cycle_epochs = 2;
    c->onecycle_pct = 0.3;
    c->onecycle_div = 25;
    c->onecycle_final_div = 1e4;
    c->momentum = 0.9;
    c->momentum_min = 0.85;
    c->base_batch = 256;
    c->batch_scales_lr = true;
}

#define FAIL(...)                           \
    do {                                    \
        snprintf(err, errlen, __VA_ARGS__); \
        return -1;                          \
    } while (0)

int sched_validate(const struct sched_config *c, char *err, int errlen)
{
    if (!(c->base_lr > 0))
        FAIL("--lr: %g: allowed a number above 0", c->base_lr);
    if (c->ref_batch < 1)
        FAIL("--ref-batch: %d: allowed a whole number from 1", c->ref_batch);
    if (!(c->epochs > 0))
        FAIL("--epochs: %g: allowed a number above 0", c->epochs);
    if (c->warmup_epochs < 0 || c->warmup_epochs > c->epochs)
        FAIL("--warmup-epochs: %g: allowed 0 to the training length (%g epochs)",
             c->warmup_epochs, c->epochs);
    if (c->warmup_steps < 0)
        FAIL("--warmup-steps: %ld: allowed 0 or more", c->warmup_steps);
    if (c->warmup_start > 1)
        FAIL("--warmup-start: %g: allowed -1 (the unscaled rate) or 0 to 1", c->warmup_start);
    for (int i = 0; i < c->nmilestones; i++) {
        if (c->milestones[i] < 0 || c->milestones[i] > c->epochs)
            FAIL("--lr-milestones: %g is outside training (0 to %g epochs)", c->milestones[i],
                 c->epochs);
        if (i > 0 && c->milestones[i] <= c->milestones[i - 1])
            FAIL("--lr-milestones: %g after %g: allowed strictly increasing epochs",
                 c->milestones[i], c->milestones[i - 1]);
    }
    if (c->decay == DECAY_STEP && c->nmilestones == 0)
        FAIL("--lr-milestones: --lr-decay step needs at least one milestone epoch, e.g. 30,60");
    if ((c->decay == DECAY_STEP || c->decay == DECAY_EXP) && !(c->gamma > 0 && c->gamma <= 1))
        FAIL("--lr-gamma: %g: allowed a number in (0, 1]", c->gamma);
    if (!(c->floor >= 0 && c->floor < 1))
        FAIL("--lr-floor: %g: allowed a number in [0, 1)", c->floor);
    if (!(c->power > 0))
        FAIL("--lr-power: %g: allowed a number above 0", c->power);
    if (!(c->sgdr_t0 > 0))
        FAIL("--sgdr-t0: %g: allowed a number of epochs above 0", c->sgdr_t0);
    if (!(c->sgdr_tmult >= 1))
        FAIL("--sgdr-tmult: %g: allowed a number from 1", c->sgdr_tmult);
    if (!(c->cycle_epochs > 0))
        FAIL("--cycle-epochs: %g: allowed a number of epochs above 0", c->cycle_epochs);
    if (!(c->onecycle_pct > 0 && c->onecycle_pct < 1))
        FAIL("--onecycle-pct: %g: allowed a number in (0, 1)", c->onecycle_pct);
    if (!(c->onecycle_div >= 1))
        FAIL("--onecycle-div: %g: allowed a number from 1", c->onecycle_div);
    if (!(c->onecycle_final_div >= 1))
        FAIL("--onecycle-final-div: %g: allowed a number from 1", c->onecycle_final_div);
    if (c->decay == DECAY_ONECYCLE && c->momentum_min > c->momentum)
        FAIL("--momentum-min: %g is above --momentum %g: one-cycle cycles momentum between them",
             c->momentum_min, c->momentum);
    for (int i = 0; i < c->nbatch; i++) {
        if (c->batch_sizes[i] < 1)
            FAIL("--batch-schedule: batch %d at epoch %g: allowed 1 or more", c->batch_sizes[i],
                 c->batch_epochs[i]);
        if (c->batch_epochs[i] < 0 || (i > 0 && c->batch_epochs[i] <= c->batch_epochs[i - 1]))
            FAIL("--batch-schedule: epoch %g: allowed strictly increasing epochs from 0",
                 c->batch_epochs[i]);
    }
    return 0;
}

int sched_batch_at(const struct sched_config *c, double t)
{
    int b = c->base_batch;
    for (int i = 0; i < c->nbatch && c->batch_epochs[i] <= t; i++)
        b = c->batch_sizes[i];
    return b;
}

double sched_scale(const struct sched_config *c, int B)
{
    double ratio = (double)(c->batch_scales_lr ? B : c->base_batch) / c->ref_batch;
    switch (c->scaling) {
    case SCALE_LINEAR: /* Goyal et al. 2017 */
        return ratio;
    case SCALE_SQRT: /* Hoffer et al. 2017 */
        return sqrt(ratio);
    default:
        return 1.0;
    }
}

double sched_warmup_factor(const struct sched_config *c, double t, long step)
{
    double progress;
    if (c->warmup_steps > 0)
        progress = (double)step / (double)c->warmup_steps;
    else if (c->warmup_epochs > 0)
        progress = t / c->warmup_epochs;
    else
        return 1.0;
    if (progress >= 1.0)
        return 1.0;
    /* Goyal's gradual warm-up starts from the unscaled rate */
    double start = c->warmup_start >= 0 ? c->warmup_start
                                        : 1.0 / sched_scale(c, sched_batch_at(c, t));
    return start + (1.0 - start) * progress;
}

static double cosine(double floor, double x)
{
    return floor + (1.0 - floor) * (1.0 + cos(M_PI * x)) / 2.0;
}

double sched_decay_factor(const struct sched_config *c, double t)
{
    double T = c->epochs, f = c->floor;
    switch (c->decay) {
    case DECAY_STEP: {
        double factor = 1.0;
        for (int i = 0; i < c->nmilestones && c->milestones[i] <= t; i++)
            factor *= c->gamma;
        return factor;
    }
    case DECAY_EXP:
        return pow(c->gamma, t);
    case DECAY_POLY:
        return f + (1.0 - f) * pow(1.0 - (t < T ? t : T) / T, c->power);
    case DECAY_COSINE: /* Loshchilov & Hutter's annealing without restarts */
        return cosine(f, (t < T ? t : T) / T);
    case DECAY_SGDR: { /* Loshchilov & Hutter 2016 */
        double period = c->sgdr_t0, cur = t;
        while (cur >= period) {
            cur -= period;
            period *= c->sgdr_tmult;
        }
        return cosine(f, cur / period);
    }
    case DECAY_CYCLIC: { /* Smith 2015, triangular */
        double cycle = floor(1.0 + t / (2.0 * c->cycle_epochs));
        double x = fabs(t / c->cycle_epochs - 2.0 * cycle + 1.0);
        return f + (1.0 - f) * (1.0 - x > 0 ? 1.0 - x : 0.0);
    }
    case DECAY_ONECYCLE: { /* Smith 2018, PyTorch's OneCycleLR with cosine phases */
        double p = t / T, pct = c->onecycle_pct;
        double lo = 1.0 / c->onecycle_div, end = lo / c->onecycle_final_div;
        if (p < pct)
            return lo + (1.0 - lo) * (1.0 - cos(M_PI * p / pct)) / 2.0;
        double q = (p - pct) / (1.0 - pct);
        return end + (1.0 - end) * (1.0 + cos(M_PI * (q < 1 ? q : 1))) / 2.0;
    }
    default:
        return 1.0;
    }
}

double sched_lr_at(const struct sched_config *c, double t, long step)
{
    return c->base_lr * sched_scale(c, sched_batch_at(c, t)) * sched_warmup_factor(c, t, step) *
           sched_decay_factor(c, t);
}

double sched_momentum_at(const struct sched_config *c, double t)
{
    if (c->decay != DECAY_ONECYCLE)
        return c->momentum;
    /* momentum falls while the rate rises, and rises while it falls */
    double p = t / c->epochs, pct = c->onecycle_pct, hi = c->momentum, lo = c->momentum_min;
    if (p < pct)
        return hi - (hi - lo) * (1.0 - cos(M_PI * p / pct)) / 2.0;
    double q = (p - pct) / (1.0 - pct);
    return lo + (hi - lo) * (1.0 - cos(M_PI * (q < 1 ? q : 1))) / 2.0;
}

/* Next number of a comma-separated list; 1 when one was read, 0 at the end. */
static int next_item(const char **p, char *item, size_t itemlen)
{
    while (**p == ' ')
        (*p)++;
    if (!**p)
        return 0;
    const char *comma = strchr(*p, ',');
    size_t len = comma ? (size_t)(comma - *p) : strlen(*p);
    snprintf(item, itemlen, "%.*s", (int)(len < itemlen ? len : itemlen - 1), *p);
    *p += len + (comma ? 1 : 0);
    return 1;
}

int sched_parse_milestones(struct sched_config *c, const char *text, char *err, int errlen)
{
    c->nmilestones = 0;
    char item[64];
    const char *p = text;
    while (next_item(&p, item, sizeof item)) {
        char *end;
        errno = 0;
        double v = strtod(item, &end);
        if (end == item || *end || errno || !isfinite(v))
            FAIL("--lr-milestones: '%s' is not an epoch: allowed numbers like 30,60,80", item);
        if (c->nmilestones == SCHED_MAX_MILESTONES)
            FAIL("--lr-milestones: more than %d milestones", SCHED_MAX_MILESTONES);
        c->milestones[c->nmilestones++] = v;
    }
    return 0;
}

int sched_parse_batch_list(struct sched_config *c, const char *text, char *err, int errlen)
{
    c->nbatch = 0;
    char item[64];
    const char *p = text;
    while (next_item(&p, item, sizeof item)) {
        char *colon = strchr(item, ':'), *end;
        if (!colon)
            FAIL("--batch-schedule: '%s' is not EPOCH:BATCH (e.g. 5:512,10:1024)", item);
        *colon = 0;
        errno = 0;
        double e = strtod(item, &end);
        if (end == item || *end || errno || !isfinite(e))
            FAIL("--batch-schedule: '%s' is not an epoch (EPOCH:BATCH, e.g. 5:512)", item);
        long b = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end || errno || b < 1 || b > 16777216)
            FAIL("--batch-schedule: '%s' is not a batch size from 1 to 16777216", colon + 1);
        if (c->nbatch == SCHED_MAX_MILESTONES)
            FAIL("--batch-schedule: more than %d milestones", SCHED_MAX_MILESTONES);
        c->batch_epochs[c->nbatch] = e;
        c->batch_sizes[c->nbatch++] = (int)b;
    }
    return 0;
}
