/* Tests of the schedules against their formulas at chosen points, of their
 * defaults and bounds (in the option table of `ddtrain train`), validation
 * and list parsers, and of the gradient noise scale estimator on synthetic
 * gradients whose noise is known. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "noise.h"
#include "schedule.h"
#include "suites.h"
#include "train.h"

/* Values computed by hand from the formulas; only rounding separates them. */
#define EQ(a, b) ck_assert_double_eq_tol((a), (b), 1e-12)

static struct sched_config c;

/* The schedule as the option table's defaults leave it (the table is where
 * the defaults live). */
static void sched_from_table(struct sched_config *s)
{
    static struct train_config tc;
    train_config_defaults(&tc);
    *s = tc.sched;
}

/* 100 epochs make the fractions of training easy to read in the tests. */
static void setup(void)
{
    char err[256] = "";
    sched_from_table(&c);
    c.epochs = 100;
    ck_assert_msg(sched_validate(&c, err, sizeof err) == 0, "fixture invalid: %s", err);
}

/* Cosine annealing written out again here rather than borrowed from the code
 * under test. */
static double cosine_from(double floor, double x)
{
    return floor + (1 - floor) * (1 + cos(M_PI * x)) / 2;
}

/* ---- defaults and scaling ------------------------------------------------------ */

START_TEST(test_defaults)
{
    struct sched_config d;
    char err[256] = "";
    sched_from_table(&d);
    EQ(d.base_lr, 0.1);
    ck_assert_int_eq(d.scaling, SCALE_NONE);
    ck_assert_int_eq(d.ref_batch, 256);
    EQ(d.epochs, 10);
    EQ(d.warmup_epochs, 0);
    ck_assert_int_eq(d.warmup_steps, 0);
    EQ(d.warmup_start, -1);
    ck_assert_int_eq(d.decay, DECAY_CONSTANT);
    EQ(d.gamma, 0.1);
    ck_assert_int_eq(d.nmilestones, 0);
    EQ(d.power, 1);
    EQ(d.floor, 0);
    EQ(d.sgdr_t0, 10);
    EQ(d.sgdr_tmult, 1);
    EQ(d.cycle_epochs, 2);
    EQ(d.onecycle_pct, 0.3);
    EQ(d.onecycle_div, 25);
    EQ(d.onecycle_final_div, 1e4);
    EQ(d.momentum, 0.9);
    EQ(d.momentum_min, 0.85);
    ck_assert_int_eq(d.base_batch, 256);
    ck_assert_int_eq(d.nbatch, 0);
    ck_assert(d.batch_scales_lr);
    ck_assert_int_eq(sched_validate(&d, err, sizeof err), 0);
    /* constant 0.1 throughout, momentum and batch fixed */
    EQ(sched_lr_at(&d, 0, 0), 0.1);
    EQ(sched_lr_at(&d, 7.3, 1234), 0.1);
    EQ(sched_momentum_at(&d, 5), 0.9);
    ck_assert_int_eq(sched_batch_at(&d, 9.5), 256);
}
END_TEST

struct scale_case {
    enum lr_scaling scaling;
    int base_batch, B;
    bool batch_scales_lr;
    double want; /* B / 256, its square root, or 1 */
};

static const struct scale_case scale_cases[] = {
    { SCALE_NONE, 256, 1024, true, 1.0 },
    { SCALE_LINEAR, 256, 1024, true, 4.0 },    /* Goyal: 4x batch, 4x rate */
    { SCALE_LINEAR, 256, 128, true, 0.5 },
    { SCALE_LINEAR, 256, 256, true, 1.0 },
    { SCALE_SQRT, 256, 1024, true, 2.0 },      /* Hoffer: 4x batch, 2x rate */
    { SCALE_SQRT, 256, 64, true, 0.5 },
    { SCALE_LINEAR, 512, 2048, false, 2.0 },   /* scale stays at base_batch 512 */
    { SCALE_SQRT, 512, 2048, false, M_SQRT2 },
    { SCALE_NONE, 512, 2048, false, 1.0 },
};

START_TEST(test_scale)
{
    const struct scale_case *k = &scale_cases[_i];
    c.scaling = k->scaling;
    c.base_batch = k->base_batch;
    c.batch_scales_lr = k->batch_scales_lr;
    EQ(sched_scale(&c, k->B), k->want);
}
END_TEST

/* ---- warm-up -------------------------------------------------------------------- */

START_TEST(test_warmup_epochs)
{
    c.base_batch = 2048;
    c.scaling = SCALE_LINEAR; /* scale 8: peak 0.8, unscaled 0.1 */
    c.warmup_epochs = 5;
    /* start = 1/8, so the rate begins at the unscaled 0.1 */
    EQ(sched_warmup_factor(&c, 0, 0), 1.0 / 8);
    EQ(sched_lr_at(&c, 0, 0), 0.1);
    EQ(sched_lr_at(&c, 2.5, 0), 0.8 * (1.0 / 8 + (1 - 1.0 / 8) * 0.5));
    EQ(sched_lr_at(&c, 1, 0), 0.8 * (1.0 / 8 + (1 - 1.0 / 8) * 0.2));
    EQ(sched_lr_at(&c, 5, 0), 0.8); /* the end of warm-up is the peak */
    EQ(sched_lr_at(&c, 50, 0), 0.8);
    c.warmup_start = 0; /* from zero instead */
    EQ(sched_lr_at(&c, 0, 0), 0.0);
    EQ(sched_lr_at(&c, 1, 0), 0.8 * 0.2);
    c.warmup_start = 0.5;
    EQ(sched_lr_at(&c, 2.5, 0), 0.8 * 0.75);
}
END_TEST

