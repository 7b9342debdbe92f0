/* Tests of the residual block, res:OC[sS]: the spec item (round trips,
 * refusals), its tensors and memory, central differences of whole models
 * with identity and projection shortcuts (training mode with and without
 * ghost groups, evaluation mode), its running statistics against a double
 * reference, the noise scale's halves, and the CIFAR ResNet-20 of He et al.
 * 2016. The block is glue over conv.c, batchnorm.c and relu.c, whose kernels
 * have tests of their own; these check the wiring. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "model.h"
#include "rng.h"
#include "suites.h"

/* ---- the spec item ----------------------------------------------------------- */

/* written, canonical */
static const char *const spec_good[][2] = {
    { "in:4x8x8,res:8,fc:2", "in:4x8x8,res:8,fc:2" },
    { "in:4x8x8,res:16s2,fc:2", "in:4x8x8,res:16s2,fc:2" },
    { "in:4x8x8,res:8s1,fc:2", "in:4x8x8,res:8,fc:2" },
    { "in:4x8x8,res:08s02,fc:2", "in:4x8x8,res:8s2,fc:2" },
    { "in:3x7x5,res:6s3,res:6,gap,fc:2", "in:3x7x5,res:6s3,res:6,gap,fc:2" },
    { "in:1x2x2,res:300s255,fc:2", "in:1x2x2,res:300s255,fc:2" },
};

START_TEST(test_res_spec_round_trip)
{
    struct spec s, again;
    char err[256], out[256], out2[256];
    ck_assert_msg(spec_parse(&s, spec_good[_i][0], false, 0, err, sizeof err) == 0, "%s: %s",
                  spec_good[_i][0], err);
    spec_format(&s, out, sizeof out);
    ck_assert_str_eq(out, spec_good[_i][1]);
    ck_assert_int_eq(spec_parse(&again, out, false, 0, err, sizeof err), 0);
    spec_format(&again, out2, sizeof out2);
    ck_assert_str_eq(out2, out);
    ck_assert_ptr_eq(s.items[1].kind, layer_kind_find("res", 3));
}
END_TEST

struct bad_case {
    const char *text, *says;
};

/* A plane under 2x2 is refused, 1x1 included (C x 1 x 1 is legal math, but
 * the 3x3 kernels would read one pixel and padding): so is a block after
 * strides have brought the plane down to 1x1. */
static const struct bad_case spec_bad[] = {
    { "in:4x8x8,res:0,fc:2", "res:OC needs its output channels first, from 1 to 65536" },
    { "in:4x8x8,res:,fc:2", "res:OC needs its output channels first" },
    { "in:4x8x8,res:s2,fc:2", "res:OC needs its output channels first" },
    { "in:4x8x8,res:65537,fc:2", "from 1 to 65536" },
    { "in:4x8x8,res,fc:2", "item 2 'res' is not a layer (known: " },
    { "in:4x8x8,res:8s0,fc:2", "item 2 'res:8s0': the stride 0 must be a whole number from 1 to 255" },
    { "in:4x8x8,res:8s256,fc:2", "the stride 256 must be a whole number from 1 to 255" },
    { "in:4x8x8,res:8s,fc:2", "the field s needs a number after it, as in res:32s2" },
    { "in:4x8x8,res:8s2s2,fc:2", "the stride 2s2 must be" },
    { "in:4x8x8,res:8s-2,fc:2", "the stride -2 must be" },
    { "in:4x8x8,res:8k3,fc:2", "'k' is not a field of res (its only one is sS, the stride)" },
    { "in:4x8x8,res:8p1,fc:2", "'p' is not a field of res" },
    { "in:16,res:16,fc:2", "item 2 'res:16': a residual block needs a plane of at least 2x2, not 16x1x1" },
    { "in:4x8x1,res:4,fc:2", "needs a plane of at least 2x2, not 4x8x1" },
    { "in:4x1x8,res:4s2,fc:2", "needs a plane of at least 2x2, not 4x1x8" },
    { "in:4x8x8,res:8s2,res:8s2,res:8s2,res:8s2,fc:2",
      "item 5 'res:8s2': a residual block needs a plane of at least 2x2, not 8x1x1" },
    { "in:4x8x8,gap,res:4,fc:2", "not 4x1x1" },
    { "in:60000x2x2,res:60000,fc:2", "a weight of 60000 x 540000 is too large" },
    { "in:1x4096x4096,res:2,fc:2", "more than 16777216 values per sample" },
    { "in:4x8x8,res:8", "must end with fc:K" },
};

