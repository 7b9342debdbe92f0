/* Tests of what grows the batch: the noise scale's window on synthetic
 * gradients whose noise scale changes during the run, the --batch-auto
 * controller's decisions on synthetic noise-scale sequences (grows, holds,
 * MIN/MAX/multiples, hysteresis, rank-count invariance), AdaScale's gain
 * against its formula, and the refusal of restored state it cannot resume. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "adascale.h"
#include "batch_control.h"
#include "noise.h"
#include "suites.h"
#include "train.h"
#include "trainer.h"

/* Values computed by hand from the formulas; only rounding separates them. */
#define EQ(a, b) ck_assert_double_eq_tol((a), (b), 1e-12)

/* ---- the noise scale's window ------------------------------------------------------ */

/* Exact expectations E|g_b|^2 = |G|^2 + S/b give back S and |G|^2 from
 * every measurement, so the window's average is exact: a new regime replaces
 * the old one completely once the old measurements are out of the window,
 * where a per-measurement EMA still remembers them. */
START_TEST(test_window_follows_regime_change)
{
    const double G2 = 2.0, S = 96.0;
    struct noise_scale w, e;
    noise_init(&w, 0.9);
    noise_set_window(&w, 1000); /* samples */
    noise_init(&e, 0.9);
    ck_assert(isnan(w.last_g2) && isnan(w.last_s));
    double at = 0;
    for (int i = 0; i < 10; i++, at += 100) {
        ck_assert_int_eq(noise_update(&w, at, 8, G2 + S / 8, 64, G2 + S / 64), 0);
        noise_update(&e, at, 8, G2 + S / 8, 64, G2 + S / 64);
    }
    EQ(noise_b_simple(&w), S / G2);
    EQ(w.last_g2, G2);
    EQ(w.last_s, S);
    /* |G|^2 falls 16-fold: B_simple 48 -> 768 */
    for (int i = 0; i < 10; i++, at += 100) {
        noise_update(&w, at, 8, G2 / 16 + S / 8, 64, G2 / 16 + S / 64);
        noise_update(&e, at, 8, G2 / 16 + S / 8, 64, G2 / 16 + S / 64);
    }
    /* 10 measurements 100 samples apart: the window (1000 samples) holds
     * only the new regime */
    ck_assert_int_eq(w.n, 10);
    ck_assert(w.at[0] >= 1000);
    EQ(noise_b_simple(&w), 16 * S / G2);
    /* the EMA after 10 of 20 (bias-corrected): (0.9^10 - 0.9^20) / (1 - 0.9^20)
     * = 31% of its weight is still on the old regime */
    double old = (pow(0.9, 10) - pow(0.9, 20)) / (1 - pow(0.9, 20));
    double g2e = old * G2 + (1 - old) * G2 / 16;
    ck_assert_double_eq_tol(noise_b_simple(&e), S / g2e, 1e-9);
    ck_assert(noise_b_simple(&e) < 0.4 * noise_b_simple(&w));
}
END_TEST

/* Measurements are weighted by their big batch: one of 192 samples counts
 * three times one of 64. */
START_TEST(test_window_sample_weights)
{
    struct noise_scale n;
    noise_init(&n, 0.9);
    noise_set_window(&n, 1e9);
    /* estimates |G|^2 = 1, tr = 64 (b_big 64), then |G|^2 = 2, tr = 32 (b_big 192) */
    noise_update(&n, 0, 16, 1 + 64.0 / 16, 64, 1 + 64.0 / 64);
    noise_update(&n, 64, 32, 2 + 32.0 / 32, 192, 2 + 32.0 / 192);
    double g2, tr;
    ck_assert_int_eq(noise_estimates(&n, &g2, &tr), 0);
    EQ(g2, (64 * 1.0 + 192 * 2.0) / 256);
    EQ(tr, (64 * 64.0 + 192 * 32.0) / 256);
    EQ(noise_b_simple(&n), tr / g2);
}
END_TEST

