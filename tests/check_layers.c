/* Tests of the layer kernels against finite differences and hand-computed
 * values: linear, batch norm (training with and without ghost groups,
 * evaluation, running statistics), ReLU, dropout, softmax cross-entropy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batchnorm.h"
#include "dropout.h"
#include "linear.h"
#include "relu.h"
#include "rng.h"
#include "suites.h"
#include "xent.h"

static void fill(float *x, size_t n, uint64_t key, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = scale * (float)rng_normal(17, 1, key, i, 0);
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

#define TOL(num) (2e-3 * fabs(num) + 2e-3)

/* ---- linear ---------------------------------------------------------------- */

enum { LB = 5, LIN = 7, LOUT = 4 };

static double linear_loss(const float *in, const float *w, const float *b, const float *R)
{
    float out[LB * LOUT];
    linear_forward(out, in, w, b, LB, LIN, LOUT);
    return dot(out, R, LB * LOUT);
}

START_TEST(test_linear_forward_values)
{
    /* out = in w^T + b by hand for a 1x2 input and 2x2 weights */
    float in[2] = { 1, 2 }, w[4] = { 1, 2, 3, 4 }, b[2] = { 0.5f, -1 }, out[2];
    linear_forward(out, in, w, b, 1, 2, 2);
    ck_assert_float_eq(out[0], 1 * 1 + 2 * 2 + 0.5f);
    ck_assert_float_eq(out[1], 1 * 3 + 2 * 4 - 1.0f);
}
END_TEST

START_TEST(test_linear_gradients)
{
    int accumulate = _i;
    float in[LB * LIN], w[LOUT * LIN], b[LOUT], R[LB * LOUT];
    float din[LB * LIN], dw[LOUT * LIN], db[LOUT];
    fill(in, LB * LIN, 1, 1);
    fill(w, LOUT * LIN, 2, 0.5f);
    fill(b, LOUT, 3, 0.5f);
    fill(R, LB * LOUT, 4, 1);
    /* with accumulate, gradients land on top of what is there */
    float base = accumulate ? 0.75f : 123.0f;
    for (int i = 0; i < LOUT * LIN; i++)
        dw[i] = base;
    for (int i = 0; i < LOUT; i++)
        db[i] = base;
    linear_backward(din, dw, db, R, in, w, LB, LIN, LOUT, accumulate);
    float offset = accumulate ? base : 0.0f;
    const float h = 1e-2f;
    struct { float *x; const float *g; int n; float off; } cases[] = {
        { in, din, LB * LIN, 0.0f }, { w, dw, LOUT * LIN, offset }, { b, db, LOUT, offset } };
    for (int c = 0; c < 3; c++) {
        for (int k = 0; k < cases[c].n; k++) {
            float s = cases[c].x[k];
            cases[c].x[k] = s + h;
            double lp = linear_loss(in, w, b, R);
            cases[c].x[k] = s - h;
            double lm = linear_loss(in, w, b, R);
            cases[c].x[k] = s;
            double num = (lp - lm) / (2 * h);
            ck_assert_msg(fabs(cases[c].g[k] - cases[c].off - num) <= TOL(num),
                          "case %d [%d]: analytic %g numeric %g", c, k, cases[c].g[k] - cases[c].off, num);
        }
    }
    /* no input gradient wanted (the first layer): the weights' still come */
    float dw2[LOUT * LIN], db2[LOUT];
    linear_backward(NULL, dw2, db2, R, in, w, LB, LIN, LOUT, 0);
    for (int i = 0; i < LOUT * LIN; i++)
        ck_assert_float_eq_tol(dw2[i], dw[i] - offset, 1e-5);
}
END_TEST

/* ---- batch norm ------------------------------------------------------------- */

enum { BB = 10, BC = 3 };

static double bn_loss(const float *in, const float *g, const float *b, const float *R, int G)
{
    float out[BB * BC], xhat[BB * BC], mean[BB * BC], rstd[BB * BC];
    bn_forward_train(out, xhat, mean, rstd, NULL, NULL, in, g, b, BB, BC, G, 1e-5f);
    return dot(out, R, BB * BC);
}

/* group sizes: the whole batch, a divisor, a non-divisor, larger than B */
static const int groups[] = { 0, 5, 4, 3, 64 };

