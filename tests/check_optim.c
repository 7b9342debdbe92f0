/* Tests of the optimizers, against a plain double-precision reference of each
 * rule over several steps and against numbers worked out by hand. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "optim.h"
#include "suites.h"

/* A 2x3 weight, a bias of 3 and a batch-norm gamma of 2, as a model has them;
 * the "long" fixture makes tensors longer than the 8-lane blocks that the
 * norm sums work in, with a partial block at the end. */
static struct arena a;

enum { W0 = 0, B0 = 1, G0 = 2, REF_MAX = 128, VIEW_MAX = 64 };

static void setup_shapes(int rows, int cols, int nbias, int ngamma)
{
    arena_init(&a);
    ck_assert_int_eq(arena_declare(&a, "fc1.weight", ROLE_WEIGHT, rows, cols, 0), W0);
    ck_assert_int_eq(arena_declare(&a, "fc1.bias", ROLE_BIAS, nbias, 1, 0), B0);
    ck_assert_int_eq(arena_declare(&a, "bn1.weight", ROLE_BN_GAMMA, ngamma, 1, 0), G0);
    ck_assert_int_eq(arena_allocate(&a), 0);
    ck_assert_uint_le(a.n, REF_MAX);
    for (int v = 0; v < a.nviews; v++) {
        ck_assert_uint_le(a.views[v].n, VIEW_MAX);
        for (size_t i = 0; i < a.views[v].n; i++)
            arena_w(&a, v)[i] = 0.3f * (float)(i % 7 + 1) * (v == B0 ? -1.0f : 1.0f) +
                                0.1f * (float)v;
    }
}

static void setup(void)
{
    setup_shapes(2, 3, 3, 2);
}

static void setup_long(void)
{
    setup_shapes(5, 7, 19, 2);
}

static void teardown(void)
{
    arena_free(&a);
}

/* Gradients of step t, of both signs and varied sizes, as sums over a batch. */
static void set_grads(int t)
{
    for (int v = 0; v < a.nviews; v++)
        for (size_t i = 0; i < a.views[v].n; i++)
            arena_g(&a, v)[i] = (float)(2.0 * sin(1.0 + 0.7 * (double)i + 1.3 * v + 0.9 * t));
}

/* The rate of step t: changing, so that where the rate sits (outside the SGD
 * buffer, inside the LARS one) matters. */
static float lr_at(int t)
{
    return 0.1f - 0.01f * (float)t;
}

/* ---- reference: each rule written straight from its definition, in double */

struct ref {
    double w[REF_MAX], m[REF_MAX], v[REF_MAX];
};

static void ref_init(struct ref *r)
{
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < a.n; i++)
        r->w[i] = a.w[i];
}

static double ref_norm(const double *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i] * x[i];
    return sqrt(s);
}

