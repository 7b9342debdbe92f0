/* Tests of the layer kernels: gradients against central differences of
 * independent double-precision reference forwards, and forwards against
 * hand-computed values, for linear, batch norm over features and over
 * channels (training with and without ghost groups, evaluation, running
 * statistics), ReLU, dropout and softmax cross-entropy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batchnorm.h"
#include "check_util.h"
#include "dropout.h"
#include "linear.h"
#include "relu.h"
#include "rng.h"
#include "suites.h"
#include "xent.h"

/* ---- helpers ------------------------------------------------------------------
 *
 * Every gradient check compares the kernels' analytic gradients (float) with
 * central differences of a double-precision reference forward written here
 * from the definition (tu_check_grad, whose tolerances check_util.h
 * explains); each forward kernel is in turn checked against its reference,
 * so the differences really are those of the kernel's function. */

static void fill(float *x, size_t n, uint64_t key, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = scale * (float)rng_normal(17, 1, key, i, 0);
}

static double ddot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void check_close(const char *what, const float *got, const double *want, size_t n,
                        double tol)
{
    for (size_t k = 0; k < n; k++)
        ck_assert_msg(fabs(got[k] - want[k]) <= tol * (1 + fabs(want[k])),
                      "%s[%zu]: kernel %.9g, reference %.9g", what, k, got[k], want[k]);
}

/* ---- linear -------------------------------------------------------------------- */

struct linear_ref {
    double *in, *w, *b, *R, *out;
    int B, IN, OUT;
};

static void ref_linear(double *out, const double *in, const double *w, const double *b, int B,
                       int IN, int OUT)
{
    for (int i = 0; i < B; i++)
        for (int o = 0; o < OUT; o++) {
            double s = b[o];
            for (int k = 0; k < IN; k++)
                s += in[i * IN + k] * w[o * IN + k];
            out[i * OUT + o] = s;
        }
}

