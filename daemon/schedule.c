/* Learning-rate, momentum and batch-size schedules as pure functions of the
 * position in training, their validation, and the parsers of their lists. */
#include "schedule.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest global batch --batch-size accepts; the batch schedule keeps to it. */
#define SCHED_MAX_BATCH 16777216L

/* Library code reports and returns; it never exits. */
#define FAIL(...)                                         \
    do {                                                  \
        if (err && errlen > 0)                            \
            snprintf(err, errlen, __VA_ARGS__);           \
        return -1;                                        \
    } while (0)

/* The option table has checked every option's own range (finite numbers
 * only); what is left are the options against each other and the lists.
 * Every comparison is written so that NaN fails it all the same. */

static int validate_warmup(const struct sched_config *c, char *err, size_t errlen)
{
    if (!(c->warmup_epochs <= c->epochs))
        FAIL("--warmup-epochs: %g: allowed 0 up to the length of training (--epochs %d)",
             c->warmup_epochs, c->epochs);
    return 0;
}

static int validate_milestones(const struct sched_config *c, char *err, size_t errlen)
{
    if (c->nmilestones < 0 || c->nmilestones > SCHED_MAX_MILESTONES)
        FAIL("--lr-milestones: %d milestones: allowed at most %d", c->nmilestones,
             SCHED_MAX_MILESTONES);
    for (int i = 0; i < c->nmilestones; i++) {
        if (!(c->milestones[i] >= 0 && c->milestones[i] <= c->epochs))
            FAIL("--lr-milestones: %g is outside training: allowed epochs from 0 to %d",
                 c->milestones[i], c->epochs);
        if (i > 0 && !(c->milestones[i] > c->milestones[i - 1]))
            FAIL("--lr-milestones: %g after %g: allowed strictly increasing epochs",
                 c->milestones[i], c->milestones[i - 1]);
    }
    /* step decay without a milestone is the constant rate: surely a slip */
    if (c->decay == DECAY_STEP && c->nmilestones == 0)
        FAIL("--lr-milestones: none given for --lr-decay step: allowed one or more "
             "epochs, e.g. --lr-milestones 30,60");
    return 0;
}

static int validate_momentum(const struct sched_config *c, char *err, size_t errlen)
{
    /* only one-cycle reads momentum_min; checking it otherwise would reject a
     * plain --momentum 0.5 against the 0.85 default */
    if (c->decay == DECAY_ONECYCLE && !(c->momentum_min <= c->momentum))
        FAIL("--momentum-min: %g: one-cycle cycles momentum between --momentum-min and "
             "--momentum (%g): allowed 0 up to --momentum",
             c->momentum_min, c->momentum);
    return 0;
}

static int validate_batch_schedule(const struct sched_config *c, char *err, size_t errlen)
{
    if (c->nbatch < 0 || c->nbatch > SCHED_MAX_MILESTONES)
        FAIL("--batch-schedule: %d changes: allowed at most %d", c->nbatch,
             SCHED_MAX_MILESTONES);
    for (int i = 0; i < c->nbatch; i++) {
        if (c->batch_sizes[i] < 1 || c->batch_sizes[i] > SCHED_MAX_BATCH)
            FAIL("--batch-schedule: batch %d at epoch %g: allowed a batch from 1 to %ld",
                 c->batch_sizes[i], c->batch_epochs[i], SCHED_MAX_BATCH);
        /* a change at or after the end would never run but would still size buffers */
        if (!(c->batch_epochs[i] >= 0 && c->batch_epochs[i] < c->epochs))
            FAIL("--batch-schedule: epoch %g is outside training: allowed epochs from 0 to "
                 "before %d",
                 c->batch_epochs[i], c->epochs);
        if (i > 0 && !(c->batch_epochs[i] > c->batch_epochs[i - 1]))
            FAIL("--batch-schedule: epoch %g after %g: allowed strictly increasing epochs",
                 c->batch_epochs[i], c->batch_epochs[i - 1]);
    }
    return 0;
}

int sched_validate(const struct sched_config *c, char *err, size_t errlen)
{
    if (validate_warmup(c, err, errlen) || validate_milestones(c, err, errlen) ||
        validate_momentum(c, err, errlen) || validate_batch_schedule(c, err, errlen))
        return -1;
    return 0;
}

int sched_batch_at(const struct sched_config *c, double t)
{
    int b = c->base_batch;
    for (int i = 0; i < c->nbatch && c->batch_epochs[i] <= t; i++)
        b = c->batch_sizes[i];
    return b;
}