/* However far apart, the newest NOISE_WINDOW_KEEP measurements stay; the
 * window never holds more than NOISE_WINDOW_MAX; before a measurement and
 * after a |G|^2 estimate at or below 0 there is no B_simple (NaN, written
 * as null). */
START_TEST(test_window_bounds_and_null)
{
    struct noise_scale n;
    noise_init(&n, 0.9);
    noise_set_window(&n, 10);
    double g2, tr;
    ck_assert_int_eq(noise_estimates(&n, &g2, &tr), -1);
    ck_assert(isnan(g2) && isnan(tr) && isnan(noise_b_simple(&n)));
    for (int i = 0; i < 10; i++)
        noise_update(&n, 1e6 * i, 8, 3.0, 64, 1.0);
    ck_assert_int_eq(n.n, NOISE_WINDOW_KEEP);
    EQ(n.at[0], 1e6 * (10 - NOISE_WINDOW_KEEP));
    noise_set_window(&n, 1e12);
    for (int i = 0; i < 3 * NOISE_WINDOW_MAX; i++)
        noise_update(&n, 1e7 + i, 8, 3.0, 64, 1.0);
    ck_assert_int_eq(n.n, NOISE_WINDOW_MAX);
    EQ(n.at[NOISE_WINDOW_MAX - 1], 1e7 + 3 * NOISE_WINDOW_MAX - 1);
    /* small batches look cleaner than the big one: the |G|^2 estimate
     * (64 x 1 - 8 x 3) / 56 > 0 ... and with 10 in place of 3, negative */
    ck_assert(noise_b_simple(&n) > 0);
    noise_set_window(&n, 0.5);
    for (int i = 0; i < NOISE_WINDOW_KEEP; i++)
        noise_update(&n, 2e7 + i, 8, 10.0, 64, 1.0);
    ck_assert_int_eq(noise_estimates(&n, &g2, &tr), 0);
    ck_assert(g2 < 0 && tr > 0);
    ck_assert(isnan(noise_b_simple(&n)));
    ck_assert(n.last_g2 < 0);
}
END_TEST

/* splitmix64 (Steele et al. 2014) and Box-Muller: the test's own normals. */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double normal(uint64_t *s)
{
    double u1 = ((double)(mix(s) >> 11) + 1.0) * 0x1p-53, u2 = (double)(mix(s) >> 11) * 0x1p-53;
    return sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2);
}

enum { SYN_D = 64, SYN_B = 512, SYN_PHASE = 600, SYN_EVERY = 10 };

/* One measurement as two ranks of SYN_B samples see it: each rank's mean
 * gradient is G + u_r with u_r ~ N(0, sigma^2 / b) per coordinate. */
static void measure(uint64_t *st, double g, double *g2_small, double *g2_big)
{
    double sd = 1.0 / sqrt((double)SYN_B);
    *g2_small = *g2_big = 0;
    for (int j = 0; j < SYN_D; j++) {
        double a = g + sd * normal(st), b = g + sd * normal(st);
        *g2_small += (a * a + b * b) / 2;
        *g2_big += (a + b) * (a + b) / 4;
    }
}

/* Gaussian gradients of 64 coordinates, unit noise per sample (tr(Sigma) =
 * 64): B_simple 64 for SYN_PHASE measurements, then 1024 (|G|^2 16 times
 * smaller), the run going on at 1024 samples a step, a measurement every 10
 * steps, the window one "epoch" of 100 measurements. With these sizes a
 * window's relative standard error on the second regime is about 5.5% (the
 * |G|^2 estimate's sd is 0.35 |G|^2 per measurement, tr(Sigma)'s 0.18 tr), so
 * 20% is over three and a half standard errors. The estimate follows the
 * change within two windows, where an EMA of 0.99 per measurement (its
 * memory counted in measurements whatever the batch) is still far off:
 * how a short large-batch run went stale. */