static double linear_ref_loss(void *p)
{
    struct linear_ref *r = p;
    ref_linear(r->out, r->in, r->w, r->b, r->B, r->IN, r->OUT);
    return ddot(r->out, r->R, (size_t)r->B * r->OUT);
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

/* (B, IN, OUT): a single unit, a small odd shape, one big enough that the
 * BLAS takes its blocked paths and B is not a multiple of any vector width */
static const int linear_shapes[][3] = { { 1, 1, 1 }, { 5, 7, 4 }, { 33, 70, 17 } };

START_TEST(test_linear_gradients)
{
    const int *sh = linear_shapes[_i / 2];
    int accumulate = _i % 2, B = sh[0], IN = sh[1], OUT = sh[2];
    size_t nin = (size_t)B * IN, nw = (size_t)OUT * IN, nout = (size_t)B * OUT;
    float *in = tu_falloc(nin), *w = tu_falloc(nw), *b = tu_falloc(OUT), *R = tu_falloc(nout);
    float *out = tu_falloc(nout), *din = tu_falloc(nin), *dw = tu_falloc(nw), *db = tu_falloc(OUT);
    fill(in, nin, 1, 1);
    fill(w, nw, 2, 0.5f);
    fill(b, OUT, 3, 0.5f);
    fill(R, nout, 4, 1);
    /* overwrite must not read what is there (NaN would show); accumulate adds */
    float base = accumulate ? 0.75f : NAN, offset = accumulate ? base : 0.0f;
    tu_set_all(din, nin, NAN);
    tu_set_all(out, nout, NAN);
    tu_set_all(dw, nw, base);
    tu_set_all(db, OUT, base);
    linear_forward(out, in, w, b, B, IN, OUT);
    linear_backward(din, dw, db, R, in, w, B, IN, OUT, accumulate);

    struct linear_ref r = { tu_to_double(in, nin), tu_to_double(w, nw), tu_to_double(b, OUT),
                            tu_to_double(R, nout), tu_dalloc(nout), B, IN, OUT };
    ref_linear(r.out, r.in, r.w, r.b, B, IN, OUT);
    check_close("out", out, r.out, nout, 1e-5);
    tu_check_grad("din", din, 0.0f, r.in, nin, linear_ref_loss, &r);
    tu_check_grad("dw", dw, offset, r.w, nw, linear_ref_loss, &r);
    tu_check_grad("db", db, offset, r.b, OUT, linear_ref_loss, &r);

    /* no input gradient wanted (the first layer): the weights' still come */
    float *dw2 = tu_falloc(nw), *db2 = tu_falloc(OUT);
    tu_set_all(dw2, nw, NAN);
    tu_set_all(db2, OUT, NAN);
    linear_backward(NULL, dw2, db2, R, in, w, B, IN, OUT, 0);
    for (size_t k = 0; k < nw; k++)
        ck_assert_float_eq_tol(dw2[k], dw[k] - offset, 1e-5);
    for (int k = 0; k < OUT; k++)
        ck_assert_float_eq_tol(db2[k], db[k] - offset, 1e-5);

    free(in);
    free(w);
    free(b);
    free(R);
    free(out);
    free(din);
    free(dw);
    free(db);
    free(dw2);
    free(db2);
    free(r.in);
    free(r.w);
    free(r.b);
    free(r.R);
    free(r.out);
}
END_TEST

/* ---- batch norm, training mode -------------------------------------------------- */

enum { BB = 10, BC = 3 };
#define BN_EPS 1e-5f

struct bn_ref {
    double *in, *g, *b, *R, *out, *bmean, *bvar;
    int B, C, G;
};

/* The definition, group by group and feature by feature in double: biased
 * variance to normalise, unbiased (0 for a group of one) for the running
 * statistics, each averaged over groups. Returns the number of groups. */
static int ref_bn(double *out, double *bmean, double *bvar, const double *in, const double *g,
                  const double *b, int B, int C, int G, double eps)
{
    int size = G <= 0 || G >= B ? B : G, ng = 0;
    for (int c = 0; c < C; c++)
        bmean[c] = bvar[c] = 0;
    for (int lo = 0; lo < B; lo += size, ng++) {
        int hi = lo + size < B ? lo + size : B, n = hi - lo;
        for (int c = 0; c < C; c++) {
            double m = 0, v = 0;
            for (int i = lo; i < hi; i++)
                m += in[i * C + c];
            m /= n;
            for (int i = lo; i < hi; i++)
                v += (in[i * C + c] - m) * (in[i * C + c] - m);
            v /= n;
            for (int i = lo; i < hi; i++)
                out[i * C + c] = g[c] * (in[i * C + c] - m) / sqrt(v + eps) + b[c];
            bmean[c] += m;
            bvar[c] += n > 1 ? v * n / (n - 1) : 0.0;
        }
    }
    for (int c = 0; c < C; c++) {
        bmean[c] /= ng;
        bvar[c] /= ng;
    }
    return ng;
}

static double bn_ref_loss(void *p)
{
    struct bn_ref *r = p;
    ref_bn(r->out, r->bmean, r->bvar, r->in, r->g, r->b, r->B, r->C, r->G, BN_EPS);
    return ddot(r->out, r->R, (size_t)r->B * r->C);
}

/* Group sizes for B = 10: the whole batch (0), a divisor (5), a non-divisor
 * (4: groups of 4, 4, 2), one that leaves a group of one (3), G == B, G > B. */
static const int bn_groups[] = { 0, 5, 4, 3, 10, 64 };

START_TEST(test_bn_train_gradients)
{
    int G = bn_groups[_i / 2], accumulate = _i % 2;
    float in[BB * BC], g[BC] = { 1.5f, 0.7f, -0.4f }, b[BC] = { 0.1f, -0.2f, 0.3f }, R[BB * BC];
    float out[BB * BC], xhat[BB * BC], mean[BB * BC], rstd[BB * BC], scratch[2 * BC];
    float bm[BC], bv[BC], din[BB * BC], dg[BC], db[BC];
    fill(in, BB * BC, 5, 2);
    for (int i = 0; i < BB * BC; i++)
        in[i] += (float)(i % BC); /* features with different means */
    fill(R, BB * BC, 6, 1);
    float base = accumulate ? -0.5f : NAN, offset = accumulate ? base : 0.0f;
    tu_set_all(din, BB * BC, NAN);
    tu_set_all(dg, BC, base);
    tu_set_all(db, BC, base);
    bn_forward_train(out, xhat, mean, rstd, bm, bv, in, g, b, BB, BC, G, BN_EPS, 0, 1);
    bn_backward(din, dg, db, scratch, R, xhat, rstd, g, BB, BC, G, accumulate);

    double rout[BB * BC], rbm[BC], rbv[BC];
    struct bn_ref r = { tu_to_double(in, BB * BC), tu_to_double(g, BC), tu_to_double(b, BC),
                        tu_to_double(R, BB * BC), rout, rbm, rbv, BB, BC, G };
    int ng = ref_bn(rout, rbm, rbv, r.in, r.g, r.b, BB, BC, G, BN_EPS);
    ck_assert_int_eq(bn_group_count(BB, G), ng);
    check_close("out", out, rout, BB * BC, 1e-5);
    check_close("batch_mean", bm, rbm, BC, 1e-5);
    check_close("batch_var", bv, rbv, BC, 1e-5);
    tu_check_grad("din", din, 0.0f, r.in, BB * BC, bn_ref_loss, &r);
    tu_check_grad("dgamma", dg, offset, r.g, BC, bn_ref_loss, &r);
    tu_check_grad("dbeta", db, offset, r.b, BC, bn_ref_loss, &r);

    /* no input gradient wanted: the parameters' are the same */
    float dg2[BC], db2[BC];
    bn_backward(NULL, dg2, db2, scratch, R, xhat, rstd, g, BB, BC, G, 0);
    for (int c = 0; c < BC; c++) {
        ck_assert_float_eq_tol(dg2[c], dg[c] - offset, 1e-5);
        ck_assert_float_eq_tol(db2[c], db[c] - offset, 1e-5);
    }
    free(r.in);
    free(r.g);
    free(r.b);
    free(r.R);
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
    ck_assert_int_eq(bn_group_count(BB, 3), 4);
    ck_assert_int_eq(bn_group_count(BB, 0), 1);
    ck_assert_int_eq(bn_group_count(BB, -1), 1);
    ck_assert_int_eq(bn_group_count(BB, BB), 1);
    ck_assert_int_eq(bn_group_count(BB, 64), 1);
    bn_forward_train(out, xhat, mean, rstd, bm, bv, in, g, b, BB, BC, 5, 0.0f, 0, 1);
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
            /* xhat is what out is before gamma and beta, here the identity */
            for (int i = grp * 5; i < grp * 5 + 5; i++)
                ck_assert_float_eq(xhat[i * BC + c], out[i * BC + c]);
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

/* Activations far from 0 next to their spread: E[x^2] - E[x]^2 in float would
 * lose every digit here (1e8 against a variance of order 1), the two-pass
 * statistics must not. */
START_TEST(test_bn_stats_accuracy)
{
    enum { B = 64, C = 8 };
    float in[B * C], g[C], b[C], out[B * C], xhat[B * C], mean[C], rstd[C], bm[C], bv[C];
    fill(in, B * C, 8, 1);
    for (int i = 0; i < B * C; i++)
        in[i] += 1e4f + 100.0f * (float)(i % C);
    tu_set_all(g, C, 1);
    tu_set_all(b, C, 0);
    bn_forward_train(out, xhat, mean, rstd, bm, bv, in, g, b, B, C, 0, 0.0f, 0, 1);
    for (int c = 0; c < C; c++) {
        double m = 0, v = 0, xm = 0, xv = 0;
        for (int i = 0; i < B; i++)
            m += in[i * C + c];
        m /= B;
        for (int i = 0; i < B; i++)
            v += (in[i * C + c] - m) * (in[i * C + c] - m);
        ck_assert_double_eq_tol(bm[c], m, 1e-5 * m);
        ck_assert_double_eq_tol(bv[c], v / (B - 1), 1e-3 * v / (B - 1));
        for (int i = 0; i < B; i++)
            xm += xhat[i * C + c];
        xm /= B;
        for (int i = 0; i < B; i++)
            xv += (xhat[i * C + c] - xm) * (xhat[i * C + c] - xm);
        /* a float near 1e4 is itself only good to 1e-3, and the float sum of
         * the mean drifts by a few of those: 1e-2 of a standard deviation */
        ck_assert_double_eq_tol(xm, 0.0, 1e-2);
        ck_assert_double_eq_tol(xv / B, 1.0, 1e-3);
    }
}
END_TEST

/* ---- batch norm, evaluation mode and running statistics ------------------------- */

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
    /* momentum 0 keeps the running values, 1 takes the batch's */
    bn_update_running(rm, rv, bm, bv, 2, 0.0f);
    ck_assert_float_eq_tol(rm[0], 0.9f * 1 + 0.1f * 10, 1e-6);
    bn_update_running(rm, rv, bm, bv, 2, 1.0f);
    ck_assert_float_eq(rm[1], 20.0f);
    ck_assert_float_eq(rv[1], 2.0f);
}
END_TEST

/* Wider than a feature block of the kernel, and with eps: forward against the
 * formula, the optional xhat, and the affine backward by central differences
 * (exact for an affine map up to rounding). */
START_TEST(test_bn_eval_wide)
{
    enum { B = 3, C = 300 };
    float *in = tu_falloc(B * C), *out = tu_falloc(B * C), *out2 = tu_falloc(B * C), *xh = tu_falloc(B * C);
    float *R = tu_falloc(B * C), *din = tu_falloc(B * C), g[C], b[C], rm[C], rv[C], dg[C], db[C];
    const float eps = 1e-3f;
    fill(in, B * C, 20, 2);
    fill(R, B * C, 21, 1);
    fill(g, C, 22, 1);
    fill(b, C, 23, 1);
    fill(rm, C, 24, 1);
    for (int c = 0; c < C; c++)
        rv[c] = 0.1f + (float)c / C;
    bn_forward_eval(out, xh, in, g, b, rm, rv, B, C, eps);
    bn_forward_eval(out2, NULL, in, g, b, rm, rv, B, C, eps);
    ck_assert(memcmp(out, out2, B * C * sizeof *out) == 0);
    for (int i = 0; i < B; i++)
        for (int c = 0; c < C; c++) {
            double x = (in[i * C + c] - (double)rm[c]) / sqrt((double)rv[c] + eps);
            ck_assert_double_eq_tol(xh[i * C + c], x, 1e-5 * (1 + fabs(x)));
            ck_assert_double_eq_tol(out[i * C + c], g[c] * x + b[c], 1e-5 * (1 + fabs(x)));
        }
    bn_backward_eval(din, dg, db, R, xh, g, rv, B, C, eps);
    for (int c = 0; c < C; c++) {
        double sg = 0, sb = 0;
        for (int i = 0; i < B; i++) {
            double x = (in[i * C + c] - (double)rm[c]) / sqrt((double)rv[c] + eps);
            ck_assert_double_eq_tol(din[i * C + c], R[i * C + c] * g[c] / sqrt((double)rv[c] + eps),
                                    1e-4 * (1 + fabs(din[i * C + c])));
            sg += R[i * C + c] * x;
            sb += R[i * C + c];
        }
        ck_assert_double_eq_tol(dg[c], sg, 1e-4 * (1 + fabs(sg)));
        ck_assert_double_eq_tol(db[c], sb, 1e-4 * (1 + fabs(sb)));
    }
    /* the parameter gradients alone (first layer) */
    float dg2[C], db2[C];
    bn_backward_eval(NULL, dg2, db2, R, xh, g, rv, B, C, eps);
    ck_assert(memcmp(dg, dg2, sizeof dg) == 0);
    ck_assert(memcmp(db, db2, sizeof db) == 0);
    free(in);
    free(out);
    free(out2);
    free(xh);
    free(R);
    free(din);
}
END_TEST

/* ---- batch norm over channels: (B, C, HW) ---------------------------------------
 *
 * The same checks with a plane of HW values per sample and channel: every
 * channel's statistics run over its group's samples and the plane. B = 5
 * and a 3 x 4 plane, so groups of 2 leave a group of one sample (12 values). */

enum { SB = 5, SC = 3, SHW = 12, SN = SB * SC * SHW };

struct bns_ref {
    double *in, *g, *b, *R, *out, *bmean, *bvar, *rm, *rv;
    int B, C, HW, G;
    int eval; /* from rm, rv instead of the batch */
};

/* The definition in double, channel by channel and group by group; the
 * unbiased variance takes n = values per channel in the group. Returns the
 * number of groups. */
static int ref_bn_spatial(const struct bns_ref *r)
{
    int B = r->B, C = r->C, HW = r->HW, G = r->G;
    int size = G <= 0 || G >= B ? B : G, ng = 0;
    for (int c = 0; c < C; c++)
        r->bmean[c] = r->bvar[c] = 0;
    for (int lo = 0; lo < B; lo += size, ng++) {
        int hi = lo + size < B ? lo + size : B, n = (hi - lo) * HW;
        for (int c = 0; c < C; c++) {
            double m = 0, v = 0;
            for (int i = lo; i < hi; i++)
                for (int p = 0; p < HW; p++)
                    m += r->in[(i * C + c) * HW + p];
            m /= n;
            for (int i = lo; i < hi; i++)
                for (int p = 0; p < HW; p++) {
                    double d = r->in[(i * C + c) * HW + p] - m;
                    v += d * d;
                }
            v /= n;
            double mean = r->eval ? r->rm[c] : m, var = r->eval ? r->rv[c] : v;
            for (int i = lo; i < hi; i++)
                for (int p = 0; p < HW; p++) {
                    int k = (i * C + c) * HW + p;
                    r->out[k] = r->g[c] * (r->in[k] - mean) / sqrt(var + BN_EPS) + r->b[c];
                }
            r->bmean[c] += m;
            r->bvar[c] += n > 1 ? v * n / (n - 1) : 0.0;
        }
    }
    for (int c = 0; c < C; c++) {
        r->bmean[c] /= ng;
        r->bvar[c] /= ng;
    }
    return ng;
}

static double bns_ref_loss(void *p)
{
    struct bns_ref *r = p;
    ref_bn_spatial(r);
    return ddot(r->out, r->R, (size_t)r->B * r->C * r->HW);
}

/* Channels with different means and spreads. */
static void fill_planes(float *x, int B, int C, int HW, uint64_t key)
{
    fill(x, (size_t)B * C * HW, key, 1);
    for (int i = 0; i < B; i++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++)
                x[(i * C + c) * HW + p] = x[(i * C + c) * HW + p] * (1.0f + c) + 2.0f * (float)c;
}

static void bns_ref_free(struct bns_ref *r)
{
    free(r->in);
    free(r->g);
    free(r->b);
    free(r->R);
    free(r->rm);
    free(r->rv);
}

/* the whole batch, a divisor of nothing (2: 2, 2, 1), 3 (3, 2), G == B, G > B */
static const int bns_groups[] = { 0, 2, 3, 5, 64 };

START_TEST(test_bn_spatial_train_gradients)
{
    int G = bns_groups[_i];
    float in[SN], g[SC] = { 1.5f, 0.7f, -0.4f }, b[SC] = { 0.1f, -0.2f, 0.3f }, R[SN];
    float out[SN], xhat[SN], mean[SB * SC], rstd[SB * SC], scratch[2 * SC];
    float bm[SC], bv[SC], din[SN], dg[SC], db[SC], rm[SC] = { 0 }, rv[SC] = { 0 };
    fill_planes(in, SB, SC, SHW, 60);
    fill(R, SN, 61, 1);
    /* overwritten, never read: NaN would show */
    tu_set_all(din, SN, NAN);
    tu_set_all(dg, SC, NAN);
    tu_set_all(db, SC, NAN);
    tu_set_all(out, SN, NAN);
    bn_spatial_forward_train(out, xhat, mean, rstd, bm, bv, in, g, b, SB, SC, SHW, G, BN_EPS, 0, 1);
    bn_spatial_backward(din, dg, db, scratch, R, xhat, rstd, g, SB, SC, SHW, G, 0);

    double rout[SN], rbm[SC], rbv[SC];
    struct bns_ref r = { tu_to_double(in, SN), tu_to_double(g, SC), tu_to_double(b, SC), tu_to_double(R, SN),
                         rout, rbm, rbv, tu_to_double(rm, SC), tu_to_double(rv, SC), SB, SC, SHW, G,
                         0 };
    ck_assert_int_eq(ref_bn_spatial(&r), bn_group_count(SB, G));
    check_close("out", out, rout, SN, 1e-5);
    check_close("batch_mean", bm, rbm, SC, 1e-5);
    check_close("batch_var", bv, rbv, SC, 1e-5);
    tu_check_grad("din", din, 0.0f, r.in, SN, bns_ref_loss, &r);
    tu_check_grad("dgamma", dg, 0.0f, r.g, SC, bns_ref_loss, &r);
    tu_check_grad("dbeta", db, 0.0f, r.b, SC, bns_ref_loss, &r);

    /* no input gradient wanted: the parameters' are the same bits */
    float dg2[SC], db2[SC];
    bn_spatial_backward(NULL, dg2, db2, scratch, R, xhat, rstd, g, SB, SC, SHW, G, 0);
    ck_assert(memcmp(dg, dg2, sizeof dg) == 0 && memcmp(db, db2, sizeof db) == 0);
    /* the first rows' share of the parameter gradients, as half_norms takes
     * it: all rows give the whole gradient when there is one group */
    float h[SC], hb[SC];
    bn_param_grad_rows(h, hb, R, xhat, SB, SC, SHW);
    if (bn_group_count(SB, G) == 1)
        ck_assert(memcmp(h, dg, sizeof h) == 0 && memcmp(hb, db, sizeof hb) == 0);
    bn_param_grad_rows(h, hb, R, xhat, 2, SC, SHW);
    for (int c = 0; c < SC; c++) {
        double sh = 0, shb = 0;
        for (int k = 0; k < 2 * SHW; k++) {
            int at = (k / SHW * SC + c) * SHW + k % SHW;
            sh += (double)R[at] * xhat[at];
            shb += R[at];
        }
        ck_assert_double_eq_tol(h[c], sh, 1e-5 * (1 + fabs(sh)));
        ck_assert_double_eq_tol(hb[c], shb, 1e-5 * (1 + fabs(shb)));
    }
    bns_ref_free(&r);
}
END_TEST

/* Evaluation mode: the running statistics, an affine map; its backward by
 * central differences, the optional xhat. */
START_TEST(test_bn_spatial_eval)
{
    float in[SN], g[SC] = { 1.5f, 0.7f, -0.4f }, b[SC] = { 0.1f, -0.2f, 0.3f }, R[SN];
    float rm[SC] = { 0.5f, 1.5f, 4.0f }, rv[SC] = { 0.8f, 3.0f, 9.5f };
    float out[SN], out2[SN], xhat[SN], din[SN], dg[SC], db[SC];
    fill_planes(in, SB, SC, SHW, 62);
    fill(R, SN, 63, 1);
    tu_set_all(din, SN, NAN);
    tu_set_all(dg, SC, NAN);
    tu_set_all(db, SC, NAN);
    bn_spatial_forward_eval(out, xhat, in, g, b, rm, rv, SB, SC, SHW, BN_EPS);
    bn_spatial_forward_eval(out2, NULL, in, g, b, rm, rv, SB, SC, SHW, BN_EPS);
    ck_assert(memcmp(out, out2, sizeof out) == 0);
    bn_spatial_backward_eval(din, dg, db, R, xhat, g, rv, SB, SC, SHW, BN_EPS);

    double rout[SN], rbm[SC], rbv[SC];
    struct bns_ref r = { tu_to_double(in, SN), tu_to_double(g, SC), tu_to_double(b, SC), tu_to_double(R, SN),
                         rout, rbm, rbv, tu_to_double(rm, SC), tu_to_double(rv, SC), SB, SC, SHW, 0,
                         1 };
    ref_bn_spatial(&r);
    check_close("out", out, rout, SN, 1e-5);
    tu_check_grad("din", din, 0.0f, r.in, SN, bns_ref_loss, &r);
    tu_check_grad("dgamma", dg, 0.0f, r.g, SC, bns_ref_loss, &r);
    tu_check_grad("dbeta", db, 0.0f, r.b, SC, bns_ref_loss, &r);
    float dg2[SC], db2[SC];
    bn_spatial_backward_eval(NULL, dg2, db2, R, xhat, g, rv, SB, SC, SHW, BN_EPS);
    ck_assert(memcmp(dg, dg2, sizeof dg) == 0 && memcmp(db, db2, sizeof db) == 0);
    bns_ref_free(&r);
}
END_TEST

/* A plane of one value is a feature: the channel kernels agree with the
 * per-feature ones (to rounding; the layer keeps the per-feature kernels for
 * that shape, so MLPs keep their bits). */
START_TEST(test_bn_spatial_plane_of_one)
{
    enum { B = 10, C = 7 };
    float in[B * C], g[C], b[C], R[B * C], rm[C], rv[C];
    float o1[B * C], x1[B * C], m1[B * C], r1[B * C], bm1[C], bv1[C], d1[B * C], dg1[C], db1[C];
    float o2[B * C], x2[B * C], m2[B * C], r2[B * C], bm2[C], bv2[C], d2[B * C], dg2[C], db2[C];
    float s[2 * C];
    fill(in, B * C, 64, 2);
    fill(R, B * C, 65, 1);
    fill(g, C, 66, 1);
    fill(b, C, 67, 1);
    fill(rm, C, 68, 1);
    for (int c = 0; c < C; c++)
        rv[c] = 0.5f + (float)c;
    for (int G = 0; G <= 4; G += 4) {
        bn_forward_train(o1, x1, m1, r1, bm1, bv1, in, g, b, B, C, G, BN_EPS, 0, 1);
        bn_spatial_forward_train(o2, x2, m2, r2, bm2, bv2, in, g, b, B, C, 1, G, BN_EPS, 0, 1);
        bn_backward(d1, dg1, db1, s, R, x1, r1, g, B, C, G, 0);
        bn_spatial_backward(d2, dg2, db2, s, R, x2, r2, g, B, C, 1, G, 0);
        for (int k = 0; k < B * C; k++) {
            ck_assert_float_eq_tol(o1[k], o2[k], 1e-5);
            ck_assert_float_eq_tol(d1[k], d2[k], 1e-5);
        }
        for (int c = 0; c < C; c++) {
            ck_assert_float_eq_tol(bm1[c], bm2[c], 1e-5);
            ck_assert_float_eq_tol(bv1[c], bv2[c], 1e-5);
            ck_assert_float_eq_tol(dg1[c], dg2[c], 1e-5);
            ck_assert_float_eq_tol(db1[c], db2[c], 1e-5);
        }
    }
    bn_forward_eval(o1, x1, in, g, b, rm, rv, B, C, BN_EPS);
    bn_spatial_forward_eval(o2, x2, in, g, b, rm, rv, B, C, 1, BN_EPS);
    bn_backward_eval(d1, dg1, db1, R, x1, g, rv, B, C, BN_EPS);
    bn_spatial_backward_eval(d2, dg2, db2, R, x2, g, rv, B, C, 1, BN_EPS);
    for (int k = 0; k < B * C; k++) {
        ck_assert_float_eq_tol(o1[k], o2[k], 1e-5);
        ck_assert_float_eq_tol(d1[k], d2[k], 1e-5);
    }
    /* half_norms' row sums: for a plane of one, the loop it always ran */
    float h[C], hb[C], wh[C] = { 0 }, whb[C] = { 0 };
    for (int i = 0; i < 6; i++)
        for (int c = 0; c < C; c++) {
            wh[c] += R[i * C + c] * x1[i * C + c];
            whb[c] += R[i * C + c];
        }
    bn_param_grad_rows(h, hb, R, x1, 6, C, 1);
    ck_assert(memcmp(h, wh, sizeof h) == 0 && memcmp(hb, whb, sizeof hb) == 0);
}
END_TEST

/* Ghost groups make samples of different groups independent: a batch at once
 * and two slices holding whole groups give the same bits, forward and
 * backward (the multi-rank case); the parameter gradients and the batch
 * statistics add up across the slices. */
START_TEST(test_bn_spatial_split_invariance)
{
    enum { B = 8, G = 2, C = 3, HW = 10, N = B * C * HW, H = N / 2 };
    float in[N], g[C] = { 1.2f, 0.8f, -1 }, b[C] = { 0.5f, 0, -0.5f }, R[N], s[2 * C];
    float out[N], xh[N], mean[B * C], rstd[B * C], bm[C], bv[C], din[N], dg[C], db[C];
    float pout[N], pxh[N], pm[B * C], pr[B * C], pbm[2][C], pbv[2][C], pdin[N], pdg[2][C],
        pdb[2][C];
    fill_planes(in, B, C, HW, 69);
    fill(R, N, 70, 1);
    bn_spatial_forward_train(out, xh, mean, rstd, bm, bv, in, g, b, B, C, HW, G, BN_EPS, 0, 1);
    bn_spatial_backward(din, dg, db, s, R, xh, rstd, g, B, C, HW, G, 0);
    for (int part = 0; part < 2; part++) {
        int at = part * H;
        bn_spatial_forward_train(pout + at, pxh + at, pm, pr, pbm[part], pbv[part], in + at, g, b,
                                 B / 2, C, HW, G, BN_EPS, 0, 1);
        bn_spatial_backward(pdin + at, pdg[part], pdb[part], s, R + at, pxh + at, pr, g, B / 2, C,
                            HW, G, 0);
    }
    ck_assert(memcmp(out, pout, sizeof out) == 0);
    ck_assert(memcmp(xh, pxh, sizeof xh) == 0);
    ck_assert(memcmp(din, pdin, sizeof din) == 0);
    for (int c = 0; c < C; c++) {
        /* batch statistics are means over groups: 4 groups, 2 in each slice */
        ck_assert_float_eq_tol(bm[c], (pbm[0][c] + pbm[1][c]) / 2, 1e-5);
        ck_assert_float_eq_tol(bv[c], (pbv[0][c] + pbv[1][c]) / 2, 1e-5);
        ck_assert_float_eq_tol(dg[c], pdg[0][c] + pdg[1][c], 1e-4);
        ck_assert_float_eq_tol(db[c], pdb[0][c] + pdb[1][c], 1e-4);
    }
}
END_TEST

/* Channels far from 0 next to their spread, over planes: the two-pass
 * statistics keep their digits (see test_bn_stats_accuracy). */
START_TEST(test_bn_spatial_stats_accuracy)
{
    enum { B = 16, C = 4, HW = 49, N = B * C * HW };
    float *in = tu_falloc(N), *out = tu_falloc(N), *xhat = tu_falloc(N), g[C], b[C], mean[C], rstd[C];
    float bm[C], bv[C];
    fill(in, N, 71, 1);
    for (int k = 0; k < N; k++)
        in[k] += 1e4f + 100.0f * (float)(k / HW % C);
    tu_set_all(g, C, 1);
    tu_set_all(b, C, 0);
    bn_spatial_forward_train(out, xhat, mean, rstd, bm, bv, in, g, b, B, C, HW, 0, 0.0f, 0, 1);
    for (int c = 0; c < C; c++) {
        double m = 0, v = 0, xm = 0, xv = 0;
        int n = B * HW;
        for (int k = 0; k < N; k++)
            if (k / HW % C == c) {
                m += in[k];
                xm += xhat[k];
            }
        m /= n;
        xm /= n;
        for (int k = 0; k < N; k++)
            if (k / HW % C == c) {
                v += (in[k] - m) * (in[k] - m);
                xv += (xhat[k] - xm) * (xhat[k] - xm);
            }
        ck_assert_double_eq_tol(bm[c], m, 1e-5 * m);
        ck_assert_double_eq_tol(bv[c], v / (n - 1), 1e-3 * v / (n - 1));
        ck_assert_double_eq_tol(xm, 0.0, 1e-2);
        ck_assert_double_eq_tol(xv / n, 1.0, 1e-3);
    }
    free(in);
    free(out);
    free(xhat);
}
END_TEST

/* ---- ReLU ------------------------------------------------------------------------ */

START_TEST(test_relu_values)
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
    relu_backward(d, d, out, 6);
    relu_forward(in, in, 6);
    for (int i = 0; i < 6; i++) {
        ck_assert_float_eq(in[i], want[i]);
        ck_assert_float_eq(d[i], wantd[i]);
    }
    /* a NaN must reach the loss, not be zeroed on the way */
    float nan_in = NAN, nan_out;
    relu_forward(&nan_out, &nan_in, 1);
    ck_assert(isnan(nan_out));
}
END_TEST

