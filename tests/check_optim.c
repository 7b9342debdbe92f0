/* Tests of the optimizers against independent double-precision reference
 * updates over several steps: SGD (plain, momentum, Nesterov, L2 and
 * decoupled decay, exemptions, rates, freezing), Adam, AdamW, LARS, LAMB. */
#include <math.h>
#include <string.h>

#include "arena.h"
#include "optim.h"
#include "suites.h"

/* A small arena: a 2x3 weight, a bias of 3, a batch-norm gamma of 2. */
static struct arena a;

static void setup(void)
{
    arena_init(&a);
    ck_assert_int_eq(arena_declare(&a, "fc1.weight", ROLE_WEIGHT, 2, 3, 0), 0);
    ck_assert_int_eq(arena_declare(&a, "fc1.bias", ROLE_BIAS, 3, 1, 0), 1);
    ck_assert_int_eq(arena_declare(&a, "bn1.weight", ROLE_BN_GAMMA, 2, 1, 0), 2);
    ck_assert_int_eq(arena_allocate(&a), 0);
    for (int v = 0; v < a.nviews; v++)
        for (size_t i = 0; i < a.views[v].n; i++)
            arena_w(&a, v)[i] = 0.3f * (float)(i + 1) * (v == 1 ? -1.0f : 1.0f) + 0.1f * (float)v;
}

static void teardown(void)
{
    arena_free(&a);
}

/* Gradients of step t (sums over a batch of 4, hence grad_scale 0.25). */
static void set_grads(int t)
{
    for (int v = 0; v < a.nviews; v++)
        for (size_t i = 0; i < a.views[v].n; i++)
            arena_g(&a, v)[i] = (float)(sin(1.0 + 0.7 * (double)i + 1.3 * v + 0.9 * t) * 2.0);
}

/* The reference: the same rules written plainly in double per element. */
struct ref {
    double w[64], m[64], v[64]; /* the arena pads tensors to 16 floats */
};

static void ref_init(struct ref *r)
{
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < a.n; i++)
        r->w[i] = a.w[i];
}

static const float LR = 0.1f, MU = 0.9f, WD = 0.01f, SCALE = 0.25f;

static void check_close(const struct ref *r, const char *what, int step)
{
    for (int v = 0; v < a.nviews; v++) {
        const struct tensor_view *tv = &a.views[v];
        for (size_t i = 0; i < tv->n; i++) {
            double want = r->w[tv->off + i];
            ck_assert_msg(fabs(a.w[tv->off + i] - want) <= 1e-5 * fabs(want) + 1e-6,
                          "%s step %d %s[%zu]: %g, expected %g", what, step, tv->name, i,
                          a.w[tv->off + i], want);
        }
    }
}

struct sgd_case {
    const char *what;
    float mu;
    bool nesterov;
    enum wd_mode mode;
    bool exempt;
};

static const struct sgd_case sgd_cases[] = {
    { "plain", 0.0f, false, WD_L2, false },
    { "momentum + L2", 0.9f, false, WD_L2, false },
    { "nesterov + L2", 0.9f, true, WD_L2, false },
    { "momentum + decoupled", 0.9f, false, WD_DECOUPLED, false },
    { "momentum + L2, vectors exempt", 0.9f, false, WD_L2, true },
};

START_TEST(test_sgd)
{
    const struct sgd_case *c = &sgd_cases[_i];
    struct optim o;
    struct optim_config cfg = { .kind = OPT_SGD, .nesterov = c->nesterov, .weight_decay = WD,
                                .wd_mode = c->mode, .wd_exempt_vectors = c->exempt };
    ck_assert_int_eq(optim_init(&o, &cfg, a.n), 0);
    struct ref r;
    ref_init(&r);
    for (int t = 1; t <= 4; t++) {
        set_grads(t);
        for (int v = 0; v < a.nviews; v++) {
            const struct tensor_view *tv = &a.views[v];
            double wd = c->exempt && v > 0 ? 0.0 : WD;
            for (size_t i = tv->off; i < tv->off + tv->n; i++) {
                double g = (double)SCALE * a.g[i];
                if (c->mode == WD_L2)
                    g += wd * r.w[i];
                r.m[i] = c->mu * r.m[i] + g;
                double d = c->nesterov ? g + c->mu * r.m[i] : r.m[i];
                if (c->mode == WD_DECOUPLED)
                    r.w[i] -= LR * wd * r.w[i];
                r.w[i] -= LR * d;
            }
        }
        optim_step(&o, &a, LR, c->mu, SCALE);
        check_close(&r, c->what, t);
    }
    optim_free(&o);
}
END_TEST

/* lr_mult scales a tensor's rate; 0 freezes it and its state. */
START_TEST(test_rate_multipliers_and_freezing)
{
    struct optim o;
    struct optim_config cfg = { .kind = OPT_SGD, .weight_decay = WD, .wd_mode = WD_L2 };
    ck_assert_int_eq(optim_init(&o, &cfg, a.n), 0);
    a.views[0].lr_mult = 0.0f;
    a.views[1].lr_mult = 0.5f;
    float w0[6];
    memcpy(w0, arena_w(&a, 0), sizeof w0);
    struct ref r;
    ref_init(&r);
    set_grads(1);
    for (size_t i = a.views[1].off; i < a.views[1].off + a.views[1].n; i++)
        r.w[i] -= 0.5 * LR * ((double)SCALE * a.g[i] + WD * r.w[i]);
    for (size_t i = a.views[2].off; i < a.views[2].off + a.views[2].n; i++)
        r.w[i] -= LR * ((double)SCALE * a.g[i] + WD * r.w[i]);
    optim_step(&o, &a, LR, MU, SCALE);
    ck_assert(memcmp(w0, arena_w(&a, 0), sizeof w0) == 0);
    for (size_t i = 0; i < 6; i++)
        ck_assert_float_eq(o.m[i], 0.0f);
    check_close(&r, "rate multipliers", 1);
    optim_free(&o);
}
END_TEST