START_TEST(test_warmup_steps)
{
    c.warmup_epochs = 5;
    c.warmup_steps = 100; /* steps win over epochs */
    c.warmup_start = 0;
    EQ(sched_warmup_factor(&c, 99, 0), 0.0);
    EQ(sched_warmup_factor(&c, 99, 25), 0.25);
    EQ(sched_warmup_factor(&c, 0, 100), 1.0);
    EQ(sched_warmup_factor(&c, 0, 1000), 1.0);
    EQ(sched_lr_at(&c, 0.1, 50), 0.05);
    /* no scaling: the unscaled start is the peak, so a default start is flat */
    c.warmup_start = -1;
    EQ(sched_warmup_factor(&c, 0, 0), 1.0);
    c.warmup_steps = 0;
    c.warmup_epochs = 0;
    EQ(sched_warmup_factor(&c, 0, 0), 1.0);
}
END_TEST

START_TEST(test_warmup_times_decay)
{
    /* the warm-up multiplies the decay, which starts where the warm-up ends:
     * scale 4, 5 epochs of warm-up, cosine over the 95 epochs after it */
    c.base_batch = 1024;
    c.scaling = SCALE_LINEAR;
    c.warmup_epochs = 5;
    c.decay = DECAY_COSINE;
    double t = 2.5, warm = 0.25 + 0.75 * 0.5;
    EQ(sched_lr_at(&c, t, 0), 0.1 * 4 * warm); /* the decay has not started */
    EQ(sched_lr_at(&c, 5, 0), 0.1 * 4);        /* the peak */
    EQ(sched_lr_at(&c, 52.5, 0), 0.1 * 4 * 0.5);
}
END_TEST

/* The command, --lr-scaling linear --batch-size 1024 --warmup-epochs 1
 * --lr-decay cosine --epochs 3, against Goyal et al.'s warm-up then cosine
 * written out by hand: lr = 0.4 (1/4 + 3/4 t) for t < 1, then
 * 0.4 (1 + cos(pi (t - 1) / 2)) / 2. */
START_TEST(test_warmup_then_cosine_formula)
{
    c.epochs = 3;
    c.base_batch = 1024;
    c.scaling = SCALE_LINEAR;
    c.warmup_epochs = 1;
    c.decay = DECAY_COSINE;
    static const double ts[] = { 0, 0.25, 0.5, 0.99, 1, 1.25, 1.5, 2, 2.5, 2.99, 3 };
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        double t = ts[i];
        double want = t < 1 ? 0.4 * (0.25 + 0.75 * t) : 0.4 * (1 + cos(M_PI * (t - 1) / 2)) / 2;
        ck_assert_msg(fabs(sched_lr_at(&c, t, 0) - want) < 1e-12, "t %g: lr %.17g, want %.17g",
                      t, sched_lr_at(&c, t, 0), want);
    }
    EQ(sched_lr_at(&c, 1, 0), 0.4); /* exactly the scaled rate at the end of warm-up */
    EQ(sched_lr_at(&c, 3, 0), 0.0); /* and the cosine's final value at the end */
    c.floor = 0.01;
    EQ(sched_lr_at(&c, 3, 0), 0.4 * 0.01);
    EQ(sched_lr_at(&c, 2, 0), 0.4 * (0.01 + 0.99 * 0.5));
}
END_TEST

/* Every kind but step runs on the time since the warm-up ended: 10 epochs of
 * warm-up out of 100, so the decays' horizon is 90 epochs. */
START_TEST(test_warmup_then_each_decay)
{
    char err[256];
    c.warmup_epochs = 10;
    c.warmup_start = 0;
    c.decay = DECAY_POLY;
    c.power = 2;
    EQ(sched_decay_factor(&c, 5), 1.0);
    EQ(sched_decay_factor(&c, 55), 0.25);
    EQ(sched_decay_factor(&c, 100), 0.0);
    c.decay = DECAY_EXP;
    c.gamma = 0.5;
    EQ(sched_decay_factor(&c, 10), 1.0);
    EQ(sched_decay_factor(&c, 12), 0.25);
    c.decay = DECAY_SGDR;
    c.sgdr_t0 = 10;
    c.sgdr_tmult = 1;
    EQ(sched_decay_factor(&c, 15), 0.5);
    EQ(sched_decay_factor(&c, 20), 1.0); /* the first restart, one period after warm-up */
    c.decay = DECAY_CYCLIC;
    c.cycle_epochs = 2;
    c.floor = 0.2;
    EQ(sched_decay_factor(&c, 10), 0.2);
    EQ(sched_decay_factor(&c, 12), 1.0);
    c.floor = 0;
    c.decay = DECAY_ONECYCLE;
    double lo = 1.0 / 25, end = 1.0 / (25 * 1e4);
    EQ(sched_decay_factor(&c, 10), lo);
    EQ(sched_decay_factor(&c, 10 + 0.3 * 90), 1.0);
    EQ(sched_decay_factor(&c, 100), end);
    c.momentum = 0.95;
    c.momentum_min = 0.85;
    EQ(sched_momentum_at(&c, 10 + 0.3 * 90), 0.85);
    EQ(sched_momentum_at(&c, 100), 0.95);
    /* step decay's milestones stay absolute epochs */
    c.decay = DECAY_STEP;
    c.gamma = 0.1;
    ck_assert_int_eq(sched_parse_milestones(&c, "30,60", err, sizeof err), 0);
    EQ(sched_decay_factor(&c, 29.9), 1.0);
    EQ(sched_decay_factor(&c, 30), 0.1);
    /* a warm-up as long as training leaves the decay at its start */
    c.decay = DECAY_COSINE;
    c.warmup_epochs = 100;
    EQ(sched_decay_factor(&c, 100), 1.0);
}
END_TEST

static long ten_steps(long e, void *user)
{
    (void)user;
    return e < 2 ? 10 : 20; /* a batch that halves from epoch 2 on */
}

/* A warm-up in steps ends at the epoch position of its last step. */
START_TEST(test_warmup_steps_then_decay)
{
    c.decay = DECAY_COSINE;
    c.warmup_steps = 25;
    sched_set_warmup_steps_end(&c, ten_steps, NULL);
    EQ(sched_warmup_end(&c), 2.25); /* 10 + 10 + 5 of 20 */
    EQ(sched_decay_factor(&c, 2.25), 1.0);
    EQ(sched_decay_factor(&c, 2.25 + 97.75 / 2), 0.5);
    c.warmup_steps = 5;
    sched_set_warmup_steps_end(&c, ten_steps, NULL);
    EQ(sched_warmup_end(&c), 0.5);
    c.warmup_steps = 100000; /* longer than training */
    sched_set_warmup_steps_end(&c, ten_steps, NULL);
    EQ(sched_warmup_end(&c), 100);
}
END_TEST

