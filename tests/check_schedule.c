/* Tests of the schedules against their formulas at chosen points, their
 * validation, the list parsers, and the gradient noise scale estimator on
 * synthetic gradients with known noise. */
#include <math.h>
#include <string.h>

#include "noise.h"
#include "rng.h"
#include "schedule.h"
#include "suites.h"

static struct sched_config c;

static void setup(void)
{
    sched_defaults(&c);
    c.base_lr = 0.1;
    c.epochs = 100;
}

#define EQ(a, b) ck_assert_double_eq_tol((a), (b), 1e-9)

START_TEST(test_scaling_rules)
{
    c.base_batch = 1024;
    c.scaling = SCALE_NONE;
    EQ(sched_lr_at(&c, 0, 0), 0.1);
    c.scaling = SCALE_LINEAR;
    EQ(sched_lr_at(&c, 0, 0), 0.4);
    c.scaling = SCALE_SQRT;
    EQ(sched_lr_at(&c, 0, 0), 0.2);
}
END_TEST

START_TEST(test_warmup)
{
    c.base_batch = 2048;
    c.scaling = SCALE_LINEAR; /* peak 0.8 */
    c.warmup_epochs = 5;
    EQ(sched_lr_at(&c, 0, 0), 0.1);            /* starts at the unscaled rate */
    EQ(sched_lr_at(&c, 2.5, 0), 0.1 + 0.5 * 0.7);
    EQ(sched_lr_at(&c, 5, 0), 0.8);
    EQ(sched_lr_at(&c, 50, 0), 0.8);
    c.warmup_start = 0; /* from zero instead */
    EQ(sched_lr_at(&c, 1, 0), 0.8 / 5);
    c.warmup_steps = 100; /* steps win over epochs */
    EQ(sched_lr_at(&c, 99, 25), 0.2);
    EQ(sched_lr_at(&c, 99, 100), 0.8);
}
END_TEST

START_TEST(test_step_and_exp)
{
    char err[256];
    c.decay = DECAY_STEP;
    c.gamma = 0.1;
    ck_assert_int_eq(sched_parse_milestones(&c, "30,60,80", err, sizeof err), 0);
    ck_assert_int_eq(c.nmilestones, 3);
    EQ(sched_lr_at(&c, 29.99, 0), 0.1);
    EQ(sched_lr_at(&c, 30, 0), 0.01); /* at a milestone the new rate holds */
    EQ(sched_lr_at(&c, 65, 0), 0.001);
    EQ(sched_lr_at(&c, 99, 0), 0.0001);
    c.decay = DECAY_EXP;
    c.gamma = 0.5;
    EQ(sched_lr_at(&c, 3, 0), 0.1 / 8);
}
END_TEST

START_TEST(test_poly_and_cosine)
{
    c.decay = DECAY_POLY;
    c.power = 2;
    EQ(sched_lr_at(&c, 50, 0), 0.1 * 0.25);
    EQ(sched_lr_at(&c, 100, 0), 0.0);
    c.decay = DECAY_COSINE;
    c.floor = 0.1;
    EQ(sched_lr_at(&c, 0, 0), 0.1);
    EQ(sched_lr_at(&c, 50, 0), 0.1 * (0.1 + 0.9 * 0.5));
    EQ(sched_lr_at(&c, 100, 0), 0.1 * 0.1);
    EQ(sched_lr_at(&c, 25, 0), 0.1 * (0.1 + 0.9 * (1 + cos(M_PI / 4)) / 2));
}
END_TEST

START_TEST(test_sgdr)
{
    c.decay = DECAY_SGDR;
    c.sgdr_t0 = 10;
    c.sgdr_tmult = 2;
    EQ(sched_decay_factor(&c, 0), 1.0);
    EQ(sched_decay_factor(&c, 5), 0.5);
    EQ(sched_decay_factor(&c, 10), 1.0);  /* the first restart */
    EQ(sched_decay_factor(&c, 20), 0.5);  /* the second period is 20 long */
    EQ(sched_decay_factor(&c, 30), 1.0);  /* the second restart */
    EQ(sched_decay_factor(&c, 50), 0.5);
    c.sgdr_tmult = 1;
    EQ(sched_decay_factor(&c, 25), 0.5);
}
END_TEST