START_TEST(test_res_spec_refusals)
{
    const struct bad_case *c = &spec_bad[_i];
    struct spec s;
    char err[512] = "";
    ck_assert_int_eq(spec_parse(&s, c->text, false, 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, c->says) != NULL, "'%s': message '%s' lacks '%s'", c->text, err,
                  c->says);
}
END_TEST

/* The output plane is conv1's: (H + 2 - 3) / S + 1. */
START_TEST(test_res_spec_shapes)
{
    struct spec s;
    char err[256];
    ck_assert_msg(spec_parse(&s, "in:3x9x7,res:4,res:8s2,res:8s3,res:5,gap,fc:2", false, 0, err,
                             sizeof err) == 0, "%s", err);
    struct shape sh[SPEC_MAX_ITEMS];
    ck_assert_int_eq(spec_shapes(&s, sh, err, sizeof err), 0);
    static const int want[][3] = { { 3, 9, 7 }, { 4, 9, 7 }, { 8, 5, 4 }, { 8, 2, 2 },
                                   { 5, 2, 2 }, { 5, 1, 1 }, { 2, 1, 1 } };
    for (int i = 0; i < s.n; i++)
        ck_assert_msg(sh[i].c == want[i][0] && sh[i].h == want[i][1] && sh[i].w == want[i][2],
                      "item %d: %dx%dx%d", i + 1, sh[i].c, sh[i].h, sh[i].w);
}
END_TEST

/* ---- models ------------------------------------------------------------------ */

static void build(struct model *m, const char *text, int B, int group, double momentum)
{
    struct spec s;
    char err[256];
    ck_assert_msg(spec_parse(&s, text, false, 0, err, sizeof err) == 0, "%s", err);
    struct model_options o = { .bn_group = group, .bn_eps = 1e-5, .bn_momentum = momentum };
    ck_assert_msg(model_build(m, &s, B, &o, err, sizeof err) == 0, "%s", err);
    model_init_params(m, 5);
    for (int i = 0; i < B * m->in_dim; i++)
        m->act[0][i] = (float)rng_normal(9, 99, 0, (uint64_t)i, 0);
    for (int i = 0; i < B; i++)
        m->labels[i] = (int32_t)(i % m->classes);
}

static double loss_of(struct model *m, bool train, int B)
{
    int correct;
    struct pass_ctx ctx = { .train = train, .seed = 1 };
    model_forward(m, &ctx, B);
    return model_loss(m, m->labels, B, &correct);
}

/* Every gamma and beta moved off 1 and 0, so that a wrong sign or a missing
 * term in their gradients or through them shows. */
static void perturb_bn(struct model *m)
{
    for (int v = 0; v < m->arena.nviews; v++) {
        const struct tensor_view *tv = &m->arena.views[v];
        if (tv->role != ROLE_BN_GAMMA && tv->role != ROLE_BN_BETA)
            continue;
        for (size_t k = 0; k < tv->n; k++)
            arena_w(&m->arena, v)[k] += 0.2f * (float)rng_normal(3, 3, (uint64_t)v, k, 0);
    }
}

struct grad_case {
    const char *spec;
    int B, group;
    bool train;
};

/* Identity and projection shortcuts (strided with a channel change, and a
 * pointwise one at stride 1), a block first (no input gradient wanted), odd
 * and 1-wide planes, ghost groups (one of a single sample: its statistics
 * are still over a plane), and evaluation mode. */