/* Linear: Goyal et al. 2017, "Accurate, Large Minibatch SGD", lr ∝ B.
 * Square root: Hoffer et al. 2017, "Train longer, generalize better", lr ∝ sqrt(B),
 * which keeps the covariance of the weight update constant. */
double sched_scale(const struct sched_config *c, int B)
{
    /* "increase the batch instead of decaying the rate" (Smith et al. 2017)
     * keeps the rate of the first batch */
    int b = c->batch_scales_lr ? B : c->base_batch;
    double ratio = (double)b / (double)c->ref_batch;
    switch (c->scaling) {
    case SCALE_LINEAR:
        return ratio;
    case SCALE_SQRT:
        return sqrt(ratio);
    case SCALE_ADASCALE:
    case SCALE_NONE:
    default:
        return 1.0;
    }
}

/* factor = start + (1 - start) min(progress, 1), progress = step / warmup_steps
 * or t / warmup_epochs. Goyal et al.'s gradual warm-up starts from the rate
 * of the reference batch, i.e. start = 1 / scale, so that the scaled rate is
 * reached only after the early, fast-changing phase of training. */
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
    if (progress < 0.0)
        progress = 0.0;
    double start = c->warmup_start >= 0 ? c->warmup_start
                                        : 1.0 / sched_scale(c, sched_batch_at(c, t));
    return start + (1.0 - start) * progress;
}

/* floor + (1 - floor)(1 + cos(pi x))/2: 1 at x = 0, floor at x = 1. */
static double cosine_anneal(double floor, double x)
{
    return floor + (1.0 - floor) * (1.0 + cos(M_PI * x)) / 2.0;
}

static double clamp01(double x)
{
    return x < 0.0 ? 0.0 : x > 1.0 ? 1.0 : x;
}

/* SGDR, Loshchilov & Hutter 2016, "SGDR: Stochastic Gradient Descent with Warm
 * Restarts": periods T_0, T_0 Tmult, T_0 Tmult^2, ...; within period i, with
 * t_cur epochs done, factor = floor + (1 - floor)(1 + cos(pi t_cur / T_i))/2.
 * Subtracting whole periods is exact at restarts for whole-epoch periods, and
 * takes at most t / T_0 rounds since no period is shorter than T_0. */
static double sgdr(const struct sched_config *c, double t)
{
    double period = c->sgdr_t0, cur = t;
    /* an unvalidated config must not hang a pure function */
    if (!(period > 0) || !isfinite(t))
        return 1.0;
    double mult = c->sgdr_tmult >= 1 ? c->sgdr_tmult : 1.0;
    if (mult == 1.0) {
        cur = fmod(t, period);
    } else {
        while (cur >= period) {
            cur -= period;
            period *= mult;
        }
    }
    return cosine_anneal(c->floor, cur / period);
}

/* Triangular cyclical rate, Smith 2015, "Cyclical Learning Rates for Training
 * Neural Networks": with step size s = cycle_epochs,
 *   cycle = floor(1 + t / 2s), x = |t/s - 2 cycle + 1|,
 *   factor = floor + (1 - floor) max(0, 1 - x),
 * so it starts at the floor, peaks at t = s, and is back at the floor at 2s. */
static double cyclic(const struct sched_config *c, double t)
{
    double s = c->cycle_epochs;
    double cycle = floor(1.0 + t / (2.0 * s));
    double x = fabs(t / s - 2.0 * cycle + 1.0);
    return c->floor + (1.0 - c->floor) * fmax(0.0, 1.0 - x);
}

/* The share t/T of a horizon T done; a horizon of 0 or less (a warm-up as
 * long as training) never starts. */
static double share(double t, double T)
{
    return T > 0 ? clamp01(t / T) : 0.0;
}

/* One-cycle, Smith 2018, "A disciplined approach to neural network
 * hyper-parameters: Part 1", in the form of PyTorch's OneCycleLR with cosine
 * annealing. With p = t/T, a = pct, lo = 1/div, end = 1/(div final_div):
 *   p < a:  lo + (1 - lo)(1 - cos(pi p/a))/2               (rise lo -> 1)
 *   p >= a: end + (1 - end)(1 + cos(pi (p - a)/(1 - a)))/2 (fall 1 -> end) */
static double onecycle(const struct sched_config *c, double t, double T)
{
    double p = share(t, T), a = c->onecycle_pct;
    double lo = 1.0 / c->onecycle_div, end = lo / c->onecycle_final_div;
    if (p < a)
        return lo + (1.0 - lo) * (1.0 - cos(M_PI * p / a)) / 2.0;
    return cosine_anneal(end, (p - a) / (1.0 - a));
}

double sched_warmup_end(const struct sched_config *c)
{
    if (c->warmup_steps > 0)
        return c->warmup_steps_end;
    return c->warmup_epochs;
}