/* ---- decay kinds ---------------------------------------------------------------- */

START_TEST(test_step)
{
    char err[256];
    c.decay = DECAY_STEP;
    c.gamma = 0.1;
    ck_assert_int_eq(sched_parse_milestones(&c, "30,60,80", err, sizeof err), 0);
    EQ(sched_decay_factor(&c, 0), 1.0);
    EQ(sched_decay_factor(&c, 29.999), 1.0);
    EQ(sched_decay_factor(&c, 30), 0.1); /* at a milestone the new rate holds */
    EQ(sched_decay_factor(&c, 45), 0.1);
    EQ(sched_decay_factor(&c, 60), 0.01);
    EQ(sched_decay_factor(&c, 79.5), 0.01);
    EQ(sched_decay_factor(&c, 80), 0.001);
    EQ(sched_decay_factor(&c, 100), 0.001);
    EQ(sched_lr_at(&c, 65, 0), 0.1 * 0.01);
    c.gamma = 0.5;
    EQ(sched_decay_factor(&c, 61), 0.25);
}
END_TEST

START_TEST(test_exp)
{
    c.decay = DECAY_EXP;
    c.gamma = 0.5;
    EQ(sched_decay_factor(&c, 0), 1.0);
    EQ(sched_decay_factor(&c, 1), 0.5);
    EQ(sched_decay_factor(&c, 3), 0.125);
    EQ(sched_decay_factor(&c, 2.5), 0.25 / M_SQRT2); /* fractional epochs decay smoothly */
    c.gamma = 0.95;
    EQ(sched_lr_at(&c, 10, 0), 0.1 * pow(0.95, 10));
}
END_TEST

START_TEST(test_poly)
{
    c.decay = DECAY_POLY;
    c.power = 2;
    EQ(sched_decay_factor(&c, 0), 1.0);
    EQ(sched_decay_factor(&c, 50), 0.25);
    EQ(sched_decay_factor(&c, 90), 0.01);
    EQ(sched_decay_factor(&c, 100), 0.0);
    EQ(sched_decay_factor(&c, 150), 0.0); /* clamped past the end */
    c.power = 1;
    c.floor = 0.2;
    EQ(sched_decay_factor(&c, 25), 0.2 + 0.8 * 0.75);
    EQ(sched_decay_factor(&c, 100), 0.2);
    c.power = 0.5;
    c.floor = 0;
    EQ(sched_decay_factor(&c, 75), 0.5);
}
END_TEST

START_TEST(test_cosine)
{
    c.decay = DECAY_COSINE;
    EQ(sched_decay_factor(&c, 0), 1.0);   /* start */
    EQ(sched_decay_factor(&c, 50), 0.5);  /* middle */
    EQ(sched_decay_factor(&c, 100), 0.0); /* end */
    c.floor = 0.1;
    EQ(sched_decay_factor(&c, 0), 1.0);
    EQ(sched_decay_factor(&c, 50), 0.1 + 0.9 * 0.5);
    EQ(sched_decay_factor(&c, 25), 0.1 + 0.9 * (1 + M_SQRT1_2) / 2);
    EQ(sched_decay_factor(&c, 100), 0.1);
    EQ(sched_decay_factor(&c, 120), 0.1); /* stays at the floor */
    EQ(sched_lr_at(&c, 50, 0), 0.1 * 0.55);
}
END_TEST

START_TEST(test_sgdr)
{
    c.decay = DECAY_SGDR;
    c.sgdr_t0 = 10;
    c.sgdr_tmult = 1;
    EQ(sched_decay_factor(&c, 0), 1.0);
    EQ(sched_decay_factor(&c, 5), 0.5);
    EQ(sched_decay_factor(&c, 10), 1.0); /* right at a restart: the peak */
    EQ(sched_decay_factor(&c, 25), 0.5);
    EQ(sched_decay_factor(&c, 90), 1.0);
    ck_assert_double_le(sched_decay_factor(&c, 9.999), 1e-6); /* the bottom just before */

    c.sgdr_tmult = 2; /* periods 10, 20, 40: restarts at 10, 30, 70 */
    EQ(sched_decay_factor(&c, 10), 1.0);
    EQ(sched_decay_factor(&c, 20), 0.5); /* the middle of the 20-epoch period */
    EQ(sched_decay_factor(&c, 15), cosine_from(0, 5.0 / 20));
    EQ(sched_decay_factor(&c, 30), 1.0);
    EQ(sched_decay_factor(&c, 50), 0.5); /* the middle of the 40-epoch period */
    EQ(sched_decay_factor(&c, 70), 1.0);
    ck_assert_double_le(sched_decay_factor(&c, 29.999), 1e-6);

    c.floor = 0.2;
    EQ(sched_decay_factor(&c, 5), 0.2 + 0.8 * 0.5);
    EQ(sched_decay_factor(&c, 30), 1.0);
    c.sgdr_tmult = 1.5; /* periods 10, 15: second restart at 25 */
    EQ(sched_decay_factor(&c, 25), 1.0);
    EQ(sched_decay_factor(&c, 17.5), 0.2 + 0.8 * 0.5);
}
END_TEST

START_TEST(test_cyclic)
{
    c.decay = DECAY_CYCLIC;
    c.cycle_epochs = 2;
    c.floor = 0.2;
    EQ(sched_decay_factor(&c, 0), 0.2); /* bottom */
    EQ(sched_decay_factor(&c, 1), 0.6);
    EQ(sched_decay_factor(&c, 2), 1.0); /* top */
    EQ(sched_decay_factor(&c, 3), 0.6);
    EQ(sched_decay_factor(&c, 4), 0.2); /* bottom again */
    EQ(sched_decay_factor(&c, 4.5), 0.2 + 0.8 * 0.25);
    EQ(sched_decay_factor(&c, 6), 1.0); /* top of the second cycle */
    c.floor = 0;
    c.cycle_epochs = 5;
    EQ(sched_decay_factor(&c, 2.5), 0.5);
    EQ(sched_decay_factor(&c, 10), 0.0);
}
END_TEST