START_TEST(test_cyclic)
{
    c.decay = DECAY_CYCLIC;
    c.cycle_epochs = 2;
    c.floor = 0.2;
    EQ(sched_decay_factor(&c, 0), 0.2);   /* bottom */
    EQ(sched_decay_factor(&c, 1), 0.6);
    EQ(sched_decay_factor(&c, 2), 1.0);   /* top */
    EQ(sched_decay_factor(&c, 3), 0.6);
    EQ(sched_decay_factor(&c, 4), 0.2);   /* bottom again */
}
END_TEST

START_TEST(test_onecycle)
{
    c.decay = DECAY_ONECYCLE;
    c.onecycle_pct = 0.3;
    c.onecycle_div = 25;
    c.onecycle_final_div = 1e4;
    c.momentum = 0.95;
    c.momentum_min = 0.85;
    EQ(sched_decay_factor(&c, 0), 1.0 / 25);
    EQ(sched_decay_factor(&c, 15), 1.0 / 25 + (1 - 1.0 / 25) * 0.5);
    EQ(sched_decay_factor(&c, 30), 1.0);
    EQ(sched_decay_factor(&c, 65), 1.0 / 25e4 + (1 - 1.0 / 25e4) * 0.5);
    EQ(sched_decay_factor(&c, 100), 1.0 / 25e4);
    EQ(sched_momentum_at(&c, 0), 0.95);
    EQ(sched_momentum_at(&c, 15), 0.90);
    EQ(sched_momentum_at(&c, 30), 0.85);
    EQ(sched_momentum_at(&c, 100), 0.95);
    c.decay = DECAY_COSINE;
    EQ(sched_momentum_at(&c, 15), 0.95); /* only one-cycle moves momentum */
}
END_TEST

START_TEST(test_batch_schedule)
{
    char err[256];
    c.base_batch = 256;
    c.scaling = SCALE_LINEAR;
    ck_assert_int_eq(sched_parse_batch_list(&c, "10:512,20:1024", err, sizeof err), 0);
    ck_assert_int_eq(sched_batch_at(&c, 9.9), 256);
    ck_assert_int_eq(sched_batch_at(&c, 10), 512);
    ck_assert_int_eq(sched_batch_at(&c, 25), 1024);
    EQ(sched_lr_at(&c, 5, 0), 0.1);
    EQ(sched_lr_at(&c, 15, 0), 0.2);   /* the rate follows the scaling rule */
    EQ(sched_lr_at(&c, 25, 0), 0.4);
    c.batch_scales_lr = false;          /* "increase the batch instead of decaying" */
    EQ(sched_lr_at(&c, 25, 0), 0.1);
}
END_TEST

struct bad {
    const char *what;
    void (*set)(struct sched_config *);
    const char *says;
};

static void bad_lr(struct sched_config *s) { s->base_lr = 0; }
static void bad_warmup(struct sched_config *s) { s->warmup_epochs = 200; }
static void bad_milestones(struct sched_config *s) { s->decay = DECAY_STEP; s->nmilestones = 2; s->milestones[0] = 50; s->milestones[1] = 40; }
static void no_milestones(struct sched_config *s) { s->decay = DECAY_STEP; }
static void bad_gamma(struct sched_config *s) { s->decay = DECAY_EXP; s->gamma = 1.5; }
static void bad_floor(struct sched_config *s) { s->floor = 1; }
static void bad_tmult(struct sched_config *s) { s->sgdr_tmult = 0.5; }
static void bad_pct(struct sched_config *s) { s->onecycle_pct = 1; }
static void bad_mom(struct sched_config *s) { s->decay = DECAY_ONECYCLE; s->momentum = 0.8; s->momentum_min = 0.9; }
static void bad_batch(struct sched_config *s) { s->nbatch = 2; s->batch_epochs[0] = 5; s->batch_epochs[1] = 5; s->batch_sizes[0] = s->batch_sizes[1] = 512; }

static const struct bad bads[] = {
    { "lr", bad_lr, "--lr" },
    { "warmup", bad_warmup, "--warmup-epochs" },
    { "milestones", bad_milestones, "--lr-milestones: 40 after 50" },
    { "no milestones", no_milestones, "--lr-milestones" },
    { "gamma", bad_gamma, "--lr-gamma" },
    { "floor", bad_floor, "--lr-floor" },
    { "tmult", bad_tmult, "--sgdr-tmult" },
    { "pct", bad_pct, "--onecycle-pct" },
    { "momentum", bad_mom, "--momentum-min" },
    { "batch", bad_batch, "--batch-schedule" },
};