/* The position of step warmup_steps is what the trainer's position would be
 * there: epoch + step in epoch / steps of the epoch. */
void sched_set_warmup_steps_end(struct sched_config *c, long (*steps_in)(long e, void *user),
                                void *user)
{
    long left = c->warmup_steps, e = 0;
    c->warmup_steps_end = 0;
    if (left <= 0)
        return;
    for (; e < c->epochs; e++) {
        long n = steps_in(e, user);
        if (n <= 0)
            break;
        if (left < n) {
            c->warmup_steps_end = (double)e + (double)left / (double)n;
            return;
        }
        left -= n;
    }
    /* a warm-up that outlasts training: the decay never starts */
    c->warmup_steps_end = (double)c->epochs;
}

static double step_decay(const struct sched_config *c, double t)
{
    double factor = 1.0;
    for (int i = 0; i < c->nmilestones && c->milestones[i] <= t; i++)
        factor *= c->gamma;
    return factor;
}

/* Decay factors, peak 1, at time t since the end of warm-up w, over the
 * horizon T = epochs - w, floor f (Goyal et al. 2017 warm up, then decay
 * over the rest of training; without warm-up w = 0 and t, T are exact):
 *   constant 1
 *   step     gamma^(number of milestones <= epoch)  (He et al. 2016's 30/60/90;
 *            the milestones are absolute epochs, warm-up or not)
 *   exp      gamma^t
 *   poly     f + (1 - f)(1 - min(t, T)/T)^power  (Chen et al. 2017, DeepLab)
 *   cosine   f + (1 - f)(1 + cos(pi min(t, T)/T))/2  (SGDR without restarts)
 *   sgdr, cyclic, onecycle: see above, on t and T. */
double sched_decay_factor(const struct sched_config *c, double epoch)
{
    /* time before the start is the start */
    if (epoch < 0)
        epoch = 0;
    if (c->decay == DECAY_STEP)
        return step_decay(c, epoch);
    double w = sched_warmup_end(c);
    double t = epoch - w, T = c->epochs - w, f = c->floor;
    if (t < 0)
        t = 0;
    switch (c->decay) {
    case DECAY_EXP:
        return pow(c->gamma, t);
    case DECAY_POLY:
        return f + (1.0 - f) * pow(1.0 - share(t, T), c->power);
    case DECAY_COSINE:
        return cosine_anneal(f, share(t, T));
    case DECAY_SGDR:
        return sgdr(c, t);
    case DECAY_CYCLIC:
        return cyclic(c, t);
    case DECAY_ONECYCLE:
        return onecycle(c, t, T);
    case DECAY_CONSTANT:
    default:
        return 1.0;
    }
}

bool sched_shape_needs_length(const struct sched_config *c)
{
    return c->decay == DECAY_POLY || c->decay == DECAY_COSINE || c->decay == DECAY_ONECYCLE;
}

const char *sched_decay_name(enum lr_decay d)
{
    static const char *names[] = { [DECAY_CONSTANT] = "constant", [DECAY_STEP] = "step",
                                   [DECAY_EXP] = "exp",           [DECAY_POLY] = "poly",
                                   [DECAY_COSINE] = "cosine",     [DECAY_SGDR] = "sgdr",
                                   [DECAY_CYCLIC] = "cyclic",     [DECAY_ONECYCLE] = "onecycle" };
    if ((int)d < DECAY_CONSTANT || (int)d > DECAY_ONECYCLE)
        return "?";
    return names[d];
}

/* lr = base_lr x scale(B(t)) x warm-up(t, step) x decay(t); the warm-up
 * multiplies every decay kind, one-cycle included (whose rise is a warm-up of
 * its own, so users normally leave --warmup-* at 0 with it). */
double sched_lr_at(const struct sched_config *c, double t, long step)
{
    return c->base_lr * sched_scale(c, sched_batch_at(c, t)) * sched_warmup_factor(c, t, step) *
           sched_decay_factor(c, t);
}

/* Smith 2018 cycles momentum against the rate: high momentum while the rate
 * is low, low while it is high. With the same cosine shape as the rate:
 *   p < a:  hi - (hi - lo)(1 - cos(pi p/a))/2           (hi -> lo)
 *   p >= a: lo + (hi - lo)(1 - cos(pi (p - a)/(1 - a)))/2 (lo -> hi) */