/* Central differences away from the kink, where ReLU is linear. */
START_TEST(test_relu_gradient)
{
    enum { N = 257 };
    float in[N], out[N], R[N], din[N];
    fill(in, N, 30, 1);
    fill(R, N, 31, 1);
    for (int i = 0; i < N; i++)
        if (fabsf(in[i]) < 1e-2f)
            in[i] = in[i] < 0 ? -1e-2f : 1e-2f;
    relu_forward(out, in, N);
    relu_backward(din, R, out, N);
    const float h = 1e-3f;
    for (int i = 0; i < N; i++) {
        /* divided by the step actually taken in float, the difference of a
         * linear piece is exact but for the rounding of the products */
        float xp = in[i] + h, xm = in[i] - h, yp, ym;
        relu_forward(&yp, &xp, 1);
        relu_forward(&ym, &xm, 1);
        double num = ((double)yp - ym) * R[i] / ((double)xp - xm);
        ck_assert_msg(fabs(din[i] - num) <= 1e-6 * (1 + fabs(num)), "[%d]: analytic %g numeric %g",
                      i, din[i], num);
    }
}
END_TEST

/* ---- dropout --------------------------------------------------------------------- */

static const float dropout_rates[] = { 0.1f, 0.3f, 0.5f, 0.9f };