static void ref_step(struct ref *r, const struct optim_config *c, double lr, double mu, double s,
                     long t)
{
    double b2 = c->beta2, eps = c->eps, eta = c->trust_coef;
    for (int k = 0; k < a.nviews; k++) {
        const struct tensor_view *tv = &a.views[k];
        if (tv->lr_mult == 0.0f)
            continue;
        double lrv = lr * tv->lr_mult;
        bool vec = tv->role == ROLE_BIAS || tv->role == ROLE_BN_GAMMA || tv->role == ROLE_BN_BETA;
        bool trust_exempt = c->trust_exempt_vectors && vec;
        double wd = c->wd_exempt_bn_bias && vec ? 0.0 : c->weight_decay;
        if ((c->kind == OPTIM_LARS || c->kind == OPTIM_LAMB) && trust_exempt)
            wd = 0.0;
        double *w = r->w + tv->off, *m = r->m + tv->off, *v = r->v + tv->off;
        const float *g = a.g + tv->off;
        size_t n = tv->n;
        double u[VIEW_MAX];
        switch (c->kind) {
        case OPTIM_SGD:
            for (size_t i = 0; i < n; i++) {
                double ge = s * g[i] + (c->wd_mode == WD_L2 ? wd * w[i] : 0.0);
                m[i] = mu * m[i] + ge;
                double d = c->nesterov ? ge + mu * m[i] : m[i];
                double decay = c->wd_mode == WD_DECOUPLED ? lrv * wd * w[i] : 0.0;
                w[i] = w[i] - lrv * d - decay;
            }
            break;
        case OPTIM_ADAM:
        case OPTIM_ADAMW:
            for (size_t i = 0; i < n; i++) {
                double ge = s * g[i] + (c->kind == OPTIM_ADAM ? wd * w[i] : 0.0);
                m[i] = mu * m[i] + (1 - mu) * ge;
                v[i] = b2 * v[i] + (1 - b2) * ge * ge;
                double mhat = m[i] / (1 - pow(mu, (double)t));
                double vhat = v[i] / (1 - pow(b2, (double)t));
                double decay = c->kind == OPTIM_ADAMW ? lrv * wd * w[i] : 0.0;
                w[i] = w[i] - lrv * mhat / (sqrt(vhat) + eps) - decay;
            }
            break;
        case OPTIM_LARS: {
            for (size_t i = 0; i < n; i++)
                u[i] = s * g[i] + wd * w[i];
            double wn = ref_norm(w, n), gn = ref_norm(u, n);
            double trust = !trust_exempt && wn > 0 && gn > 0 ? eta * wn / gn : 1.0;
            for (size_t i = 0; i < n; i++) {
                m[i] = mu * m[i] + lrv * trust * u[i];
                w[i] -= c->nesterov ? lrv * trust * u[i] + mu * m[i] : m[i];
            }
            break;
        }
        case OPTIM_LAMB: {
            for (size_t i = 0; i < n; i++) {
                double ge = s * g[i];
                m[i] = mu * m[i] + (1 - mu) * ge;
                v[i] = b2 * v[i] + (1 - b2) * ge * ge;
                double mhat = m[i] / (1 - pow(mu, (double)t));
                double vhat = v[i] / (1 - pow(b2, (double)t));
                u[i] = mhat / (sqrt(vhat) + eps) + wd * w[i];
            }
            double wn = ref_norm(w, n), rn = ref_norm(u, n);
            double trust = !trust_exempt && wn > 0 && rn > 0 ? wn / rn : 1.0;
            for (size_t i = 0; i < n; i++)
                w[i] -= lrv * trust * u[i];
            break;
        }
        }
    }
}

/* Relative 1e-5, with a floor for values that pass near zero. */
static void check_array(const float *got, const double *want, double abs_floor,
                        const char *what, const char *array, int step)
{
    for (int v = 0; v < a.nviews; v++) {
        const struct tensor_view *tv = &a.views[v];
        for (size_t i = tv->off; i < tv->off + tv->n; i++)
            ck_assert_msg(fabs(got[i] - want[i]) <= 1e-5 * fabs(want[i]) + abs_floor,
                          "%s, step %d, %s of %s[%zu]: %.9g, expected %.9g", what, step, array,
                          tv->name, i - tv->off, (double)got[i], want[i]);
    }
}

static void check_against(const struct optim *o, const struct ref *r, const char *what, int step)
{
    check_array(a.w, r->w, 1e-6, what, "w", step);
    check_array(o->m, r->m, 1e-6, what, "m", step);
    if (o->v)
        check_array(o->v, r->v, 1e-10, what, "v", step);
}

/* Runs steps first..last of optimizer and reference side by side. */
static void run_steps(struct optim *o, struct ref *r, const char *what, int first, int last,
                      const float *mus, float scale)
{
    for (int t = first; t <= last; t++) {
        set_grads(t);
        float mu = mus[t - 1];
        ref_step(r, &o->cfg, lr_at(t), mu, scale, t);
        optim_step(o, &a, lr_at(t), mu, scale);
        check_against(o, r, what, t);
    }
    ck_assert_int_eq(o->t, last);
}

static void run_table_case(const struct optim_config *cfg, const char *what, const float *mus,
                           float scale)
{
    struct optim o;
    ck_assert_int_eq(optim_init(&o, cfg, &a), 0);
    struct ref r;
    ref_init(&r);
    run_steps(&o, &r, what, 1, 4, mus, scale);
    optim_free(&o);
}

static const float MU_09[] = { 0.9f, 0.9f, 0.9f, 0.9f, 0.9f };
static const float MU_0[] = { 0.0f, 0.0f, 0.0f, 0.0f, 0.0f };