START_TEST(test_onecycle)
{
    c.decay = DECAY_ONECYCLE;
    c.onecycle_pct = 0.3;
    c.onecycle_div = 25;
    c.onecycle_final_div = 1e4;
    double lo = 1.0 / 25, end = 1.0 / (25 * 1e4);
    EQ(sched_decay_factor(&c, 0), lo);              /* start: 1/div */
    EQ(sched_decay_factor(&c, 15), lo + (1 - lo) * 0.5);
    EQ(sched_decay_factor(&c, 7.5), lo + (1 - lo) * (1 - M_SQRT1_2) / 2);
    EQ(sched_decay_factor(&c, 30), 1.0);            /* at pct: the peak */
    EQ(sched_decay_factor(&c, 65), end + (1 - end) * 0.5);
    EQ(sched_decay_factor(&c, 47.5), end + (1 - end) * (1 + M_SQRT1_2) / 2);
    EQ(sched_decay_factor(&c, 100), end);           /* end: 1/(div final_div) */
    EQ(sched_lr_at(&c, 30, 0), 0.1);
}
END_TEST

START_TEST(test_onecycle_momentum)
{
    c.decay = DECAY_ONECYCLE;
    c.momentum = 0.95;
    c.momentum_min = 0.85;
    EQ(sched_momentum_at(&c, 0), 0.95);   /* high while the rate is low */
    EQ(sched_momentum_at(&c, 7.5), 0.95 - 0.10 * (1 - M_SQRT1_2) / 2);
    EQ(sched_momentum_at(&c, 15), 0.90);
    EQ(sched_momentum_at(&c, 30), 0.85);  /* low at the peak rate */
    EQ(sched_momentum_at(&c, 65), 0.90);
    EQ(sched_momentum_at(&c, 100), 0.95); /* back up as the rate falls */
    c.decay = DECAY_COSINE;
    EQ(sched_momentum_at(&c, 15), 0.95); /* only one-cycle moves momentum */
    EQ(sched_momentum_at(&c, 30), 0.95);
}
END_TEST

/* ---- batch-size schedule ------------------------------------------------------- */

START_TEST(test_batch_schedule)
{
    char err[256];
    c.base_batch = 256;
    c.scaling = SCALE_LINEAR;
    ck_assert_int_eq(sched_parse_batch_list(&c, "10:512,20:1024", err, sizeof err), 0);
    ck_assert_int_eq(sched_validate(&c, err, sizeof err), 0);
    ck_assert_int_eq(sched_batch_at(&c, 0), 256);
    ck_assert_int_eq(sched_batch_at(&c, 9.999), 256);
    ck_assert_int_eq(sched_batch_at(&c, 10), 512); /* from the milestone on */
    ck_assert_int_eq(sched_batch_at(&c, 19.5), 512);
    ck_assert_int_eq(sched_batch_at(&c, 20), 1024);
    ck_assert_int_eq(sched_batch_at(&c, 99), 1024);
    /* linear: the rate follows B / 256 */
    EQ(sched_lr_at(&c, 5, 0), 0.1);
    EQ(sched_lr_at(&c, 15, 0), 0.2);
    EQ(sched_lr_at(&c, 25, 0), 0.4);
    /* sqrt: it follows sqrt(B / 256) */
    c.scaling = SCALE_SQRT;
    EQ(sched_lr_at(&c, 15, 0), 0.1 * M_SQRT2);
    EQ(sched_lr_at(&c, 25, 0), 0.2);
    /* "increase the batch instead of decaying the rate": it stays put */
    c.scaling = SCALE_LINEAR;
    c.batch_scales_lr = false;
    EQ(sched_lr_at(&c, 5, 0), 0.1);
    EQ(sched_lr_at(&c, 15, 0), 0.1);
    EQ(sched_lr_at(&c, 25, 0), 0.1);
    c.base_batch = 512; /* ... at the scaled rate of the first batch */
    EQ(sched_lr_at(&c, 25, 0), 0.2);
}
END_TEST

START_TEST(test_batch_schedule_warmup)
{
    char err[256];
    /* the warm-up start is the unscaled rate at the batch then in force */
    c.scaling = SCALE_LINEAR;
    c.warmup_epochs = 10;
    ck_assert_int_eq(sched_parse_batch_list(&c, "0:1024", err, sizeof err), 0);
    EQ(sched_lr_at(&c, 0, 0), 0.1);
    EQ(sched_lr_at(&c, 5, 0), 0.4 * (0.25 + 0.75 * 0.5));
    EQ(sched_lr_at(&c, 10, 0), 0.4);
}
END_TEST

/* ---- validation ---------------------------------------------------------------- */

struct bad {
    void (*set)(struct sched_config *);
    const char *option; /* the name the user typed, at the start of the message */
    const char *says;   /* a piece of what went wrong or what is allowed */
};

static void warmup_too_long(struct sched_config *s) { s->warmup_epochs = 101; }
static void milestones_decreasing(struct sched_config *s)
{
    s->decay = DECAY_STEP;
    s->nmilestones = 2;
    s->milestones[0] = 50;
    s->milestones[1] = 40;
}
static void milestones_repeated(struct sched_config *s)
{
    s->nmilestones = 2;
    s->milestones[0] = s->milestones[1] = 30;
}
static void milestone_after_end(struct sched_config *s)
{
    s->nmilestones = 1;
    s->milestones[0] = 100.5;
}
static void milestone_negative(struct sched_config *s)
{
    s->nmilestones = 1;
    s->milestones[0] = -1;
}
static void step_without_milestones(struct sched_config *s) { s->decay = DECAY_STEP; }
static void momentum_min_above(struct sched_config *s)
{
    s->decay = DECAY_ONECYCLE;
    s->momentum = 0.8;
    s->momentum_min = 0.9;
}
static void batch_epochs_repeated(struct sched_config *s)
{
    s->nbatch = 2;
    s->batch_epochs[0] = s->batch_epochs[1] = 5;
    s->batch_sizes[0] = s->batch_sizes[1] = 512;
}
static void batch_epochs_decreasing(struct sched_config *s)
{
    batch_epochs_repeated(s);
    s->batch_epochs[1] = 4;
}
static void batch_size_zero(struct sched_config *s)
{
    s->nbatch = 1;
    s->batch_epochs[0] = 5;
    s->batch_sizes[0] = 0;
}
static void batch_epoch_after_end(struct sched_config *s)
{
    batch_size_zero(s);
    s->batch_sizes[0] = 512;
    s->batch_epochs[0] = 100;
}