START_TEST(test_bn_train_gradients)
{
    int G = groups[_i];
    float in[BB * BC], g[BC] = { 1.5f, 0.7f, -0.4f }, b[BC] = { 0.1f, -0.2f, 0.3f }, R[BB * BC];
    float out[BB * BC], xhat[BB * BC], mean[BB * BC], rstd[BB * BC], scratch[2 * BC];
    float din[BB * BC], dg[BC], db[BC];
    fill(in, BB * BC, 5, 2);
    for (int i = 0; i < BB * BC; i++)
        in[i] += (float)(i % BC); /* features with different means */
    fill(R, BB * BC, 6, 1);
    bn_forward_train(out, xhat, mean, rstd, NULL, NULL, in, g, b, BB, BC, G, 1e-5f);
    bn_backward(din, dg, db, scratch, R, xhat, rstd, g, BB, BC, G, 0);
    const float h = 1e-2f;
    struct { float *x; const float *d; int n; } cases[] = { { in, din, BB * BC }, { g, dg, BC }, { b, db, BC } };
    for (int c = 0; c < 3; c++) {
        for (int k = 0; k < cases[c].n; k++) {
            float s = cases[c].x[k];
            cases[c].x[k] = s + h;
            double lp = bn_loss(in, g, b, R, G);
            cases[c].x[k] = s - h;
            double lm = bn_loss(in, g, b, R, G);
            cases[c].x[k] = s;
            double num = (lp - lm) / (2 * h);
            ck_assert_msg(fabs(cases[c].d[k] - num) <= TOL(num), "G=%d case %d [%d]: analytic %g numeric %g",
                          G, c, k, cases[c].d[k], num);
        }
    }
}
END_TEST

/* Each ghost group is normalised on its own: mean 0, variance 1 per group. */
START_TEST(test_bn_ghost_groups_normalise_separately)
{
    float in[BB * BC], g[BC] = { 1, 1, 1 }, b[BC] = { 0, 0, 0 };
    float out[BB * BC], xhat[BB * BC], mean[BB * BC], rstd[BB * BC], bm[BC], bv[BC];
    fill(in, BB * BC, 7, 3);
    for (int i = 5 * BC; i < BB * BC; i++)
        in[i] += 10.0f; /* the second group is shifted */
    ck_assert_int_eq(bn_group_count(BB, 5), 2);
    ck_assert_int_eq(bn_group_count(BB, 4), 3);
    ck_assert_int_eq(bn_group_count(BB, 0), 1);
    ck_assert_int_eq(bn_group_count(BB, 64), 1);
    bn_forward_train(out, xhat, mean, rstd, bm, bv, in, g, b, BB, BC, 5, 0.0f);
    for (int grp = 0; grp < 2; grp++) {
        for (int c = 0; c < BC; c++) {
            double m = 0, v = 0;
            for (int i = grp * 5; i < grp * 5 + 5; i++)
                m += out[i * BC + c];
            m /= 5;
            for (int i = grp * 5; i < grp * 5 + 5; i++)
                v += (out[i * BC + c] - m) * (out[i * BC + c] - m);
            ck_assert_double_eq_tol(m, 0.0, 1e-5);
            ck_assert_double_eq_tol(v / 5, 1.0, 1e-4);
        }
    }
    /* batch statistics: mean of the group means, mean of unbiased variances */
    for (int c = 0; c < BC; c++) {
        double m0 = 0, m1 = 0, v0 = 0, v1 = 0;
        for (int i = 0; i < 5; i++) {
            m0 += in[i * BC + c] / 5.0;
            m1 += in[(i + 5) * BC + c] / 5.0;
        }
        for (int i = 0; i < 5; i++) {
            v0 += (in[i * BC + c] - m0) * (in[i * BC + c] - m0) / 4.0;
            v1 += (in[(i + 5) * BC + c] - m1) * (in[(i + 5) * BC + c] - m1) / 4.0;
        }
        ck_assert_double_eq_tol(bm[c], (m0 + m1) / 2, 1e-4);
        ck_assert_double_eq_tol(bv[c], (v0 + v1) / 2, 1e-3);
    }
}
END_TEST