START_TEST(test_dropout_rate_and_backward)
{
    enum { B = 200, C = 500 };
    const float p = dropout_rates[_i];
    float *in = tu_falloc(B * C), *out = tu_falloc(B * C), *d = tu_falloc(B * C), *din = tu_falloc(B * C);
    uint8_t *mask = malloc(B * C);
    ck_assert_ptr_nonnull(mask);
    fill(in, B * C, 40, 1);
    fill(d, B * C, 41, 1);
    struct dropout_key key = { .seed = 3, .layer = 2, .step = 7, .first_sample = 0 };
    dropout_forward(out, mask, in, B, C, p, &key);
    long kept = 0;
    for (int i = 0; i < B * C; i++) {
        ck_assert(mask[i] == 0 || mask[i] == 1);
        kept += mask[i];
        ck_assert_float_eq(out[i], mask[i] ? in[i] * (1.0f / (1.0f - p)) : 0.0f);
    }
    /* the keep rate within 5 standard deviations of 1 - p; the draw is
     * deterministic, so this cannot flake */
    double n = (double)B * C, sigma = sqrt(p * (1 - p) / n);
    ck_assert_double_eq_tol((double)kept / n, 1.0 - p, 5 * sigma);
    dropout_backward(din, d, mask, B, C, p);
    for (int i = 0; i < B * C; i++)
        ck_assert_float_eq(din[i], mask[i] ? d[i] * (1.0f / (1.0f - p)) : 0.0f);
    free(in);
    free(out);
    free(d);
    free(din);
    free(mask);
}
END_TEST