/* ---- init */

static const enum optim_kind all_kinds[] = { OPTIM_SGD, OPTIM_ADAM, OPTIM_ADAMW, OPTIM_LARS, OPTIM_LAMB };

START_TEST(test_init_state)
{
    enum optim_kind kind = all_kinds[_i];
    struct optim o;
    struct optim_config cfg = { .kind = kind, .beta2 = 0.999f, .eps = 1e-8f };
    ck_assert_int_eq(optim_init(&o, &cfg, &a), 0);
    ck_assert_int_eq(o.t, 0);
    ck_assert_uint_eq(o.n, a.n);
    ck_assert_ptr_nonnull(o.m);
    ck_assert_uint_eq((uintptr_t)o.m % 64, 0);
    bool second = kind == OPTIM_ADAM || kind == OPTIM_ADAMW || kind == OPTIM_LAMB;
    if (second) {
        ck_assert_ptr_nonnull(o.v);
        ck_assert_uint_eq((uintptr_t)o.v % 64, 0);
    } else {
        ck_assert_ptr_null(o.v);
    }
    for (size_t i = 0; i < a.n; i++) {
        ck_assert_float_eq(o.m[i], 0.0f);
        if (second)
            ck_assert_float_eq(o.v[i], 0.0f);
    }
    optim_free(&o);
    ck_assert_ptr_null(o.m);
    ck_assert_ptr_null(o.v);
}
END_TEST

/* ---- SGD */

struct sgd_case {
    const char *what;
    bool momentum, nesterov;
    enum wd_mode mode;
    float wd;
    bool exempt;
    float scale;
};

static const struct sgd_case sgd_cases[] = {
    { "plain", false, false, WD_L2, 0.0f, false, 0.25f },
    { "plain + L2", false, false, WD_L2, 0.01f, false, 0.25f },
    { "momentum + L2", true, false, WD_L2, 0.01f, false, 0.25f },
    { "nesterov + L2", true, true, WD_L2, 0.01f, false, 0.25f },
    { "momentum + decoupled", true, false, WD_DECOUPLED, 0.05f, false, 0.25f },
    { "nesterov + decoupled", true, true, WD_DECOUPLED, 0.05f, false, 0.25f },
    { "momentum + L2, vectors exempt", true, false, WD_L2, 0.05f, true, 0.25f },
    { "nesterov + decoupled, vectors exempt", true, true, WD_DECOUPLED, 0.05f, true, 0.25f },
    { "momentum, grad_scale 1/512", true, false, WD_L2, 0.01f, false, 1.0f / 512 },
};

START_TEST(test_sgd_table)
{
    const struct sgd_case *c = &sgd_cases[_i];
    struct optim_config cfg = { .kind = OPTIM_SGD, .nesterov = c->nesterov, .weight_decay = c->wd,
                                .wd_mode = c->mode, .wd_exempt_bn_bias = c->exempt };
    run_table_case(&cfg, c->what, c->momentum ? MU_09 : MU_0, c->scale);
}
END_TEST

/* One element through three steps; every other parameter and gradient is 0
 * and must stay so. */
struct by_hand {
    const char *what;
    struct optim_config cfg;
    float lr, mu, scale;
    int view;
    size_t idx;
    float w0, g;
    double want[3];
};