START_TEST(test_bn_eval_and_running)
{
    float in[2 * 2] = { 1, 2, 3, 4 }, g[2] = { 2, 1 }, b[2] = { 1, 0 };
    float rm[2] = { 1, 2 }, rv[2] = { 4, 1 }, out[4];
    float xh[4], din[4], dg[2], db[2], d[4] = { 1, 2, 3, 4 };
    bn_forward_eval(out, xh, in, g, b, rm, rv, 2, 2, 0.0f);
    ck_assert_float_eq_tol(out[0], 2 * (1 - 1) / 2.0f + 1, 1e-6);
    ck_assert_float_eq_tol(out[1], 1 * (2 - 2) / 1.0f + 0, 1e-6);
    ck_assert_float_eq_tol(out[2], 2 * (3 - 1) / 2.0f + 1, 1e-6);
    ck_assert_float_eq_tol(out[3], 1 * (4 - 2) / 1.0f + 0, 1e-6);
    /* evaluation mode is affine: din = dout gamma / sd, dgamma = sum dout xhat */
    bn_backward_eval(din, dg, db, d, xh, g, rv, 2, 2, 0.0f);
    ck_assert_float_eq_tol(din[0], 1 * 2 / 2.0f, 1e-6);
    ck_assert_float_eq_tol(din[3], 4 * 1 / 1.0f, 1e-6);
    ck_assert_float_eq_tol(dg[0], 1 * 0.0f + 3 * 1.0f, 1e-6);
    ck_assert_float_eq_tol(db[1], 2 + 4, 1e-6);
    float bm[2] = { 10, 20 }, bv[2] = { 0, 2 };
    bn_update_running(rm, rv, bm, bv, 2, 0.1f);
    ck_assert_float_eq_tol(rm[0], 0.9f * 1 + 0.1f * 10, 1e-6);
    ck_assert_float_eq_tol(rm[1], 0.9f * 2 + 0.1f * 20, 1e-6);
    ck_assert_float_eq_tol(rv[0], 0.9f * 4, 1e-6);
    ck_assert_float_eq_tol(rv[1], 0.9f * 1 + 0.1f * 2, 1e-6);
}
END_TEST

/* ---- ReLU and dropout ---------------------------------------------------------- */

START_TEST(test_relu)
{
    float in[6] = { -2, -0.5f, 0, 0.5f, 2, -1 }, out[6], d[6] = { 1, 2, 3, 4, 5, 6 }, din[6];
    relu_forward(out, in, 6);
    relu_backward(din, d, out, 6);
    float want[6] = { 0, 0, 0, 0.5f, 2, 0 }, wantd[6] = { 0, 0, 0, 4, 5, 0 };
    for (int i = 0; i < 6; i++) {
        ck_assert_float_eq(out[i], want[i]);
        ck_assert_float_eq(din[i], wantd[i]);
    }
    /* in place, as the interface allows */
    relu_forward(in, in, 6);
    ck_assert_float_eq(in[4], 2.0f);
}
END_TEST

START_TEST(test_dropout_rate_and_backward)
{
    enum { B = 200, C = 500 };
    float *in = malloc(B * C * sizeof *in), *out = malloc(B * C * sizeof *out);
    float *din = malloc(B * C * sizeof *din);
    uint8_t *mask = malloc(B * C), *again = malloc(B * C);
    for (int i = 0; i < B * C; i++)
        in[i] = 1.0f;
    struct dropout_key key = { .seed = 3, .layer = 2, .step = 7, .first_sample = 0 };
    dropout_forward(out, mask, in, B, C, 0.3f, &key);
    long kept = 0;
    for (int i = 0; i < B * C; i++) {
        kept += mask[i];
        ck_assert_float_eq_tol(out[i], mask[i] ? 1.0f / 0.7f : 0.0f, 1e-6);
    }
    ck_assert_double_eq_tol((double)kept / (B * C), 0.7, 0.005);
    dropout_backward(din, in, mask, B, C, 0.3f);
    for (int i = 0; i < B * C; i++)
        ck_assert_float_eq_tol(din[i], out[i], 1e-6);
    /* the same key draws the same mask; another step another one */
    dropout_forward(out, again, in, B, C, 0.3f, &key);
    ck_assert(memcmp(mask, again, B * C) == 0);
    key.step = 8;
    dropout_forward(out, again, in, B, C, 0.3f, &key);
    ck_assert(memcmp(mask, again, B * C) != 0);
    /* p = 0 copies */
    dropout_forward(out, again, in, B, C, 0.0f, &key);
    ck_assert_float_eq(out[123], 1.0f);
    free(in);
    free(out);
    free(din);
    free(mask);
    free(again);
}
END_TEST