START_TEST(test_window_synthetic_gradients)
{
    uint64_t st = 0x5eedull;
    struct noise_scale w, slow;
    double samples_per = (double)SYN_EVERY * 2 * SYN_B;
    noise_init(&w, 0.9);
    noise_set_window(&w, 100 * samples_per);
    noise_init(&slow, 0.99);
    double at = 0;
    for (int phase = 0; phase < 2; phase++) {
        double g = phase == 0 ? 1.0 / sqrt(SYN_D) : 0.25 / sqrt(SYN_D);
        double want = phase == 0 ? 64 : 1024;
        for (int i = 0; i < SYN_PHASE; i++, at += samples_per) {
            double gs, gb;
            measure(&st, g, &gs, &gb);
            ck_assert_int_eq(noise_update(&w, at, SYN_B, gs, 2 * SYN_B, gb), 0);
            noise_update(&slow, at, SYN_B, gs, 2 * SYN_B, gb);
            if (i == 200) {
                double got = noise_b_simple(&w);
                ck_assert_msg(fabs(got - want) <= 0.2 * want,
                              "phase %d: B_simple %.1f two windows in, expected %.0f", phase,
                              got, want);
                /* 0.99^200 = 13% of the EMA's weight is still on |G|^2 = 1,
                 * twice the new 1/16: it reads about 340 */
                if (phase == 1)
                    ck_assert_msg(noise_b_simple(&slow) < 0.5 * want,
                                  "the slow EMA already reads %.1f", noise_b_simple(&slow));
            }
        }
        double got = noise_b_simple(&w);
        ck_assert_msg(fabs(got - want) <= 0.2 * want, "phase %d: B_simple %.1f, expected %.0f",
                      phase, got, want);
    }
}
END_TEST

/* ---- the controller ---------------------------------------------------------------- */

static const struct batchctl_config base_cfg = { .min = 256, .max = 4096, .quantum = 2,
                                                 .margin = 1.0, .confirm = 1 };

/* Feeds B_simple values as (|G|^2 = 1, tr = value) and returns the batches. */
static void run_sequence(const struct batchctl_config *c, size_t n, const double *bn, int k,
                         int *out, const char **why)
{
    struct batchctl s;
    batchctl_init(&s, c);
    for (int i = 0; i < k; i++) {
        struct batchctl_decision d;
        out[i] = batchctl_decide(c, &s, n, isnan(bn[i]) ? NAN : 1.0, bn[i], &d);
        ck_assert_int_eq(d.to, out[i]);
        if (why)
            why[i] = d.why;
    }
}

START_TEST(test_ctl_grows_and_holds)
{
    const double bn[] = { NAN, 300, 511, 512, 700, 1500, 5000, 1e9, 10 };
    const int want[] = { 256, 256, 256, 512, 512, 1024, 4096, 4096, 4096 };
    const char *whys[] = { "no estimate", "hold", "hold", "grow", "hold", "grow", "grow",
                           "at max", "at max" };
    int got[9];
    const char *why[9];
    run_sequence(&base_cfg, 60000, bn, 9, got, why);
    for (int i = 0; i < 9; i++) {
        ck_assert_int_eq(got[i], want[i]);
        ck_assert_str_eq(why[i], whys[i]);
    }
}
END_TEST

/* Never below MIN nor above MAX or the data set, every batch a multiple of
 * the quantum: candidates are MIN x 2^k below the cap, and the cap. */