static const struct by_hand sgd_by_hand[] = {
    /* g' = 1: buf 1, 1.9, 2.71 */
    { "momentum", { .kind = OPTIM_SGD, .wd_mode = WD_L2 }, 0.1f, 0.9f, 0.5f, W0, 4, 1.0f, 2.0f,
      { 0.9, 0.71, 0.439 } },
    /* d = 1 + 0.9 buf = 1.9, 2.71, 3.439 */
    { "nesterov", { .kind = OPTIM_SGD, .nesterov = true, .wd_mode = WD_L2 }, 0.1f, 0.9f, 0.5f,
      W0, 4, 1.0f, 2.0f, { 0.81, 0.539, 0.1951 } },
    { "plain, grad_scale 1/8", { .kind = OPTIM_SGD, .wd_mode = WD_L2 }, 0.1f, 0.0f, 0.125f, W0, 4,
      1.0f, 8.0f, { 0.9, 0.8, 0.7 } },
    /* g' = 0.1 w: buf 0.1, 0.189, 0.26721 */
    { "L2 decay through momentum", { .kind = OPTIM_SGD, .weight_decay = 0.1f, .wd_mode = WD_L2 },
      0.1f, 0.9f, 1.0f, W0, 4, 1.0f, 0.0f, { 0.99, 0.9711, 0.944379 } },
    /* w *= 0.99 each step, the buffer never sees the decay */
    { "decoupled decay beside momentum",
      { .kind = OPTIM_SGD, .weight_decay = 0.1f, .wd_mode = WD_DECOUPLED }, 0.1f, 0.9f, 1.0f, W0,
      4, 1.0f, 0.0f, { 0.99, 0.9801, 0.970299 } },
    /* w -= 0.01 w + 0.1 */
    { "decoupled decay and gradient",
      { .kind = OPTIM_SGD, .weight_decay = 0.1f, .wd_mode = WD_DECOUPLED }, 0.1f, 0.0f, 0.5f, W0,
      4, 1.0f, 2.0f, { 0.89, 0.7811, 0.673289 } },
    { "exempt bias keeps its value",
      { .kind = OPTIM_SGD, .weight_decay = 0.1f, .wd_mode = WD_L2, .wd_exempt_bn_bias = true },
      0.1f, 0.9f, 1.0f, B0, 1, 1.0f, 0.0f, { 1.0, 1.0, 1.0 } },
    { "exempt gamma keeps its value",
      { .kind = OPTIM_SGD, .weight_decay = 0.1f, .wd_mode = WD_DECOUPLED,
        .wd_exempt_bn_bias = true },
      0.1f, 0.9f, 1.0f, G0, 0, 1.0f, 0.0f, { 1.0, 1.0, 1.0 } },
};

static void run_by_hand(const struct by_hand *h)
{
    memset(a.w, 0, a.n * sizeof *a.w);
    memset(a.g, 0, a.n * sizeof *a.g);
    float *w = arena_w(&a, h->view) + h->idx;
    *w = h->w0;
    arena_g(&a, h->view)[h->idx] = h->g;
    struct optim o;
    ck_assert_int_eq(optim_init(&o, &h->cfg, &a), 0);
    for (int t = 0; t < 3; t++) {
        optim_step(&o, &a, h->lr, h->mu, h->scale);
        ck_assert_msg(fabs(*w - h->want[t]) <= 1e-5 * fabs(h->want[t]) + 1e-7,
                      "%s, step %d: %.9g, expected %.9g", h->what, t + 1, (double)*w,
                      h->want[t]);
        for (size_t i = 0; i < a.n; i++)
            if (a.w + i != w)
                ck_assert_msg(a.w[i] == 0.0f, "%s: w[%zu] moved", h->what, i);
    }
    optim_free(&o);
}

START_TEST(test_sgd_by_hand)
{
    run_by_hand(&sgd_by_hand[_i]);
}
END_TEST

/* ---- Adam, AdamW */

static const float MU_CYCLED[] = { 0.95f, 0.9f, 0.85f, 0.8f, 0.85f };

struct adam_case {
    const char *what;
    enum optim_kind kind;
    enum wd_mode mode; /* to show that it is ignored */
    bool exempt;
    const float *mus;
};

static const struct adam_case adam_cases[] = {
    { "adam", OPTIM_ADAM, WD_L2, false, MU_09 },
    { "adam, vectors exempt", OPTIM_ADAM, WD_L2, true, MU_09 },
    { "adam ignores wd_mode decoupled", OPTIM_ADAM, WD_DECOUPLED, false, MU_09 },
    { "adam, beta1 cycled by the schedule", OPTIM_ADAM, WD_L2, false, MU_CYCLED },
    { "adamw", OPTIM_ADAMW, WD_DECOUPLED, false, MU_09 },
    { "adamw, vectors exempt", OPTIM_ADAMW, WD_DECOUPLED, true, MU_09 },
    { "adamw ignores wd_mode L2", OPTIM_ADAMW, WD_L2, false, MU_09 },
};