static const struct grad_case grad_cases[] = {
    { "in:4x8x8,conv:8k3p1b0,bn,relu,res:8,res:16s2,gap,fc:3", 4, 0, true },
    { "in:4x8x8,conv:8k3p1b0,bn,relu,res:8,res:16s2,gap,fc:3", 5, 2, true },
    { "in:4x8x8,conv:8k3p1b0,bn,relu,res:8,res:16s2,gap,fc:3", 4, 0, false },
    { "in:3x7x7,res:6s2,gap,fc:3", 3, 0, true },
    { "in:4x5x5,res:4,res:6,fc:3", 4, 2, true },
    { "in:2x3x5,res:3s2,res:3,fc:3", 4, 0, true },
    { "in:2x2x2,res:3s2,fc:3", 4, 0, true },
    { "in:3x7x7,res:6s2,res:6,gap,fc:3", 3, 0, false },
};

static bool agrees(double num, double ana)
{
    return fabs(num - ana) <= 2e-2 * fabs(num) + 5e-3;
}

/* How the loss's differences around *w at step h compare with ana: 0 when
 * the central one agrees, 1 when only a one-sided one does (a ReLU kink on
 * the other side), -1 when none does; *central for the message. */
static int differences_agree(struct model *m, float *w, float h, double ana, bool train, int B,
                             double *central)
{
    float saved = *w;
    *w = saved + h;
    double lp = loss_of(m, train, B);
    *w = saved - h;
    double lm = loss_of(m, train, B);
    *w = saved;
    *central = (lp - lm) / (2.0 * h);
    if (agrees(*central, ana))
        return 0;
    double l0 = loss_of(m, train, B);
    return agrees((lp - l0) / h, ana) || agrees((l0 - lm) / h, ana) ? 1 : -1;
}

/* Finite differences of the summed loss against every parameter, in the
 * mode of the case; an evaluation case takes running statistics from one
 * training pass first (momentum 1). The tolerance is check_conv.c's, and
 * so is the step h = 1e-3; but here batch norm spreads a weight's change
 * over every position of a channel, and the block's two ReLUs see hundreds
 * of them, so a step of 1e-3 often carries one across a kink: up to a
 * quarter of a conv weight's central differences miss (by up to 50%; more
 * with ghost groups of 2), some kinks lie closer than 1e-4, where float
 * rounding of the loss takes over, and every miss seen agreed with the
 * one-sided difference away from its kink. So an element passes with
 * either, at step 1e-3 or else 1e-4, and at most a third of them may miss
 * their central difference at 1e-3: a wrong term shows on both sides, and
 * in most elements. */
START_TEST(test_res_model_gradients)
{
    const struct grad_case *c = &grad_cases[_i];
    struct model m;
    build(&m, c->spec, c->B, c->group, 1.0);
    perturb_bn(&m);
    if (!c->train) {
        loss_of(&m, true, c->B);
        model_update_running(&m);
    }
    loss_of(&m, c->train, c->B);
    model_backward(&m, m.labels, c->B, NULL, NULL);
    float *grad = malloc(m.arena.n * sizeof *grad);
    ck_assert_ptr_nonnull(grad);
    memcpy(grad, m.arena.g, m.arena.n * sizeof *grad);
    size_t one_sided = 0;
    for (int v = 0; v < m.arena.nviews; v++) {
        const struct tensor_view *tv = &m.arena.views[v];
        for (size_t k = 0; k < tv->n; k++) {
            float *w = &m.arena.w[tv->off + k];
            double ana = grad[tv->off + k], num, num4 = 0;
            int how = differences_agree(&m, w, 1e-3f, ana, c->train, c->B, &num);
            one_sided += how != 0;
            if (how < 0)
                how = differences_agree(&m, w, 1e-4f, ana, c->train, c->B, &num4);
            ck_assert_msg(how >= 0, "%s: %s[%zu]: numeric %g (h = 1e-3), %g (1e-4), analytic %g",
                          c->spec, tv->name, k, num, num4, ana);
        }
    }
    ck_assert_msg(one_sided <= m.arena.n / 3, "%s: %zu of %zu elements miss at h = 1e-3",
                  c->spec, one_sided, m.arena.n);
    free(grad);
    model_free(&m);
}
END_TEST