START_TEST(test_adam_family)
{
    bool decoupled = _i == 1;
    struct optim o;
    struct optim_config cfg = { .kind = decoupled ? OPT_ADAMW : OPT_ADAM, .beta2 = 0.999f,
                                .eps = 1e-8f, .weight_decay = WD };
    ck_assert_int_eq(optim_init(&o, &cfg, a.n), 0);
    struct ref r;
    ref_init(&r);
    const double b1 = 0.9, b2 = 0.999;
    for (int t = 1; t <= 3; t++) {
        set_grads(t);
        for (size_t i = 0; i < a.n; i++) {
            double g = (double)SCALE * a.g[i] + (decoupled ? 0.0 : WD * r.w[i]);
            r.m[i] = b1 * r.m[i] + (1 - b1) * g;
            r.v[i] = b2 * r.v[i] + (1 - b2) * g * g;
            double mhat = r.m[i] / (1 - pow(b1, t)), vhat = r.v[i] / (1 - pow(b2, t));
            r.w[i] -= LR * (mhat / (sqrt(vhat) + 1e-8) + (decoupled ? WD * r.w[i] : 0.0));
        }
        optim_step(&o, &a, LR, 0.9f, SCALE);
        check_close(&r, decoupled ? "adamw" : "adam", t);
    }
    ck_assert_int_eq(o.t, 3);
    optim_free(&o);
}
END_TEST

static double tensor_norm(const double *x, size_t off, size_t n)
{
    double s = 0;
    for (size_t i = off; i < off + n; i++)
        s += x[i] * x[i];
    return sqrt(s);
}

START_TEST(test_lars)
{
    struct optim o;
    const float eta = 0.02f;
    struct optim_config cfg = { .kind = OPT_LARS, .weight_decay = WD, .trust_coef = eta,
                                .trust_exempt_vectors = true };
    ck_assert_int_eq(optim_init(&o, &cfg, a.n), 0);
    struct ref r;
    ref_init(&r);
    for (int t = 1; t <= 3; t++) {
        set_grads(t);
        for (int v = 0; v < a.nviews; v++) {
            const struct tensor_view *tv = &a.views[v];
            bool exempt = v > 0;
            double g[8], wd = exempt ? 0.0 : WD;
            for (size_t i = 0; i < tv->n; i++)
                g[i] = (double)SCALE * a.g[tv->off + i] + wd * r.w[tv->off + i];
            double trust = 1.0;
            if (!exempt)
                trust = eta * tensor_norm(r.w, tv->off, tv->n) / tensor_norm(g, 0, tv->n);
            for (size_t i = 0; i < tv->n; i++) {
                double *m = &r.m[tv->off + i];
                *m = MU * *m + LR * trust * g[i];
                r.w[tv->off + i] -= *m;
            }
        }
        optim_step(&o, &a, LR, MU, SCALE);
        check_close(&r, "lars", t);
    }
    optim_free(&o);
}
END_TEST

START_TEST(test_lamb)
{
    struct optim o;
    struct optim_config cfg = { .kind = OPT_LAMB, .beta2 = 0.999f, .eps = 1e-6f,
                                .weight_decay = WD, .trust_exempt_vectors = true };
    ck_assert_int_eq(optim_init(&o, &cfg, a.n), 0);
    struct ref r;
    ref_init(&r);
    const double b1 = 0.9, b2 = 0.999;
    for (int t = 1; t <= 3; t++) {
        set_grads(t);
        for (int v = 0; v < a.nviews; v++) {
            const struct tensor_view *tv = &a.views[v];
            bool exempt = v > 0;
            double rr[8], wd = exempt ? 0.0 : WD;
            for (size_t i = 0; i < tv->n; i++) {
                size_t k = tv->off + i;
                double g = (double)SCALE * a.g[k];
                r.m[k] = b1 * r.m[k] + (1 - b1) * g;
                r.v[k] = b2 * r.v[k] + (1 - b2) * g * g;
                double mhat = r.m[k] / (1 - pow(b1, t)), vhat = r.v[k] / (1 - pow(b2, t));
                rr[i] = mhat / (sqrt(vhat) + 1e-6) + wd * r.w[k];
            }
            double trust = exempt ? 1.0 : tensor_norm(r.w, tv->off, tv->n) / tensor_norm(rr, 0, tv->n);
            for (size_t i = 0; i < tv->n; i++)
                r.w[tv->off + i] -= LR * trust * rr[i];
        }
        optim_step(&o, &a, LR, 0.9f, SCALE);
        check_close(&r, "lamb", t);
    }
    optim_free(&o);
}
END_TEST

Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("updates");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_sgd, 0, (int)(sizeof sgd_cases / sizeof sgd_cases[0]));
    tcase_add_test(tc, test_rate_multipliers_and_freezing);
    tcase_add_loop_test(tc, test_adam_family, 0, 2);
    tcase_add_test(tc, test_lars);
    tcase_add_test(tc, test_lamb);
    suite_add_tcase(s, tc);
    return s;
}