START_TEST(test_adam_table)
{
    const struct adam_case *c = &adam_cases[_i];
    struct optim_config cfg = { .kind = c->kind, .beta2 = 0.999f, .eps = 1e-8f,
                                .weight_decay = 0.05f, .wd_mode = c->mode,
                                .wd_exempt_bn_bias = c->exempt };
    run_table_case(&cfg, c->what, c->mus, 0.25f);
}
END_TEST

/* A constant gradient makes the bias-corrected mhat = g and vhat = g^2 at
 * every step, so each step moves w by lr (uncorrected, step 1 would move it
 * by lr (1-b1)/sqrt(1-b2) = 3.16 lr). */
static const struct by_hand adam_by_hand[] = {
    { "adam, constant gradient", { .kind = OPTIM_ADAM, .beta2 = 0.999f, .eps = 1e-8f }, 0.01f,
      0.9f, 1.0f, W0, 2, 1.0f, 0.5f, { 0.99, 0.98, 0.97 } },
    { "adam, negative gradient", { .kind = OPTIM_ADAM, .beta2 = 0.999f, .eps = 1e-8f }, 0.01f,
      0.9f, 0.25f, B0, 2, -1.0f, -8.0f, { -0.99, -0.98, -0.97 } },
    /* w -= 0.01 (1 + 0.1 w) */
    { "adamw, constant gradient",
      { .kind = OPTIM_ADAMW, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f }, 0.01f, 0.9f,
      1.0f, W0, 2, 1.0f, 0.5f, { 0.989, 0.978011, 0.967032989 } },
    { "adamw, exempt gamma",
      { .kind = OPTIM_ADAMW, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f,
        .wd_exempt_bn_bias = true },
      0.01f, 0.9f, 1.0f, G0, 1, 1.0f, 0.5f, { 0.99, 0.98, 0.97 } },
};

START_TEST(test_adam_by_hand)
{
    run_by_hand(&adam_by_hand[_i]);
}
END_TEST

/* ---- LARS */

struct trust_case {
    const char *what;
    bool nesterov, trust_exempt, wd_exempt;
    float wd;
};

static const struct trust_case lars_cases[] = {
    { "lars", false, true, false, 0.01f },
    { "lars nesterov", true, true, false, 0.01f },
    { "lars, trust on vectors too", false, false, false, 0.01f },
    { "lars nesterov, trust on vectors, wd exempt", true, false, true, 0.01f },
    { "lars, no decay", false, true, false, 0.0f },
};

START_TEST(test_lars_table)
{
    const struct trust_case *c = &lars_cases[_i];
    struct optim_config cfg = { .kind = OPTIM_LARS, .nesterov = c->nesterov, .weight_decay = c->wd,
                                .wd_mode = WD_L2, .trust_coef = 0.02f,
                                .trust_exempt_vectors = c->trust_exempt,
                                .wd_exempt_bn_bias = c->wd_exempt };
    run_table_case(&cfg, c->what, MU_09, 0.25f);
}
END_TEST

/* w = (3, 4) and g' = (0.6, 0.8) are parallel, so w stays on that line and
 * the trust ratio is 0.02 |w| / 1: 0.1, 0.098, 0.09424. The bias (trust 1)
 * follows plain momentum with lr g' = 0.2. */
START_TEST(test_lars_by_hand)
{
    memset(a.w, 0, a.n * sizeof *a.w);
    memset(a.g, 0, a.n * sizeof *a.g);
    float *w = arena_w(&a, W0), *b = arena_w(&a, B0);
    w[0] = 3.0f, w[1] = 4.0f, b[0] = 1.0f;
    arena_g(&a, W0)[0] = 1.2f, arena_g(&a, W0)[1] = 1.6f, arena_g(&a, B0)[0] = 0.4f;
    struct optim o;
    struct optim_config cfg = { .kind = OPTIM_LARS, .trust_coef = 0.02f,
                                .trust_exempt_vectors = true };
    ck_assert_int_eq(optim_init(&o, &cfg, &a), 0);
    static const double want[3][3] = {
        { 2.94, 3.92, 0.8 }, { 2.8272, 3.7696, 0.42 }, { 2.669136, 3.558848, -0.122 }
    };
    for (int t = 0; t < 3; t++) {
        optim_step(&o, &a, 1.0f, 0.9f, 0.5f);
        const float got[3] = { w[0], w[1], b[0] };
        for (int k = 0; k < 3; k++)
            ck_assert_msg(fabs(got[k] - want[t][k]) <= 1e-5 * fabs(want[t][k]),
                          "step %d, value %d: %.9g, expected %.9g", t + 1, k, (double)got[k],
                          want[t][k]);
    }
    optim_free(&o);
}
END_TEST