/* Names, shapes, roles and groups of the tensors, statistics, FLOPs and
 * the initialisation: He-normal convs, gammas 1, betas 0, running means 0
 * and variances 1. */
START_TEST(test_res_model_layout)
{
    struct model m;
    build(&m, "in:4x8x8,res:4,res:6s2,fc:3", 2, 0, 0.1);
    static const struct {
        const char *name;
        enum tensor_role role;
        int rows, cols, layer;
    } want[] = {
        { "res1.conv1.weight", ROLE_WEIGHT, 4, 36, 0 },
        { "res1.bn1.weight", ROLE_BN_GAMMA, 4, 1, 0 },
        { "res1.bn1.bias", ROLE_BN_BETA, 4, 1, 0 },
        { "res1.conv2.weight", ROLE_WEIGHT, 4, 36, 0 },
        { "res1.bn2.weight", ROLE_BN_GAMMA, 4, 1, 0 },
        { "res1.bn2.bias", ROLE_BN_BETA, 4, 1, 0 },
        { "res2.conv1.weight", ROLE_WEIGHT, 6, 36, 1 },
        { "res2.bn1.weight", ROLE_BN_GAMMA, 6, 1, 1 },
        { "res2.bn1.bias", ROLE_BN_BETA, 6, 1, 1 },
        { "res2.conv2.weight", ROLE_WEIGHT, 6, 54, 1 },
        { "res2.bn2.weight", ROLE_BN_GAMMA, 6, 1, 1 },
        { "res2.bn2.bias", ROLE_BN_BETA, 6, 1, 1 },
        { "res2.proj.weight", ROLE_WEIGHT, 6, 4, 1 },
        { "res2.projbn.weight", ROLE_BN_GAMMA, 6, 1, 1 },
        { "res2.projbn.bias", ROLE_BN_BETA, 6, 1, 1 },
        { "fc1.weight", ROLE_WEIGHT, 3, 96, 2 },
        { "fc1.bias", ROLE_BIAS, 3, 1, 2 },
    };
    ck_assert_int_eq(m.arena.nviews, (int)(sizeof want / sizeof want[0]));
    for (int v = 0; v < m.arena.nviews; v++) {
        const struct tensor_view *tv = &m.arena.views[v];
        ck_assert_str_eq(tv->name, want[v].name);
        ck_assert_msg(tv->role == want[v].role && tv->rows == want[v].rows &&
                      tv->cols == want[v].cols && tv->layer == want[v].layer, "%s", tv->name);
    }
    const struct layer *l = m.layers;
    ck_assert_str_eq(m.arena.views[l[0].w_view].name, "res1.conv1.weight");
    ck_assert_str_eq(m.arena.views[l[1].w_view].name, "res2.conv1.weight");
    ck_assert(l[0].b_view == -1 && l[1].b_view == -1);
    ck_assert(l[0].stat_channels == 8 && l[1].stat_channels == 18);
    ck_assert_uint_eq(m.bn_running_n, 2 * 26);
    ck_assert(l[1].out.c == 6 && l[1].out.h == 4 && l[1].out.w == 4);
    ck_assert_double_eq(model_flops_per_sample(&m),
                        2.0 * (2 * 4 * 36 * 64 + 6 * 36 * 16 + 6 * 54 * 16 + 6 * 4 * 16 + 3 * 96));
    for (int v = 0; v < m.arena.nviews; v++) {
        const struct tensor_view *tv = &m.arena.views[v];
        const float *w = arena_w(&m.arena, v);
        if (tv->role == ROLE_WEIGHT && v < 15 && tv->n >= 100) {
            double s2 = 0;
            for (size_t k = 0; k < tv->n; k++)
                s2 += (double)w[k] * w[k];
            ck_assert_msg(fabs(sqrt(s2 / (double)tv->n) / sqrt(2.0 / tv->cols) - 1) < 0.2,
                          "%s: std %g", tv->name, sqrt(s2 / (double)tv->n));
        }
        for (size_t k = 0; k < tv->n && tv->role != ROLE_WEIGHT; k++)
            ck_assert_float_eq(w[k], tv->role == ROLE_BN_GAMMA ? 1.0f : 0.0f);
    }
    for (size_t k = 0; k < m.bn_running_n; k++)
        ck_assert_float_eq(m.bn_running[k], k < m.bn_running_n / 2 ? 0.0f : 1.0f);
    /* the same seed draws the same weights, another seed others */
    float first = m.arena.w[0];
    model_init_params(&m, 5);
    ck_assert_float_eq(m.arena.w[0], first);
    model_init_params(&m, 6);
    ck_assert(m.arena.w[0] != first);
    model_free(&m);
}
END_TEST