START_TEST(test_validation)
{
    char err[256] = "";
    ck_assert_int_eq(sched_validate(&c, err, sizeof err), 0);
    bads[_i].set(&c);
    ck_assert_int_eq(sched_validate(&c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, bads[_i].says) != NULL, "%s: '%s'", bads[_i].what, err);
}
END_TEST

START_TEST(test_list_parsers)
{
    char err[256];
    ck_assert_int_eq(sched_parse_milestones(&c, "", err, sizeof err), 0);
    ck_assert_int_eq(c.nmilestones, 0);
    ck_assert_int_eq(sched_parse_milestones(&c, "3,x", err, sizeof err), -1);
    ck_assert(strstr(err, "'x' is not an epoch") != NULL);
    ck_assert_int_eq(sched_parse_batch_list(&c, "5", err, sizeof err), -1);
    ck_assert(strstr(err, "EPOCH:BATCH") != NULL);
    ck_assert_int_eq(sched_parse_batch_list(&c, "5:0", err, sizeof err), -1);
    ck_assert(strstr(err, "'0' is not a batch size") != NULL);
    ck_assert_int_eq(sched_parse_batch_list(&c, "2.5:128", err, sizeof err), 0);
    ck_assert_double_eq(c.batch_epochs[0], 2.5);
}
END_TEST

/* Per-sample gradients G + noise with iid N(0, sigma^2) coordinates:
 * tr(Sigma) = D sigma^2, so B_simple = D sigma^2 / |G|^2. */
START_TEST(test_noise_scale_known_noise)
{
    enum { D = 50, SMALL = 8, STEPS = 3000 };
    const double sigma = 0.5;
    double G[D], g2true = 0;
    for (int k = 0; k < D; k++) {
        G[k] = 0.2 + 0.01 * k;
        g2true += G[k] * G[k];
    }
    struct noise_scale n;
    noise_init(&n, 0.999);
    ck_assert(isnan(noise_b_simple(&n)));
    uint64_t draw = 0;
    for (int s = 0; s < STEPS; s++) {
        /* two small batches of SMALL and their union, as two ranks would */
        double sum_small[2][D], big[D];
        memset(sum_small, 0, sizeof sum_small);
        for (int r = 0; r < 2; r++)
            for (int i = 0; i < SMALL; i++)
                for (int k = 0; k < D; k++)
                    sum_small[r][k] += G[k] + sigma * rng_normal(1, 9, (uint64_t)s, draw++, 0);
        double g2s = 0, g2b = 0;
        for (int k = 0; k < D; k++) {
            double a0 = sum_small[0][k] / SMALL, a1 = sum_small[1][k] / SMALL;
            g2s += (a0 * a0 + a1 * a1) / 2;
            big[k] = (sum_small[0][k] + sum_small[1][k]) / (2 * SMALL);
            g2b += big[k] * big[k];
        }
        ck_assert_int_eq(noise_update(&n, SMALL, g2s, 2 * SMALL, g2b), 0);
    }
    double want = D * sigma * sigma / g2true;
    ck_assert_msg(fabs(noise_b_simple(&n) - want) < 0.1 * want, "B_simple %g, expected %g",
                  noise_b_simple(&n), want);
    ck_assert_int_eq(noise_update(&n, 8, 1, 8, 1), -1);
}
END_TEST

Suite *schedule_suite(void)
{
    Suite *s = suite_create("schedule");
    TCase *tc = tcase_create("rates");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_scaling_rules);
    tcase_add_test(tc, test_warmup);
    tcase_add_test(tc, test_step_and_exp);
    tcase_add_test(tc, test_poly_and_cosine);
    tcase_add_test(tc, test_sgdr);
    tcase_add_test(tc, test_cyclic);
    tcase_add_test(tc, test_onecycle);
    tcase_add_test(tc, test_batch_schedule);
    tcase_add_loop_test(tc, test_validation, 0, (int)(sizeof bads / sizeof bads[0]));
    tcase_add_test(tc, test_list_parsers);
    suite_add_tcase(s, tc);
    tc = tcase_create("noise");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_noise_scale_known_noise);
    suite_add_tcase(s, tc);
    return s;
}