/* ---- LAMB */

static const struct trust_case lamb_cases[] = {
    { "lamb", false, true, false, 0.01f },
    { "lamb, trust on vectors too", false, false, false, 0.01f },
    { "lamb, trust on vectors, wd exempt", false, false, true, 0.01f },
    { "lamb, no decay", false, true, false, 0.0f },
};

START_TEST(test_lamb_table)
{
    const struct trust_case *c = &lamb_cases[_i];
    struct optim_config cfg = { .kind = OPTIM_LAMB, .beta2 = 0.999f, .eps = 1e-6f,
                                .weight_decay = c->wd, .trust_exempt_vectors = c->trust_exempt,
                                .wd_exempt_bn_bias = c->wd_exempt };
    run_table_case(&cfg, c->what, MU_09, 0.25f);
}
END_TEST

/* A constant gradient makes the ratio r = (1, 1) (up to eps), so the trust is
 * |w| / sqrt 2: 5 / sqrt 2 first, and each step moves both coordinates by
 * 0.01 |w| / sqrt 2. The bias (trust 1) moves by lr. */
START_TEST(test_lamb_by_hand)
{
    memset(a.w, 0, a.n * sizeof *a.w);
    memset(a.g, 0, a.n * sizeof *a.g);
    float *w = arena_w(&a, W0), *b = arena_w(&a, B0);
    w[0] = 3.0f, w[1] = 4.0f, b[0] = 1.0f;
    arena_g(&a, W0)[0] = 1.2f, arena_g(&a, W0)[1] = 1.6f, arena_g(&a, B0)[0] = 0.4f;
    struct optim o;
    struct optim_config cfg = { .kind = OPTIM_LAMB, .beta2 = 0.999f, .eps = 1e-6f,
                                .trust_exempt_vectors = true };
    ck_assert_int_eq(optim_init(&o, &cfg, &a), 0);
    static const double want[3][3] = { { 2.964644661, 3.964644661, 0.99 },
                                       { 2.929639286, 3.929639286, 0.98 },
                                       { 2.894980340, 3.894980340, 0.97 } };
    for (int t = 0; t < 3; t++) {
        optim_step(&o, &a, 0.01f, 0.9f, 0.5f);
        const float got[3] = { w[0], w[1], b[0] };
        for (int k = 0; k < 3; k++)
            ck_assert_msg(fabs(got[k] - want[t][k]) <= 1e-5 * fabs(want[t][k]),
                          "step %d, value %d: %.9g, expected %.9g", t + 1, k, (double)got[k],
                          want[t][k]);
    }
    optim_free(&o);
}
END_TEST

/* ---- rates and freezing */

static const struct optim_config rate_cfgs[] = {
    { .kind = OPTIM_SGD, .nesterov = true, .weight_decay = 0.01f, .wd_mode = WD_DECOUPLED },
    { .kind = OPTIM_ADAM, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f },
    { .kind = OPTIM_ADAMW, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f },
    { .kind = OPTIM_LARS, .weight_decay = 0.01f, .trust_coef = 0.02f },
    { .kind = OPTIM_LAMB, .beta2 = 0.999f, .eps = 1e-6f, .weight_decay = 0.01f },
};
static const char *const rate_cfg_names[] = { "sgd", "adam", "adamw", "lars", "lamb" };

/* Two steps at full rate build up state; then the weight is frozen, the
 * bias runs at half rate, gamma at a quarter. The frozen weight and its state
 * must not change by a single bit. */