/* ---- running statistics ------------------------------------------------------ */

/* Channel c of samples [lo, hi) of x (B, C, HW): the mean and the sum of
 * squared deviations from it, over n = (hi - lo) x HW values, in double. */
static double ref_group_moments(const float *x, int C, int HW, int c, int lo, int hi,
                                double *var)
{
    double n = (double)(hi - lo) * HW, mean = 0;
    for (int i = lo; i < hi; i++)
        for (int p = 0; p < HW; p++)
            mean += x[((size_t)i * C + c) * HW + p];
    mean /= n;
    *var = 0;
    for (int i = lo; i < hi; i++)
        for (int p = 0; p < HW; p++)
            *var += pow(x[((size_t)i * C + c) * HW + p] - mean, 2);
    return mean;
}

/* Sums over ghost groups of G samples of x (B, C, HW)'s group means and
 * unbiased group variances (n = group size x HW), per channel. */
static void ref_stats(double *sm, double *sv, const float *x, int B, int C, int HW, int G)
{
    for (int c = 0; c < C; c++) {
        sm[c] = sv[c] = 0;
        for (int lo = 0; lo < B; lo += G) {
            int hi = lo + G < B ? lo + G : B;
            double n = (double)(hi - lo) * HW, var;
            double mean = ref_group_moments(x, C, HW, c, lo, hi, &var);
            sm[c] += mean;
            sv[c] += var / (n - 1);
        }
    }
}

/* y = relu((x - group mean) / sqrt(group variance + eps)), in place: bn1 with
 * its initial gamma 1 and beta 0, then the relu. */
static void ref_bn_relu(float *x, int B, int C, int HW, int G, double eps)
{
    for (int c = 0; c < C; c++)
        for (int lo = 0; lo < B; lo += G) {
            int hi = lo + G < B ? lo + G : B;
            double n = (double)(hi - lo) * HW, var;
            double mean = ref_group_moments(x, C, HW, c, lo, hi, &var);
            double rstd = 1 / sqrt(var / n + eps);
            for (int i = lo; i < hi; i++)
                for (int p = 0; p < HW; p++) {
                    float *v = &x[((size_t)i * C + c) * HW + p];
                    *v = (float)fmax(0.0, (*v - mean) * rstd);
                }
        }
}

static void expect_sums(const float *got, const double *want, int C, const char *what)
{
    for (int c = 0; c < C; c++)
        ck_assert_msg(fabs(got[c] - want[c]) <= 1e-4 * (1 + fabs(want[c])), "%s[%d]: %g, want %g",
                      what, c, got[c], want[c]);
}

/* bn_batch holds, in the order bn1, bn2, projbn, each block's per-channel
 * sums over ghost groups of their means and unbiased variances, after the
 * bn before it; the running statistics move towards them by momentum. */