/* Contradictions between options, and lists that do not fit training. */
static const struct bad bads[] = {
    { warmup_too_long, "--warmup-epochs", "length of training" },
    { milestones_decreasing, "--lr-milestones", "40 after 50: allowed strictly increasing" },
    { milestones_repeated, "--lr-milestones", "strictly increasing" },
    { milestone_after_end, "--lr-milestones", "100.5 is outside training" },
    { milestone_negative, "--lr-milestones", "-1 is outside training" },
    { step_without_milestones, "--lr-milestones", "none given for --lr-decay step" },
    { momentum_min_above, "--momentum-min", "up to --momentum" },
    { batch_epochs_repeated, "--batch-schedule", "strictly increasing" },
    { batch_epochs_decreasing, "--batch-schedule", "epoch 4 after 5" },
    { batch_size_zero, "--batch-schedule", "batch 0 at epoch 5" },
    { batch_epoch_after_end, "--batch-schedule", "outside training" },
};

START_TEST(test_validation_rejects)
{
    const struct bad *b = &bads[_i];
    char err[256] = "";
    b->set(&c);
    ck_assert_int_eq(sched_validate(&c, err, sizeof err), -1);
    /* the option comes first and is followed by ':', so --lr is not matched
     * by --lr-gamma */
    size_t n = strlen(b->option);
    ck_assert_msg(strncmp(err, b->option, n) == 0 && err[n] == ':', "case %d: '%s' does not begin with %s:",
                  _i, err, b->option);
    ck_assert_msg(strstr(err, b->says) != NULL, "case %d: '%s' does not say '%s'", _i, err,
                  b->says);
    ck_assert_msg(strstr(err, "allowed") != NULL, "case %d: '%s' does not say what is allowed",
                  _i, err);
}
END_TEST

/* Each option's own range is the option table's to check, before the
 * schedule sees it. */
struct bad_value {
    const char *option, *value;
    const char *says; /* what is allowed */
};

static const struct bad_value bad_values[] = {
    { "lr", "0", "(0, 100]" },
    { "lr", "nan", "(0, 100]" },
    { "lr-scaling", "cube", "none, linear, sqrt" },
    { "ref-batch", "0", "from 1" },
    { "epochs", "0", "from 1" },
    { "warmup-epochs", "-1", "[0, " },
    { "warmup-steps", "-5", "from 0" },
    { "warmup-start", "1.5", "[-1, 1]" },
    { "lr-decay", "linear", "cosine" },
    { "lr-gamma", "0", "(0, 1]" },
    { "lr-gamma", "1.5", "(0, 1]" },
    { "lr-power", "0", "(0, " },
    { "lr-floor", "1", "[0, 0.999]" },
    { "lr-floor", "-0.1", "[0, 0.999]" },
    { "sgdr-t0", "0", "(0, " },
    { "sgdr-tmult", "0.5", "[1, " },
    { "cycle-epochs", "0", "(0, " },
    { "onecycle-pct", "0", "(0, 0.999]" },
    { "onecycle-pct", "1", "(0, 0.999]" },
    { "onecycle-div", "0.5", "[1, " },
    { "onecycle-final-div", "0.9", "[1, " },
    { "momentum", "1", "[0, 0.9999]" },
    { "momentum-min", "-0.1", "[0, 0.9999]" },
    { "batch-size", "0", "from 1" },
};

START_TEST(test_table_rejects)
{
    const struct bad_value *b = &bad_values[_i];
    static struct train_config tc;
    char err[DDT_ERRLEN] = "", want[64];
    train_config_defaults(&tc);
    ck_assert_int_eq(config_set(train_options, &tc, b->option, b->value, err, sizeof err), -1);
    snprintf(want, sizeof want, "--%s: ", b->option);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "case %d: '%s' does not begin with %s",
                  _i, err, want);
    ck_assert_msg(strstr(err, "allowed") && strstr(err, b->says),
                  "case %d: '%s' does not say allowed ... '%s'", _i, err, b->says);
}
END_TEST

/* The table writes the schedule's own fields: nothing copies them. */
START_TEST(test_table_targets)
{
    static struct train_config tc;
    char err[DDT_ERRLEN];
    train_config_defaults(&tc);
    static const char *const set[][2] = {
        { "lr", "0.25" }, { "lr-scaling", "sqrt" }, { "ref-batch", "128" }, { "epochs", "7" },
        { "warmup-epochs", "1.5" }, { "warmup-steps", "9" }, { "warmup-start", "0.2" },
        { "lr-decay", "onecycle" }, { "lr-gamma", "0.5" }, { "lr-power", "2" },
        { "lr-floor", "0.01" }, { "sgdr-t0", "3" }, { "sgdr-tmult", "2" },
        { "cycle-epochs", "4" }, { "onecycle-pct", "0.4" }, { "onecycle-div", "10" },
        { "onecycle-final-div", "100" }, { "momentum", "0.95" }, { "momentum-min", "0.8" },
        { "batch-size", "64" }, { "batch-scales-lr", "false" },
    };
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        ck_assert_msg(config_set(train_options, &tc, set[i][0], set[i][1], err, sizeof err) == 0, "%s", err);
    const struct sched_config *s = &tc.sched;
    EQ(s->base_lr, 0.25);
    ck_assert_int_eq(s->scaling, SCALE_SQRT);
    ck_assert_int_eq(s->ref_batch, 128);
    ck_assert_int_eq(s->epochs, 7);
    EQ(s->warmup_epochs, 1.5);
    ck_assert_int_eq(s->warmup_steps, 9);
    EQ(s->warmup_start, 0.2);
    ck_assert_int_eq(s->decay, DECAY_ONECYCLE);
    EQ(s->gamma, 0.5);
    EQ(s->power, 2);
    EQ(s->floor, 0.01);
    EQ(s->sgdr_t0, 3);
    EQ(s->sgdr_tmult, 2);
    EQ(s->cycle_epochs, 4);
    EQ(s->onecycle_pct, 0.4);
    EQ(s->onecycle_div, 10);
    EQ(s->onecycle_final_div, 100);
    EQ(s->momentum, 0.95);
    EQ(s->momentum_min, 0.8);
    ck_assert_int_eq(s->base_batch, 64);
    ck_assert(!s->batch_scales_lr);
}
END_TEST