START_TEST(test_dropout_keys)
{
    enum { B = 16, C = 64 };
    float in[B * C], out[B * C];
    uint8_t mask[B * C], again[B * C];
    fill(in, B * C, 42, 1);
    struct dropout_key key = { .seed = 3, .layer = 2, .step = 7, .first_sample = 5 };
    dropout_forward(out, mask, in, B, C, 0.4f, &key);
    /* the mask is exactly the documented draw, so any reimplementation agrees */
    for (int i = 0; i < B; i++)
        for (int c = 0; c < C; c++) {
            float u = rng_uniform(3, RNG_DROPOUT, 2, 7, (uint64_t)(5 + i) * C + (uint64_t)c);
            ck_assert_int_eq(mask[i * C + c], u >= 0.4f);
        }
    /* the same key draws the same mask; any other field another one */
    dropout_forward(out, again, in, B, C, 0.4f, &key);
    ck_assert(memcmp(mask, again, sizeof mask) == 0);
    struct dropout_key other[3] = { key, key, key };
    other[0].seed = 4;
    other[1].layer = 3;
    other[2].step = 8;
    for (int k = 0; k < 3; k++) {
        dropout_forward(out, again, in, B, C, 0.4f, &other[k]);
        ck_assert_msg(memcmp(mask, again, sizeof mask) != 0, "key field %d ignored", k);
    }
    /* p = 0 copies and keeps everything */
    dropout_forward(out, again, in, B, C, 0.0f, &key);
    for (int i = 0; i < B * C; i++) {
        ck_assert_int_eq(again[i], 1);
        ck_assert_float_eq(out[i], in[i]);
    }
    float din[B * C];
    dropout_backward(din, in, again, B, C, 0.0f);
    ck_assert(memcmp(din, in, sizeof din) == 0);
}
END_TEST