START_TEST(test_ctl_bounds_and_multiples)
{
    struct batchctl_config c = base_cfg;
    c.max = 3000;
    c.quantum = 64;
    ck_assert_int_eq(batchctl_cap(&c, 60000), 2944);
    ck_assert_int_eq(batchctl_cap(&c, 1000), 960);
    ck_assert_int_eq(batchctl_cap(&c, 100), 256); /* never below MIN */
    const double bn[] = { 2000, 2943, 2944, 1e12 };
    const int want[] = { 1024, 2048, 2944, 2944 };
    int got[4];
    run_sequence(&c, 60000, bn, 4, got, NULL);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(got[i], want[i]);
        ck_assert_int_eq(got[i] % c.quantum, 0);
    }
    /* the data set caps it: 1000 samples, quantum 64 */
    const double big[] = { 1e6 };
    run_sequence(&c, 1000, big, 1, got, NULL);
    ck_assert_int_eq(got[0], 960);
    /* a |G|^2 estimate at or below 0 beside positive noise: all noise, the cap */
    struct batchctl s;
    struct batchctl_decision d;
    batchctl_init(&s, &c);
    ck_assert_int_eq(batchctl_decide(&c, &s, 60000, -0.5, 10.0, &d), 2944);
    ck_assert(isinf(d.b_noise));
    /* no positive noise: nothing to go by */
    batchctl_init(&s, &c);
    ck_assert_int_eq(batchctl_decide(&c, &s, 60000, 1.0, -3.0, &d), 256);
    ck_assert_str_eq(d.why, "no estimate");
}
END_TEST

/* Hysteresis: with confirm 2 one estimate above the threshold does not move
 * the batch, two in a row do, and a hold in between starts the count again;
 * with margin 1.5 the estimate must clear the doubled batch by half. */
START_TEST(test_ctl_hysteresis)
{
    struct batchctl_config c = base_cfg;
    c.confirm = 2;
    const double bn[] = { 600, 300, 600, 600, 1000, 2100, 2100, 100 };
    const int want[] = { 256, 256, 256, 512, 512, 512, 2048, 2048 };
    const char *whys[] = { "confirming", "hold", "confirming", "grow", "hold", "confirming",
                           "grow", "hold" };
    int got[8];
    const char *why[8];
    run_sequence(&c, 60000, bn, 8, got, why);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(got[i], want[i]);
        ck_assert_str_eq(why[i], whys[i]);
    }
    c = base_cfg;
    c.margin = 1.5;
    const double bm[] = { 700, 768, 1600 };
    const int wm[] = { 256, 512, 1024 };
    run_sequence(&c, 60000, bm, 3, got, NULL);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(got[i], wm[i]);
}
END_TEST

/* The same estimates give the same batches at 1 and 2 ranks with a ghost
 * group of 16: quantum 16 or 32, MIN and MAX multiples of both. */
START_TEST(test_ctl_rank_count_invariant)
{
    struct batchctl_config one = base_cfg, two = base_cfg;
    one.quantum = 16;
    two.quantum = 32;
    const double bn[] = { 100, 520, 800, 3000, 2500, 9000 };
    int a[6], b[6];
    run_sequence(&one, 60000, bn, 6, a, NULL);
    run_sequence(&two, 60000, bn, 6, b, NULL);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(a[i], b[i]);
    ck_assert_int_eq(a[5], 4096);
}
END_TEST

START_TEST(test_ctl_validate)
{
    char err[512];
    struct batchctl_config c = base_cfg;
    ck_assert_int_eq(batchctl_validate(&c, 60000, err, sizeof err), 0);
    c.max = 128;
    ck_assert_int_eq(batchctl_validate(&c, 60000, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "--batch-auto: 128 is below --batch-size 256"));
    c = base_cfg;
    c.quantum = 96;
    ck_assert_int_eq(batchctl_validate(&c, 60000, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "must be a multiple of 96"));
    c = base_cfg;
    ck_assert_int_eq(batchctl_validate(&c, 100, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "only 100 samples"));
}
END_TEST

/* ---- AdaScale ---------------------------------------------------------------------- */

struct gain_case {
    double g2, trace, batch, base;
};