START_TEST(test_validation_accepts_edges)
{
    char err[256] = "";
    c.warmup_epochs = 100;  /* as long as training */
    c.warmup_start = 1;
    c.decay = DECAY_STEP;
    c.gamma = 1;
    c.nmilestones = 2;
    c.milestones[0] = 0;    /* both ends of training */
    c.milestones[1] = 100;
    c.floor = 0;
    c.sgdr_tmult = 1;
    c.onecycle_div = 1;
    c.onecycle_final_div = 1;
    c.momentum = 0;         /* momentum_min 0.85 above it matters only to one-cycle */
    c.nbatch = 1;
    c.batch_epochs[0] = 0;
    c.batch_sizes[0] = 1;
    ck_assert_msg(sched_validate(&c, err, sizeof err) == 0, "%s", err);
    c.decay = DECAY_ONECYCLE;
    c.momentum = c.momentum_min = 0.9;
    ck_assert_msg(sched_validate(&c, err, sizeof err) == 0, "%s", err);
    /* a NULL or empty buffer only loses the message */
    c.warmup_epochs = 101;
    ck_assert_int_eq(sched_validate(&c, NULL, 0), -1);
    ck_assert_int_eq(sched_validate(&c, err, 0), -1);
}
END_TEST

/* ---- list parsers ---------------------------------------------------------------- */

START_TEST(test_parse_milestones_good)
{
    char err[256];
    ck_assert_int_eq(sched_parse_milestones(&c, "30,60,80", err, sizeof err), 0);
    ck_assert_int_eq(c.nmilestones, 3);
    EQ(c.milestones[0], 30);
    EQ(c.milestones[1], 60);
    EQ(c.milestones[2], 80);
    ck_assert_int_eq(sched_parse_milestones(&c, " 2.5 , 1e1 ", err, sizeof err), 0);
    ck_assert_int_eq(c.nmilestones, 2);
    EQ(c.milestones[0], 2.5);
    EQ(c.milestones[1], 10);
    ck_assert_int_eq(sched_parse_milestones(&c, "", err, sizeof err), 0);
    ck_assert_int_eq(c.nmilestones, 0);
    ck_assert_int_eq(
        sched_parse_milestones(&c, "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", err, sizeof err), 0);
    ck_assert_int_eq(c.nmilestones, SCHED_MAX_MILESTONES);
    EQ(c.milestones[15], 16);
}
END_TEST

START_TEST(test_parse_batch_list_good)
{
    char err[256];
    ck_assert_int_eq(sched_parse_batch_list(&c, "5:512,10:1024", err, sizeof err), 0);
    ck_assert_int_eq(c.nbatch, 2);
    EQ(c.batch_epochs[0], 5);
    ck_assert_int_eq(c.batch_sizes[0], 512);
    EQ(c.batch_epochs[1], 10);
    ck_assert_int_eq(c.batch_sizes[1], 1024);
    ck_assert_int_eq(sched_parse_batch_list(&c, "2.5:128", err, sizeof err), 0);
    ck_assert_int_eq(c.nbatch, 1);
    EQ(c.batch_epochs[0], 2.5);
    ck_assert_int_eq(c.batch_sizes[0], 128);
    ck_assert_int_eq(sched_parse_batch_list(&c, "", err, sizeof err), 0);
    ck_assert_int_eq(c.nbatch, 0);
}
END_TEST

struct bad_list {
    bool batch; /* sched_parse_batch_list, else sched_parse_milestones */
    const char *text;
    const char *says;
};