double sched_momentum_at(const struct sched_config *c, double t)
{
    if (c->decay != DECAY_ONECYCLE)
        return c->momentum;
    /* on the rate's clock: from the end of warm-up */
    double w = sched_warmup_end(c);
    double p = share(t < w ? 0.0 : t - w, c->epochs - w), a = c->onecycle_pct;
    double hi = c->momentum, lo = c->momentum_min;
    if (p < a)
        return hi - (hi - lo) * (1.0 - cos(M_PI * p / a)) / 2.0;
    return lo + (hi - lo) * (1.0 - cos(M_PI * (p - a) / (1.0 - a))) / 2.0;
}

/* ---- lists -------------------------------------------------------------------- */

/* The item starting at p runs to the next comma or the end of the text. */
static size_t item_length(const char *p)
{
    const char *comma = strchr(p, ',');
    return comma ? (size_t)(comma - p) : strlen(p);
}

/* Moves *p past an item of len characters and the comma after it; -1 when
 * a comma ends the list (an empty last item). */
static int skip_separator(const char **p, size_t len)
{
    *p += len;
    if (**p != ',')
        return 0;
    (*p)++;
    while (**p == ' ')
        (*p)++;
    return **p ? 0 : -1;
}

/* Reads a finite number that must end exactly at `stop` (item end or ':'). */
static int read_epoch(const char *p, const char *stop, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno || !isfinite(v))
        return -1;
    while (end < stop && *end == ' ')
        end++;
    if (end != stop)
        return -1;
    *out = v;
    return 0;
}

/* Both parsers fill the config only when the whole list is good, so a bad
 * list leaves the previous one in place. Spaces around items are allowed. */
int sched_parse_milestones(struct sched_config *c, const char *text, char *err, size_t errlen)
{
    double v[SCHED_MAX_MILESTONES];
    int n = 0;
    const char *p = text ? text : "";
    while (*p == ' ')
        p++;
    while (*p) {
        size_t len = item_length(p);
        if (n == SCHED_MAX_MILESTONES)
            FAIL("--lr-milestones: more than %d milestones: allowed at most %d epochs",
                 SCHED_MAX_MILESTONES, SCHED_MAX_MILESTONES);
        if (read_epoch(p, p + len, &v[n]))
            FAIL("--lr-milestones: '%.*s' (item %d) is not an epoch: allowed numbers "
                 "separated by commas, e.g. 30,60,80",
                 (int)len, p, n + 1);
        n++;
        if (skip_separator(&p, len))
            FAIL("--lr-milestones: nothing after the last comma: allowed numbers "
                 "separated by commas, e.g. 30,60,80");
    }
    c->nmilestones = n;
    memcpy(c->milestones, v, (size_t)n * sizeof v[0]);
    return 0;
}

int sched_parse_batch_list(struct sched_config *c, const char *text, char *err, size_t errlen)
{
    double e[SCHED_MAX_MILESTONES];
    int b[SCHED_MAX_MILESTONES];
    int n = 0;
    const char *p = text ? text : "";
    while (*p == ' ')
        p++;
    while (*p) {
        size_t len = item_length(p);
        const char *colon = memchr(p, ':', len);
        if (n == SCHED_MAX_MILESTONES)
            FAIL("--batch-schedule: more than %d changes: allowed at most %d EPOCH:BATCH items",
                 SCHED_MAX_MILESTONES, SCHED_MAX_MILESTONES);
        if (!colon)
            FAIL("--batch-schedule: '%.*s' (item %d) is not EPOCH:BATCH: allowed e.g. "
                 "5:512,10:1024",
                 (int)len, p, n + 1);
        if (read_epoch(p, colon, &e[n]))
            FAIL("--batch-schedule: '%.*s' (item %d): the epoch before the ':' is not a "
                 "number: allowed EPOCH:BATCH, e.g. 5:512",
                 (int)len, p, n + 1);
        const char *q = colon + 1, *stop = p + len;
        char *end;
        errno = 0;
        long v = strtol(q, &end, 10);
        while (end < stop && *end == ' ')
            end++;
        if (end == q || end != stop || errno || v < 1 || v > SCHED_MAX_BATCH)
            FAIL("--batch-schedule: '%.*s' (item %d): the batch after the ':' is not a "
                 "whole number from 1 to %ld: allowed EPOCH:BATCH, e.g. 5:512",
                 (int)len, p, n + 1, SCHED_MAX_BATCH);
        b[n++] = (int)v;
        if (skip_separator(&p, len))
            FAIL("--batch-schedule: nothing after the last comma: allowed EPOCH:BATCH "
                 "items separated by commas, e.g. 5:512,10:1024");
    }
    c->nbatch = n;
    memcpy(c->batch_epochs, e, (size_t)n * sizeof e[0]);
    memcpy(c->batch_sizes, b, (size_t)n * sizeof b[0]);
    return 0;
}