static const struct gain_case gains[] = {
    { 1.0, 64.0, 256, 256 },     /* S = 1: gain 1 */
    { 1.0, 64.0, 1024, 256 },    /* B_noise 64: mostly signal */
    { 0.01, 64.0, 1024, 256 },   /* B_noise 6400: mostly noise */
    { 0.5, 256.0, 4096, 256 },
    { 2.0, 1.0, 512, 128 },
    { 1e-6, 1e3, 8192, 256 },
};

/* r = (sigma^2 + |G|^2) / (sigma^2 / S + |G|^2), sigma^2 = tr / base, written
 * as Johnson et al.'s ratio of expected squared norms E|g_S|^2 / E|g_1|^2
 * inverted: E|g_k|^2 = |G|^2 + tr / (k base). */
START_TEST(test_gain_formula)
{
    const struct gain_case *k = &gains[_i];
    double S = k->batch / k->base;
    double e1 = k->g2 + k->trace / k->base, eS = k->g2 + k->trace / (S * k->base);
    double want = e1 / eS;
    double got = adascale_gain(k->g2, k->trace, k->batch, k->base);
    ck_assert_double_eq_tol(got, want, 1e-12 * want);
    ck_assert(got >= 1 - 1e-12 && got <= S + 1e-12);
}
END_TEST

START_TEST(test_gain_edges)
{
    EQ(adascale_gain(NAN, NAN, 1024, 256), 1);   /* no estimate yet */
    EQ(adascale_gain(1.0, -5.0, 1024, 256), 1);  /* no noise */
    EQ(adascale_gain(-1.0, 5.0, 1024, 256), 4);  /* all noise: S */
    EQ(adascale_gain(0.0, 5.0, 1024, 256), 4);
    /* the limits: signal only -> 1, noise only -> S */
    ck_assert(adascale_gain(1e6, 1.0, 1024, 256) < 1.0001);
    ck_assert(adascale_gain(1e-12, 1e6, 1024, 256) > 3.999);
}
END_TEST

/* ---- restored controller state --------------------------------------------------
 * A 4-rank trainer of --batch-size 96 --batch-auto 1001 --accumulate 2 over
 * 2048 samples (quantum 8, cap 1000) restores a checkpoint at epoch 3 that
 * grew to 192 at epoch 1, written on 4 ranks. Each case changes one thing. */

static struct trainer rt;
static Ddtrain__ScheduleState rst;
static double r_epochs[2], r_at[2], r_b[2], r_g2[2], r_s[2];
static uint32_t r_sizes[2], r_nranks;

static void restore_setup(void)
{
    memset(&rt, 0, sizeof rt);
    train_config_defaults(&rt.cfg);
    rt.cfg.sched.base_batch = 96;
    rt.cfg.batch_auto = 1001;
    rt.cfg.accumulate = 2;
    rt.nranks = 4;
    rt.train.n = 2048;
    adaptive_init(&rt);
    ck_assert_int_eq(rt.bctl_cfg.quantum, 8);
    ddtrain__schedule_state__init(&rst);
    rst.epoch = 3;
    rst.samples_seen = 4000;
    r_epochs[0] = 1;
    r_sizes[0] = 192;
    rst.n_auto_batch_epochs = rst.n_auto_batch_sizes = 1;
    rst.auto_batch_epochs = r_epochs;
    rst.auto_batch_sizes = r_sizes;
    for (int i = 0; i < 2; i++) {
        r_at[i] = 1000.0 * (i + 1);
        r_b[i] = 192;
        r_g2[i] = r_s[i] = 1;
    }
    rst.n_noise_window_at = rst.n_noise_window_batch = 2;
    rst.n_noise_window_g2 = rst.n_noise_window_trace = 2;
    rst.noise_window_at = r_at;
    rst.noise_window_batch = r_b;
    rst.noise_window_g2 = r_g2;
    rst.noise_window_trace = r_s;
    r_nranks = 4;
}

static void restore_teardown(void) {}