START_TEST(test_rates_and_freezing)
{
    const struct optim_config *cfg = &rate_cfgs[_i];
    struct optim o;
    ck_assert_int_eq(optim_init(&o, cfg, &a), 0);
    struct ref r;
    ref_init(&r);
    run_steps(&o, &r, rate_cfg_names[_i], 1, 2, MU_09, 0.25f);

    const struct tensor_view *tv = &a.views[W0];
    float w[6], m[6], v[6];
    memcpy(w, a.w + tv->off, sizeof w);
    memcpy(m, o.m + tv->off, sizeof m);
    if (o.v)
        memcpy(v, o.v + tv->off, sizeof v);
    ck_assert_float_ne(m[0], 0.0f);
    a.views[W0].lr_mult = 0.0f;
    a.views[B0].lr_mult = 0.5f;
    a.views[G0].lr_mult = 0.25f;
    for (int t = 3; t <= 5; t++) {
        run_steps(&o, &r, rate_cfg_names[_i], t, t, MU_09, 0.25f);
        ck_assert(memcmp(w, a.w + tv->off, sizeof w) == 0);
        ck_assert(memcmp(m, o.m + tv->off, sizeof m) == 0);
        if (o.v)
            ck_assert(memcmp(v, o.v + tv->off, sizeof v) == 0);
    }
    optim_free(&o);
}
END_TEST

/* Every kind over tensors of several lane blocks. */
START_TEST(test_long_tensors)
{
    struct optim_config cfg = rate_cfgs[_i];
    cfg.trust_exempt_vectors = false;
    run_table_case(&cfg, rate_cfg_names[_i], MU_09, 0.25f);
}
END_TEST

/* One rank's shard of a sharded optimizer: ranges that cut tensors, listed
 * out of arena order. Owning all of the arena that way must give the
 * reference's numbers (norms summed over the parts of each tensor); owning
 * part of it must leave the rest untouched, and for the elementwise rules
 * give, inside, exactly what the whole-arena optimizer gives. */
static const struct optim_range scrambled[] = { { 30, 55 }, { 0, 12 }, { 55, 82 }, { 12, 30 } };

/* The long fixture's layout (tensors start 64-byte aligned), which the
 * ranges above cut: the weight at 12 and 30, the bias at 55. */
static void check_long_layout(void)
{
    ck_assert_uint_eq(a.views[W0].off, 0);
    ck_assert_uint_eq(a.views[B0].off, 48);
    ck_assert_uint_eq(a.views[G0].off, 80);
    ck_assert_uint_eq(a.n, 82);
}

START_TEST(test_ranges_cover_all)
{
    struct optim_config cfg = rate_cfgs[_i];
    check_long_layout();
    struct optim o;
    ck_assert_int_eq(optim_init_ranges(&o, &cfg, &a, scrambled, 4), 0);
    ck_assert_uint_eq(o.n, a.n);
    struct ref r;
    ref_init(&r);
    for (int t = 1; t <= 4; t++) {
        set_grads(t);
        ref_step(&r, &cfg, lr_at(t), 0.9f, 0.25f, t);
        optim_step(&o, &a, lr_at(t), 0.9f, 0.25f);
        check_array(a.w, r.w, 1e-6, rate_cfg_names[_i], "w", t);
    }
    optim_free(&o);
}
END_TEST

START_TEST(test_ranges_part)
{
    struct optim_config cfg = rate_cfgs[_i];
    check_long_layout();
    float w0[82], w_all[82];
    memcpy(w0, a.w, sizeof w0);
    struct optim whole, part;
    ck_assert_int_eq(optim_init(&whole, &cfg, &a), 0);
    ck_assert_int_eq(optim_init_ranges(&part, &cfg, &a, scrambled, 2), 0);
    ck_assert_uint_eq(part.n, 37);
    for (int t = 1; t <= 3; t++) {
        set_grads(t);
        optim_step(&whole, &a, lr_at(t), 0.9f, 0.25f);
    }
    memcpy(w_all, a.w, sizeof w_all);
    memcpy(a.w, w0, sizeof w0);
    for (int t = 1; t <= 3; t++) {
        set_grads(t);
        optim_step(&part, &a, lr_at(t), 0.9f, 0.25f);
    }
    bool elementwise = cfg.kind != OPTIM_LARS && cfg.kind != OPTIM_LAMB;
    for (int v = 0; v < a.nviews; v++)
        for (size_t i = a.views[v].off; i < a.views[v].off + a.views[v].n; i++) {
            bool owned = (i >= 30 && i < 55) || i < 12;
            if (!owned)
                ck_assert_msg(a.w[i] == w0[i], "%s: w[%zu] outside the ranges moved",
                              rate_cfg_names[_i], i);
            else if (elementwise)
                ck_assert_msg(a.w[i] == w_all[i], "%s: w[%zu] %.9g, whole-arena %.9g",
                              rate_cfg_names[_i], i, (double)a.w[i], (double)w_all[i]);
            else
                ck_assert_msg(a.w[i] != w0[i], "%s: w[%zu] inside the ranges did not move",
                              rate_cfg_names[_i], i);
        }
    optim_free(&whole);
    optim_free(&part);
}
END_TEST