/* A sample's mask depends on its global position, not on the slicing: rows
 * [0, 8) at once equal rows [0, 3) then [3, 8), from either global origin. */
START_TEST(test_dropout_split_invariance)
{
    enum { B = 8, C = 16 };
    float in[B * C], out[B * C], part[B * C];
    uint8_t mask[B * C], m2[B * C];
    fill(in, B * C, 9, 1);
    for (uint64_t origin = 0; origin <= 1000; origin += 1000) {
        struct dropout_key key = { .seed = 5, .layer = 1, .step = 3, .first_sample = origin };
        dropout_forward(out, mask, in, B, C, 0.5f, &key);
        dropout_forward(part, m2, in, 3, C, 0.5f, &key);
        key.first_sample = origin + 3;
        dropout_forward(part + 3 * C, m2 + 3 * C, in + 3 * C, 5, C, 0.5f, &key);
        ck_assert(memcmp(mask, m2, sizeof mask) == 0);
        ck_assert(memcmp(out, part, sizeof out) == 0);
    }
}
END_TEST

/* ---- softmax cross-entropy -------------------------------------------------------- */

struct xent_ref {
    double *z;
    const int32_t *y;
    int B, K;
};

/* log sum exp(z[0..K)), shifted by the largest z, in double */
static double log_sum_exp(const double *z, int K)
{
    double m = z[0], s = 0;
    for (int k = 1; k < K; k++)
        m = z[k] > m ? z[k] : m;
    for (int k = 0; k < K; k++)
        s += exp(z[k] - m);
    return m + log(s);
}