static const struct bad_list bad_lists[] = {
    { false, "30,x", "'x' (item 2) is not an epoch" },
    { false, "30,,60", "'' (item 2) is not an epoch" },
    { false, "30,", "nothing after the last comma" },
    { false, "30 60", "'30 60' (item 1)" },
    { false, "30x", "'30x' (item 1)" },
    { false, "1e999", "'1e999' (item 1)" },
    { false, "nan", "'nan' (item 1)" },
    { false, "5:10", "'5:10' (item 1)" },
    { false, "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "at most 16" },
    { true, "5", "'5' (item 1) is not EPOCH:BATCH" },
    { true, "5:512,10", "'10' (item 2) is not EPOCH:BATCH" },
    { true, "x:512", "'x:512' (item 1): the epoch" },
    { true, ":512", "':512' (item 1): the epoch" },
    { true, "5:0", "'5:0' (item 1): the batch" },
    { true, "5:-3", "'5:-3' (item 1): the batch" },
    { true, "5:", "'5:' (item 1): the batch" },
    { true, "5:51x", "'5:51x' (item 1): the batch" },
    { true, "5:1.5", "'5:1.5' (item 1): the batch" },
    { true, "5:99999999999999999999", "the batch" },
    { true, "5:512,", "nothing after the last comma" },
    { true, "0:1,1:1,2:1,3:1,4:1,5:1,6:1,7:1,8:1,9:1,10:1,11:1,12:1,13:1,14:1,15:1,16:1",
      "at most 16" },
};

START_TEST(test_parse_lists_bad)
{
    const struct bad_list *b = &bad_lists[_i];
    char err[256] = "";
    const char *option = b->batch ? "--batch-schedule:" : "--lr-milestones:";
    /* a good list first: a bad one must leave it in place */
    ck_assert_int_eq(sched_parse_milestones(&c, "7", err, sizeof err), 0);
    ck_assert_int_eq(sched_parse_batch_list(&c, "3:64", err, sizeof err), 0);
    int r = b->batch ? sched_parse_batch_list(&c, b->text, err, sizeof err)
                     : sched_parse_milestones(&c, b->text, err, sizeof err);
    ck_assert_int_eq(r, -1);
    ck_assert_msg(strncmp(err, option, strlen(option)) == 0, "'%s' lacks %s", err, option);
    ck_assert_msg(strstr(err, b->says) != NULL, "'%s' does not say '%s'", err, b->says);
    ck_assert_msg(strstr(err, "allowed") != NULL, "'%s' does not give the form", err);
    ck_assert_int_eq(c.nmilestones, 1);
    EQ(c.milestones[0], 7);
    ck_assert_int_eq(c.nbatch, 1);
    ck_assert_int_eq(c.batch_sizes[0], 64);
}
END_TEST

/* ---- noise scale ------------------------------------------------------------------ */

START_TEST(test_noise_init_and_edges)
{
    struct noise_scale n;
    memset(&n, 0x5a, sizeof n);
    noise_init(&n, 0.9);
    EQ(n.decay, 0.9);
    EQ(n.g2_ema, 0);
    EQ(n.s_ema, 0);
    ck_assert_int_eq(n.count, 0);
    ck_assert(isnan(noise_b_simple(&n))); /* nothing seen yet */
    /* one batch size alone cannot separate signal from noise */
    ck_assert_int_eq(noise_update(&n, 0, 8, 1.0, 8, 1.0), -1);
    ck_assert_int_eq(noise_update(&n, 0, 0, 1.0, 8, 1.0), -1);
    ck_assert_int_eq(noise_update(&n, 0, 8, NAN, 16, 1.0), -1);
    ck_assert_int_eq(n.count, 0);
    /* small batches look cleaner than the big one: |G|^2 estimate
     * (2*1 - 1*10)/(2 - 1) = -8 is not positive, so no scale */
    ck_assert_int_eq(noise_update(&n, 0, 1, 10.0, 2, 1.0), 0);
    ck_assert_int_eq(n.count, 1);
    ck_assert(isnan(noise_b_simple(&n)));
}
END_TEST

/* Feeding the exact expectations E|g_b|^2 = |G|^2 + S/b must give back S and
 * |G|^2, and S/|G|^2 from the first update on, whatever the EMA's bias. */
START_TEST(test_noise_exact_expectations)
{
    const double G2 = 2.0, S = 96.0; /* B_simple 48 */
    struct noise_scale n;
    noise_init(&n, 0.9);
    ck_assert_int_eq(noise_update(&n, 0, 8, G2 + S / 8, 64, G2 + S / 64), 0);
    EQ(n.g2_ema, 0.1 * G2); /* (1 - decay) x estimate after one step */
    EQ(n.s_ema, 0.1 * S);
    EQ(noise_b_simple(&n), S / G2);
    /* the order of the two sizes does not matter */
    ck_assert_int_eq(noise_update(&n, 0, 64, G2 + S / 64, 8, G2 + S / 8), 0);
    EQ(n.g2_ema, 0.9 * 0.1 * G2 + 0.1 * G2);
    EQ(noise_b_simple(&n), S / G2);
    /* a new regime (|G|^2 four times larger) is followed at the EMA's pace:
     * the two old estimates, 0.19 of weight, decay by 0.9 and the new one
     * comes in with 0.1 */
    ck_assert_int_eq(noise_update(&n, 0, 4, 4 * G2 + S / 4, 32, 4 * G2 + S / 32), 0);
    EQ(n.g2_ema, 0.9 * 0.19 * G2 + 0.1 * 4 * G2);
    EQ(n.s_ema, 0.9 * 0.19 * S + 0.1 * S);
    EQ(noise_b_simple(&n), (0.171 + 0.1) * S / ((0.171 + 0.4) * G2));
    for (int i = 0; i < 2000; i++)
        noise_update(&n, 0, 4, 4 * G2 + S / 4, 32, 4 * G2 + S / 32);
    EQ(noise_b_simple(&n), S / (4 * G2));
}
END_TEST

/* splitmix64 (Steele et al. 2014): a deterministic, well-mixed stream, so the
 * test does not depend on the project's own generator. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Two independent standard normals by Box-Muller. */
static void normal_pair(uint64_t *state, double *z0, double *z1)
{
    double u1 = ((double)(splitmix64(state) >> 11) + 1.0) * 0x1p-53; /* (0, 1] */
    double u2 = (double)(splitmix64(state) >> 11) * 0x1p-53;
    double r = sqrt(-2.0 * log(u1));
    *z0 = r * cos(2 * M_PI * u2);
    *z1 = r * sin(2 * M_PI * u2);
}

enum { NOISE_MAX_D = 64, NOISE_MAX_RANKS = 8, NOISE_STEPS = 4000 };
#define NOISE_DECAY 0.999

struct noise_case {
    int D;        /* gradient dimension, even */
    double sigma; /* per-coordinate noise std of one sample: tr(Sigma) = D sigma^2 */
    double g2;    /* |G|^2 */
    int b, k;     /* k ranks of b samples each: b_small = b, b_big = k b */
};

/* True B_simple = D sigma^2 / |G|^2: 64, 16, 128, 64. */
static const struct noise_case noise_cases[] = {
    { 64, 1.0, 1.0, 16, 2 },
    { 32, 0.5, 0.5, 8, 4 },
    { 64, 2.0, 2.0, 32, 2 },
    { 32, 1.0, 0.5, 4, 8 },
};

/* How far the estimate may stray, as a relative standard error. With
 * Gaussian noise (u_r the noise of rank r's mean, variance sigma^2/b per
 * coordinate) the per-step estimates are
 *   S_est = sigma^2 chi^2_{D(k-1)} / (k-1):      rel. variance 2 / (D(k-1))
 *   G_est = |G|^2 + 2 G.u + 2/(k(k-1)) sum_{r<s} u_r.u_s:
 *           variance 4 |G|^2 sigma^2 / (kb) + 2 D sigma^4 / (k(k-1) b^2).
 * The delta method gives the ratio's relative variance as at most
 * (sd_S/S + sd_G/|G|^2)^2 (any correlation can only shrink it), divided by the
 * EMA's effective number of samples ((1+d)/(1-d)) (1-d^n)/(1+d^n). */
static double noise_rel_stderr(const struct noise_case *k)
{
    double s2 = k->sigma * k->sigma, b = k->b, m = k->k;
    double rel_s = sqrt(2.0 / (k->D * (m - 1)));
    double var_g = 4 * k->g2 * s2 / (m * b) + 2 * k->D * s2 * s2 / (m * (m - 1) * b * b);
    double rel_g = sqrt(var_g) / k->g2;
    double dn = pow(NOISE_DECAY, NOISE_STEPS);
    double n_eff = (1 + NOISE_DECAY) / (1 - NOISE_DECAY) * (1 - dn) / (1 + dn);
    return (rel_s + rel_g) / sqrt(n_eff);
}

START_TEST(test_noise_known_noise)
{
    const struct noise_case *k = &noise_cases[_i];
    /* G: an uneven fixed vector, rescaled to the chosen norm */
    double G[NOISE_MAX_D], norm2 = 0;
    for (int j = 0; j < k->D; j++) {
        G[j] = 1.0 + (j % 3) - 0.5 * (j % 2);
        norm2 += G[j] * G[j];
    }
    for (int j = 0; j < k->D; j++)
        G[j] *= sqrt(k->g2 / norm2);
    double want = k->D * k->sigma * k->sigma / k->g2;
    double tol = 0.10;
    double se = noise_rel_stderr(k);
    /* the 10% tolerance must be at least four standard errors */
    ck_assert_msg(4 * se <= tol, "case %d: relative standard error %.3f too large for %.2f",
                  _i, se, tol);

    struct noise_scale n;
    noise_init(&n, NOISE_DECAY);
    uint64_t state = 0x5eed0000u + (uint64_t)_i;
    double sum[NOISE_MAX_RANKS][NOISE_MAX_D];
    for (int step = 0; step < NOISE_STEPS; step++) {
        /* each rank sums b per-sample gradients G + sigma z */
        for (int r = 0; r < k->k; r++) {
            for (int j = 0; j < k->D; j++)
                sum[r][j] = 0;
            for (int i = 0; i < k->b; i++)
                for (int j = 0; j < k->D; j += 2) {
                    double z0, z1;
                    normal_pair(&state, &z0, &z1);
                    sum[r][j] += G[j] + k->sigma * z0;
                    sum[r][j + 1] += G[j + 1] + k->sigma * z1;
                }
        }
        /* g2_small: the mean over ranks of |rank mean|^2; g2_big: |global mean|^2 */
        double g2_small = 0, g2_big = 0;
        for (int j = 0; j < k->D; j++) {
            double total = 0;
            for (int r = 0; r < k->k; r++) {
                double mean = sum[r][j] / k->b;
                g2_small += mean * mean / k->k;
                total += sum[r][j];
            }
            double big = total / (k->b * k->k);
            g2_big += big * big;
        }
        ck_assert_int_eq(noise_update(&n, 0, k->b, g2_small, (double)k->b * k->k, g2_big), 0);
    }
    double got = noise_b_simple(&n);
    ck_assert_msg(fabs(got - want) <= tol * want,
                  "case %d: B_simple %.2f, expected %.2f (relative standard error %.3f)", _i,
                  got, want, se);
}
END_TEST

Suite *schedule_suite(void)
{
    Suite *s = suite_create("schedule");

    TCase *tc = tcase_create("rates");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_defaults);
    tcase_add_loop_test(tc, test_scale, 0, (int)(sizeof scale_cases / sizeof scale_cases[0]));
    tcase_add_test(tc, test_warmup_epochs);
    tcase_add_test(tc, test_warmup_steps);
    tcase_add_test(tc, test_warmup_times_decay);
    tcase_add_test(tc, test_warmup_then_cosine_formula);
    tcase_add_test(tc, test_warmup_then_each_decay);
    tcase_add_test(tc, test_warmup_steps_then_decay);
    tcase_add_test(tc, test_step);
    tcase_add_test(tc, test_exp);
    tcase_add_test(tc, test_poly);
    tcase_add_test(tc, test_cosine);
    tcase_add_test(tc, test_sgdr);
    tcase_add_test(tc, test_cyclic);
    tcase_add_test(tc, test_onecycle);
    tcase_add_test(tc, test_onecycle_momentum);
    tcase_add_test(tc, test_batch_schedule);
    tcase_add_test(tc, test_batch_schedule_warmup);
    suite_add_tcase(s, tc);

    tc = tcase_create("validation");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_validation_rejects, 0, (int)(sizeof bads / sizeof bads[0]));
    tcase_add_test(tc, test_validation_accepts_edges);
    tcase_add_loop_test(tc, test_table_rejects, 0,
                        (int)(sizeof bad_values / sizeof bad_values[0]));
    tcase_add_test(tc, test_table_targets);
    suite_add_tcase(s, tc);

    tc = tcase_create("lists");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_parse_milestones_good);
    tcase_add_test(tc, test_parse_batch_list_good);
    tcase_add_loop_test(tc, test_parse_lists_bad, 0,
                        (int)(sizeof bad_lists / sizeof bad_lists[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("noise");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_noise_init_and_edges);
    tcase_add_test(tc, test_noise_exact_expectations);
    tcase_add_loop_test(tc, test_noise_known_noise, 0,
                        (int)(sizeof noise_cases / sizeof noise_cases[0]));
    suite_add_tcase(s, tc);
    return s;
}