START_TEST(test_res_running_statistics)
{
    enum { B = 6, G = 4, IC = 3, OC = 4, HW = 9 };
    struct model m;
    build(&m, "in:3x6x6,bn,res:4s2,gap,fc:2", B, G, 0.1);
    ck_assert_uint_eq(m.bn_running_n, 2 * (IC + 3 * OC));
    const size_t half = m.bn_running_n / 2, at = IC;
    loss_of(&m, true, B);
    ck_assert_float_eq(m.bn_batch[m.bn_running_n], 2.0f);
    const float *x = m.act[1]; /* the block's input */
    const struct arena *a = &m.arena;
    struct conv_geom g1, g2, gp;
    ck_assert_int_eq(conv_geom_init(&g1, IC, 6, 6, OC, 3, 2, 1), 0);
    ck_assert_int_eq(conv_geom_init(&g2, OC, 3, 3, OC, 3, 1, 1), 0);
    ck_assert_int_eq(conv_geom_init(&gp, IC, 6, 6, OC, 1, 2, 0), 0);
    float y[B * OC * HW], r[B * OC * HW], col[IC * 9 * HW + OC * 9 * HW];
    double sm[OC], sv[OC];
    conv_forward(y, col, x, arena_w(a, 2), NULL, B, &g1);
    ref_stats(sm, sv, y, B, OC, HW, G);
    expect_sums(m.bn_batch + at, sm, OC, "bn1 mean");
    expect_sums(m.bn_batch + half + at, sv, OC, "bn1 var");
    ref_bn_relu(y, B, OC, HW, G, 1e-5);
    conv_forward(r, col, y, arena_w(a, 5), NULL, B, &g2);
    ref_stats(sm, sv, r, B, OC, HW, G);
    expect_sums(m.bn_batch + at + OC, sm, OC, "bn2 mean");
    expect_sums(m.bn_batch + half + at + OC, sv, OC, "bn2 var");
    conv_forward(y, col, x, arena_w(a, 8), NULL, B, &gp);
    ref_stats(sm, sv, y, B, OC, HW, G);
    expect_sums(m.bn_batch + at + 2 * OC, sm, OC, "projbn mean");
    expect_sums(m.bn_batch + half + at + 2 * OC, sv, OC, "projbn var");
    ck_assert_str_eq(a->views[8].name, "res1.proj.weight");

    model_update_running(&m);
    for (size_t k = 0; k < half; k++) {
        ck_assert_float_eq_tol(m.bn_running[k], 0.1f * m.bn_batch[k] / 2, 1e-6);
        ck_assert_float_eq_tol(m.bn_running[half + k], 0.9f + 0.1f * m.bn_batch[half + k] / 2,
                               1e-6);
    }
    /* an evaluation pass leaves the batch statistics alone */
    float before = m.bn_batch[at + 1];
    m.bn_batch[m.bn_running_n] = 0;
    loss_of(&m, false, B);
    ck_assert_float_eq(m.bn_batch[at + 1], before);
    ck_assert_float_eq(m.bn_batch[m.bn_running_n], 0.0f);
    model_free(&m);
}
END_TEST

/* Ghost groups of half the batch make the halves independent (each group's
 * statistics and gradients are its own samples'), so the half norms of one
 * backward equal the norms of backward passes over each half alone, every
 * tensor counted, the block's bn tensors included. */