/* sum over rows of log sum exp(z) - z[label], in double */
static double xent_ref_loss(void *p)
{
    struct xent_ref *r = p;
    double loss = 0;
    for (int i = 0; i < r->B; i++) {
        const double *z = r->z + (size_t)i * r->K;
        loss += log_sum_exp(z, r->K) - z[r->y[i]];
    }
    return loss;
}

START_TEST(test_xent_values)
{
    /* logits (0, ln 2, ln 3): softmax 1/6, 2/6, 3/6 */
    float z[6] = { 0, (float)log(2), (float)log(3), 5, 1, 1 }, p[6], d[6];
    int32_t y[2] = { 2, 1 };
    int correct;
    double loss = xent_forward(p, &correct, z, y, 2, 3);
    ck_assert_float_eq_tol(p[0], 1.0f / 6, 1e-6);
    ck_assert_float_eq_tol(p[1], 2.0f / 6, 1e-6);
    ck_assert_float_eq_tol(p[2], 0.5f, 1e-6);
    double l2 = -log(exp(1.0) / (exp(5.0) + 2 * exp(1.0)));
    ck_assert_double_eq_tol(loss, log(2.0) + l2, 1e-5);
    ck_assert_int_eq(correct, 1); /* row 0 right (2), row 1 wrong (0 wins) */
    xent_backward(d, p, y, 2, 3);
    ck_assert_float_eq_tol(d[2], 0.5f - 1.0f, 1e-6);
    ck_assert_float_eq_tol(d[0], 1.0f / 6, 1e-6);
    ck_assert_float_eq_tol(d[4], p[4] - 1.0f, 1e-6);
    /* huge logits stay finite */
    float big[3] = { 1000, 999, -1000 };
    int32_t y0 = 1;
    loss = xent_forward(p, &correct, big, &y0, 1, 3);
    ck_assert(isfinite(loss));
    ck_assert_double_eq_tol(loss, log(1 + exp(-1.0)) + 1.0, 1e-4);
    ck_assert_float_eq_tol(p[0], 1 / (1 + exp(-1.0)), 1e-6);
    ck_assert_float_eq(p[2], 0.0f);
    ck_assert_int_eq(correct, 0);
    /* wrong by 2000: p[label] is 0 in float, the loss must still be finite */
    y0 = 2;
    loss = xent_forward(p, &correct, big, &y0, 1, 3);
    ck_assert_double_eq_tol(loss, 2000.0 + log(1 + exp(-1.0)), 1e-4);
}
END_TEST

/* Ties go to the lowest index, so the count is the same whatever the order of
 * evaluation. */
START_TEST(test_xent_correct_count)
{
    enum { B = 4, K = 3 };
    float z[B * K] = { 1, 1, 1,   /* all equal: predicts 0 */
                       0, 2, 2,   /* 1 and 2 tie: predicts 1 */
                       0, 2, 2,   /* the same row, label 2: wrong */
                       -1, -3, 5 };
    int32_t y[B] = { 0, 1, 2, 2 };
    float p[B * K];
    int correct = -1;
    xent_forward(p, &correct, z, y, B, K);
    ck_assert_int_eq(correct, 3);
    for (int k = 0; k < K; k++)
        ck_assert_float_eq_tol(p[k], 1.0f / 3, 1e-6);
    /* a random batch against a plain arg-max */
    enum { RB = 50, RK = 7 };
    float rz[RB * RK], rp[RB * RK];
    int32_t ry[RB];
    fill(rz, RB * RK, 50, 1);
    int want = 0;
    for (int i = 0; i < RB; i++) {
        ry[i] = (int32_t)rng_below(RK, 1, 2, 3, (uint64_t)i, 0);
        int arg = 0;
        for (int k = 1; k < RK; k++)
            if (rz[i * RK + k] > rz[i * RK + arg])
                arg = k;
        want += arg == ry[i];
    }
    xent_forward(rp, &correct, rz, ry, RB, RK);
    ck_assert_int_eq(correct, want);
}
END_TEST