/* A sample's mask depends on its global position, not on the slicing. */
START_TEST(test_dropout_split_invariance)
{
    enum { B = 8, C = 16 };
    float in[B * C], out[B * C], part[B * C];
    uint8_t mask[B * C], m2[B * C];
    fill(in, B * C, 9, 1);
    struct dropout_key key = { .seed = 5, .layer = 1, .step = 3, .first_sample = 0 };
    dropout_forward(out, mask, in, B, C, 0.5f, &key);
    dropout_forward(part, m2, in, 3, C, 0.5f, &key);
    key.first_sample = 3;
    dropout_forward(part + 3 * C, m2 + 3 * C, in + 3 * C, 5, C, 0.5f, &key);
    ck_assert(memcmp(mask, m2, sizeof mask) == 0);
    ck_assert(memcmp(out, part, sizeof out) == 0);
}
END_TEST

/* ---- softmax cross-entropy ------------------------------------------------------ */

START_TEST(test_xent_values)
{
    /* logits (0, ln 2, ln 3): softmax 1/6, 2/6, 3/6 */
    float z[6] = { 0, (float)log(2), (float)log(3), 5, 1, 1 }, p[6], d[6];
    int32_t y[2] = { 2, 1 };
    int correct;
    double loss = xent_forward(p, &correct, z, y, 2, 3);
    ck_assert_float_eq_tol(p[0], 1.0f / 6, 1e-6);
    ck_assert_float_eq_tol(p[2], 0.5f, 1e-6);
    double l2 = -log(exp(1.0) / (exp(5.0) + 2 * exp(1.0)));
    ck_assert_double_eq_tol(loss, log(2.0) + l2, 1e-5);
    ck_assert_int_eq(correct, 1); /* row 0 right (2), row 1 wrong (0 wins) */
    xent_backward(d, p, y, 2, 3);
    ck_assert_float_eq_tol(d[2], 0.5f - 1.0f, 1e-6);
    ck_assert_float_eq_tol(d[0], 1.0f / 6, 1e-6);
    /* huge logits stay finite */
    float big[3] = { 1000, 999, -1000 };
    int32_t y0 = 1;
    loss = xent_forward(p, &correct, big, &y0, 1, 3);
    ck_assert(isfinite(loss));
    ck_assert_double_eq_tol(loss, log(1 + exp(-1.0)) + 1.0, 1e-4);
}
END_TEST

START_TEST(test_xent_gradient)
{
    enum { B = 4, K = 5 };
    float z[B * K], p[B * K], d[B * K];
    int32_t y[B] = { 0, 3, 4, 1 };
    int correct;
    fill(z, B * K, 11, 2);
    xent_forward(p, &correct, z, y, B, K);
    xent_backward(d, p, y, B, K);
    const float h = 1e-2f;
    for (int k = 0; k < B * K; k++) {
        float s = z[k];
        z[k] = s + h;
        double lp = xent_forward(p, &correct, z, y, B, K);
        z[k] = s - h;
        double lm = xent_forward(p, &correct, z, y, B, K);
        z[k] = s;
        double num = (lp - lm) / (2 * h);
        ck_assert_msg(fabs(d[k] - num) <= TOL(num), "[%d]: analytic %g numeric %g", k, d[k], num);
    }
}
END_TEST

Suite *layers_suite(void)
{
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("linear");
    tcase_add_test(tc, test_linear_forward_values);
    tcase_add_loop_test(tc, test_linear_gradients, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("batchnorm");
    tcase_add_loop_test(tc, test_bn_train_gradients, 0, (int)(sizeof groups / sizeof groups[0]));
    tcase_add_test(tc, test_bn_ghost_groups_normalise_separately);
    tcase_add_test(tc, test_bn_eval_and_running);
    suite_add_tcase(s, tc);
    tc = tcase_create("activations");
    tcase_add_test(tc, test_relu);
    tcase_add_test(tc, test_dropout_rate_and_backward);
    tcase_add_test(tc, test_dropout_split_invariance);
    suite_add_tcase(s, tc);
    tc = tcase_create("xent");
    tcase_add_test(tc, test_xent_values);
    tcase_add_test(tc, test_xent_gradient);
    suite_add_tcase(s, tc);
    return s;
}