#define NELEM(x) ((int)(sizeof(x) / sizeof((x)[0])))

/* Clipping by global norm: a mean gradient of norm 5 (summed over B = 4:
 * |sum| = 20) clipped to 1 is scaled by 1/5, so the scale on the sum is
 * 1/20; not clipped when below the bound, nor when off; exactly 1/B then. */
START_TEST(test_clip_grad_scale)
{
    ck_assert_float_eq(optim_clip_grad_scale(400.0, 4, 0.0), 0.25f);
    ck_assert_float_eq(optim_clip_grad_scale(400.0, 4, 5.0), 0.25f);
    ck_assert_float_eq(optim_clip_grad_scale(400.0, 4, 10.0), 0.25f);
    ck_assert_float_eq_tol(optim_clip_grad_scale(400.0, 4, 1.0), 1.0f / 20, 1e-9);
    ck_assert_float_eq_tol(optim_clip_grad_scale(400.0, 4, 2.5), 0.125f, 1e-9);
    /* a clipped step's mean gradient has norm clip_norm */
    float g[3] = { 30, -40, 0 }; /* |g| = 50, summed over B = 2 */
    float sc = optim_clip_grad_scale(2500.0, 2, 0.5);
    ck_assert_double_eq_tol(hypot(g[0] * sc, g[1] * sc), 0.5, 1e-6);
    /* a NaN norm is not clipped (the divergence check sees the loss) */
    ck_assert_float_eq(optim_clip_grad_scale(NAN, 4, 1.0), 0.25f);
}
END_TEST

Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    struct {
        const char *name;
        void (*setup)(void);
        TCase *tc;
    } tcs[] = { { "init", setup, NULL }, { "sgd", setup, NULL },   { "adam", setup, NULL },
                { "lars", setup, NULL }, { "lamb", setup, NULL },  { "rates", setup, NULL },
                { "long", setup_long, NULL }, { "ranges", setup_long, NULL } };
    for (int i = 0; i < NELEM(tcs); i++) {
        tcs[i].tc = tcase_create(tcs[i].name);
        tcase_add_checked_fixture(tcs[i].tc, tcs[i].setup, teardown);
        suite_add_tcase(s, tcs[i].tc);
    }
    tcase_add_loop_test(tcs[0].tc, test_init_state, 0, NELEM(all_kinds));
    tcase_add_loop_test(tcs[1].tc, test_sgd_table, 0, NELEM(sgd_cases));
    tcase_add_loop_test(tcs[1].tc, test_sgd_by_hand, 0, NELEM(sgd_by_hand));
    tcase_add_loop_test(tcs[2].tc, test_adam_table, 0, NELEM(adam_cases));
    tcase_add_loop_test(tcs[2].tc, test_adam_by_hand, 0, NELEM(adam_by_hand));
    tcase_add_loop_test(tcs[3].tc, test_lars_table, 0, NELEM(lars_cases));
    tcase_add_test(tcs[3].tc, test_lars_by_hand);
    tcase_add_loop_test(tcs[4].tc, test_lamb_table, 0, NELEM(lamb_cases));
    tcase_add_test(tcs[4].tc, test_lamb_by_hand);
    tcase_add_loop_test(tcs[5].tc, test_rates_and_freezing, 0, NELEM(rate_cfgs));
    tcase_add_loop_test(tcs[6].tc, test_long_tensors, 0, NELEM(rate_cfgs));
    tcase_add_loop_test(tcs[7].tc, test_ranges_cover_all, 0, NELEM(rate_cfgs));
    tcase_add_loop_test(tcs[7].tc, test_ranges_part, 0, NELEM(rate_cfgs));
    tcase_add_test(tcs[1].tc, test_clip_grad_scale);
    return s;
}