START_TEST(test_res_half_norms)
{
    enum { B = 6, HALF = 3, D = 3 * 6 * 6 };
    struct model m;
    build(&m, "in:3x6x6,conv:4k3p1b0,bn,relu,res:4,res:6s2,gap,fc:3", B, HALF, 0.1);
    perturb_bn(&m);
    ck_assert_int_eq(model_enable_halves(&m), 0);
    loss_of(&m, true, B);
    m.measure_halves = true;
    model_backward(&m, m.labels, B, NULL, NULL);
    double halves[2] = { m.half_sq[0], m.half_sq[1] };
    m.measure_halves = false;
    float input[B * D];
    int32_t labels[B];
    memcpy(input, m.act[0], sizeof input);
    memcpy(labels, m.labels, sizeof labels);
    for (int h = 0; h < 2; h++) {
        memcpy(m.act[0], input + h * HALF * D, (size_t)HALF * D * sizeof(float));
        memcpy(m.labels, labels + h * HALF, (size_t)HALF * sizeof(int32_t));
        loss_of(&m, true, HALF);
        model_backward(&m, m.labels, HALF, NULL, NULL);
        double sq = 0;
        for (size_t k = 0; k < m.arena.n; k++)
            sq += (double)m.arena.g[k] * m.arena.g[k];
        ck_assert_double_eq_tol(halves[h], sq, 1e-4 * sq);
    }
    model_free(&m);
}
END_TEST

/* The CIFAR ResNet-20: 3 stages of 3 blocks of 16, 32 and 64 channels, the
 * first of stages 2 and 3 with stride 2 and a projection shortcut. 272,474
 * parameters: 272,474 - 650 (fc) - 464 (stem) = 271,360 in blocks, of which
 * the two projections' 1x1 convs and batch norms are 512 + 64 + 2048 + 128
 * = 2,752 (He et al.'s option A pads with zeros instead, 0.27M either way). */
START_TEST(test_res_resnet20)
{
    struct model m;
    build(&m,
          "in:3x32x32,conv:16k3p1b0,bn,relu,res:16,res:16,res:16,res:32s2,res:32,res:32,"
          "res:64s2,res:64,res:64,gap,fc:10",
          2, 0, 0.1);
    ck_assert_uint_eq(model_param_count(&m), 272474);
    ck_assert_int_eq(m.arena.nviews, 3 + 7 * 6 + 2 * 9 + 2);
    ck_assert_uint_eq(m.bn_running_n, 2 * (16 + 3 * 32 + 96 + 2 * 64 + 192 + 2 * 128));
    ck_assert_int_eq(m.arena.views[m.arena.nviews - 1].layer, 10);
    const struct layer *l = m.layers;
    ck_assert(l[11].out.c == 64 && l[11].out.h == 8 && l[11].out.w == 8);
    ck_assert(l[6].out.c == 32 && l[6].out.h == 16 && l[6].out.w == 16);
    /* about 41M multiply-adds a sample, He et al.'s 0.04 GFLOPs */
    double f = model_flops_per_sample(&m);
    ck_assert_msg(f > 2 * 40e6 && f < 2 * 42e6, "%g flops", f);
    double loss = loss_of(&m, true, 2);
    ck_assert(isfinite(loss));
    model_backward(&m, m.labels, 2, NULL, NULL);
    for (size_t k = 0; k < m.arena.n; k++)
        ck_assert(isfinite(m.arena.g[k]));
    model_free(&m);
}
END_TEST

Suite *res_suite(void)
{
    Suite *s = suite_create("res");
    TCase *tc = tcase_create("spec");
    tcase_add_loop_test(tc, test_res_spec_round_trip, 0,
                        (int)(sizeof spec_good / sizeof spec_good[0]));
    tcase_add_loop_test(tc, test_res_spec_refusals, 0, (int)(sizeof spec_bad / sizeof spec_bad[0]));
    tcase_add_test(tc, test_res_spec_shapes);
    suite_add_tcase(s, tc);

    tc = tcase_create("model");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_res_model_gradients, 0,
                        (int)(sizeof grad_cases / sizeof grad_cases[0]));
    tcase_add_test(tc, test_res_model_layout);
    tcase_add_test(tc, test_res_running_statistics);
    tcase_add_test(tc, test_res_half_norms);
    tcase_add_test(tc, test_res_resnet20);
    suite_add_tcase(s, tc);
    return s;
}