START_TEST(test_xent_gradient)
{
    enum { B = 6, K = 5 };
    float z[B * K], p[B * K], d[B * K];
    int32_t y[B] = { 0, 3, 4, 1, 2, 4 };
    int correct;
    fill(z, B * K, 11, 3);
    for (int k = 0; k < K; k++)
        z[5 * K + k] += 200.0f; /* a row that would overflow exp() unshifted */
    double loss = xent_forward(p, &correct, z, y, B, K);
    xent_backward(d, p, y, B, K);
    struct xent_ref r = { tu_to_double(z, B * K), y, B, K };
    ck_assert_double_eq_tol(loss, xent_ref_loss(&r), 1e-5 * (1 + loss));
    for (int i = 0; i < B; i++) {
        double s = 0;
        for (int k = 0; k < K; k++)
            s += p[i * K + k];
        ck_assert_double_eq_tol(s, 1.0, 1e-6);
    }
    tu_check_grad("dlogits", d, 0.0f, r.z, B * K, xent_ref_loss, &r);
    free(r.z);
}
END_TEST

/* the same with targets (1 - s) onehot + s / K, in double */
struct xent_smooth_ref {
    double *z;
    const int32_t *y;
    int B, K;
    double s;
};

static double xent_smooth_ref_loss(void *p)
{
    struct xent_smooth_ref *r = p;
    double loss = 0;
    for (int i = 0; i < r->B; i++) {
        const double *z = r->z + (size_t)i * r->K;
        double lse = log_sum_exp(z, r->K);
        for (int k = 0; k < r->K; k++) {
            double q = (k == r->y[i] ? 1 - r->s : 0) + r->s / r->K;
            loss += q * (lse - z[k]);
        }
    }
    return loss;
}

static const float smoothings[] = { 0.0f, 0.1f, 0.5f };

/* Label smoothing against the double-precision definition, its gradient by
 * central differences; at s = 0 it is the plain loss and gradient. */
START_TEST(test_xent_smoothed_gradient)
{
    enum { B = 6, K = 5 };
    float z[B * K], p[B * K], d[B * K], p0[B * K], d0[B * K];
    int32_t y[B] = { 0, 3, 4, 1, 2, 4 };
    int correct, correct0;
    fill(z, B * K, 13, 3);
    for (int k = 0; k < K; k++)
        z[5 * K + k] += 200.0f; /* a row that would overflow exp() unshifted */
    float sm = smoothings[_i];
    double loss = xent_forward_smoothed(p, &correct, z, y, B, K, sm);
    xent_backward_smoothed(d, p, y, B, K, sm);
    struct xent_smooth_ref r = { tu_to_double(z, B * K), y, B, K, sm };
    ck_assert_double_eq_tol(loss, xent_smooth_ref_loss(&r), 1e-6 * (1 + loss));
    tu_check_grad("dlogits", d, 0.0f, r.z, B * K, xent_smooth_ref_loss, &r);
    /* the same softmax and count as the plain loss */
    double plain = xent_forward(p0, &correct0, z, y, B, K);
    ck_assert_int_eq(correct, correct0);
    for (int k = 0; k < B * K; k++)
        ck_assert_float_eq(p[k], p0[k]);
    if (sm == 0.0f) {
        ck_assert_double_eq_tol(loss, plain, 1e-9 * (1 + plain));
        xent_backward(d0, p0, y, B, K);
        for (int k = 0; k < B * K; k++)
            ck_assert_float_eq(d[k], d0[k]);
    }
    free(r.z);
}
END_TEST

Suite *layers_suite(void)
{
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("linear");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_linear_forward_values);
    tcase_add_loop_test(tc, test_linear_gradients, 0,
                        2 * (int)(sizeof linear_shapes / sizeof linear_shapes[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("batchnorm");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_bn_train_gradients, 0,
                        2 * (int)(sizeof bn_groups / sizeof bn_groups[0]));
    tcase_add_test(tc, test_bn_ghost_groups_normalise_separately);
    tcase_add_test(tc, test_bn_stats_accuracy);
    tcase_add_test(tc, test_bn_eval_and_running);
    tcase_add_test(tc, test_bn_eval_wide);
    suite_add_tcase(s, tc);

    tc = tcase_create("batchnorm_spatial");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_bn_spatial_train_gradients, 0,
                        (int)(sizeof bns_groups / sizeof bns_groups[0]));
    tcase_add_test(tc, test_bn_spatial_eval);
    tcase_add_test(tc, test_bn_spatial_plane_of_one);
    tcase_add_test(tc, test_bn_spatial_split_invariance);
    tcase_add_test(tc, test_bn_spatial_stats_accuracy);
    suite_add_tcase(s, tc);

    tc = tcase_create("relu");
    tcase_add_test(tc, test_relu_values);
    tcase_add_test(tc, test_relu_gradient);
    suite_add_tcase(s, tc);

    tc = tcase_create("dropout");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_dropout_rate_and_backward, 0,
                        (int)(sizeof dropout_rates / sizeof dropout_rates[0]));
    tcase_add_test(tc, test_dropout_keys);
    tcase_add_test(tc, test_dropout_split_invariance);
    suite_add_tcase(s, tc);

    tc = tcase_create("xent");
    tcase_add_test(tc, test_xent_values);
    tcase_add_test(tc, test_xent_correct_count);
    tcase_add_test(tc, test_xent_gradient);
    tcase_add_loop_test(tc, test_xent_smoothed_gradient, 0,
                        (int)(sizeof smoothings / sizeof smoothings[0]));
    suite_add_tcase(s, tc);
    return s;
}