START_TEST(test_restore_accepted)
{
    char err[DDT_ERRLEN] = "";
    ck_assert_msg(adaptive_restore(&rt, &rst, r_nranks, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(rt.bctl.batch, 192);
    ck_assert_int_eq(rt.cfg.sched.nbatch, 1);
}
END_TEST

/* 3 ranks x --accumulate 2 grew to 996 = 3 x 2 x 166: 249 a rank on 4 */
static void other_ranks_batch(void) { r_sizes[0] = 996; r_nranks = 3; }
static void above_cap(void) { r_sizes[0] = 1008; }
static void half_epoch(void) { r_epochs[0] = 1.5; }
static void huge_streak(void) { rst.auto_batch_streak = 4000000000u; }
static void window_out_of_order(void) { r_at[1] = 500; }
static void window_past_samples(void) { r_at[1] = 5000; }

static const struct restore_craft {
    const char *what;
    void (*apply)(void);
    const char *says[2];
} restore_crafts[] = {
    { "a batch from 3 ranks", other_ranks_batch,
      { "batch 996 chosen on 3 ranks is not a multiple of 8 (4 ranks x --bn-group 1 x --accumulate 2)",
        "resume on 3 ranks" } },
    { "a batch above the cap", above_cap,
      { "batch 1008 chosen on 4 ranks is above 1000", "--batch-auto and --train-samples" } },
    { "a half epoch", half_epoch, { "(epoch 1.5, batch 192)", "whole epochs" } },
    { "streak 4e9", huge_streak, { "schedule.auto_batch_streak is 4000000000", "allowed 0 to 0" } },
    { "window out of order", window_out_of_order,
      { "schedule.noise_window_at entry 1 is 500", "from 1000" } },
    { "window past samples seen", window_past_samples,
      { "schedule.noise_window_at entry 1 is 5000", "schedule.samples_seen 4000" } },
};

START_TEST(test_restore_refused)
{
    const struct restore_craft *c = &restore_crafts[_i];
    char err[DDT_ERRLEN] = "";
    c->apply();
    ck_assert_msg(adaptive_restore(&rt, &rst, r_nranks, err, sizeof err) == -1, "%s: accepted",
                  c->what);
    for (int k = 0; k < 2 && c->says[k]; k++)
        ck_assert_msg(strstr(err, c->says[k]) != NULL, "%s: '%s' lacks '%s'", c->what, err,
                      c->says[k]);
}
END_TEST

Suite *adaptive_suite(void)
{
    Suite *s = suite_create("adaptive");
    TCase *tc = tcase_create("noise window");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_window_follows_regime_change);
    tcase_add_test(tc, test_window_sample_weights);
    tcase_add_test(tc, test_window_bounds_and_null);
    tcase_add_test(tc, test_window_synthetic_gradients);
    suite_add_tcase(s, tc);

    tc = tcase_create("controller");
    tcase_add_test(tc, test_ctl_grows_and_holds);
    tcase_add_test(tc, test_ctl_bounds_and_multiples);
    tcase_add_test(tc, test_ctl_hysteresis);
    tcase_add_test(tc, test_ctl_rank_count_invariant);
    tcase_add_test(tc, test_ctl_validate);
    suite_add_tcase(s, tc);

    tc = tcase_create("adascale");
    tcase_add_loop_test(tc, test_gain_formula, 0, (int)(sizeof gains / sizeof gains[0]));
    tcase_add_test(tc, test_gain_edges);
    suite_add_tcase(s, tc);

    tc = tcase_create("restore");
    tcase_add_checked_fixture(tc, restore_setup, restore_teardown);
    tcase_add_test(tc, test_restore_accepted);
    tcase_add_loop_test(tc, test_restore_refused, 0,
                        (int)(sizeof restore_crafts / sizeof restore_crafts[0]));
    suite_add_tcase(s, tc);
    return s;
}
