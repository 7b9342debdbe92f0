/* Tests of the analysis numerics without MPI: power iteration with deflation
 * on a matrix with known eigenvalues, the finite-difference Hessian-vector
 * product of a softmax linear model against its closed-form Hessian, and
 * filter-normalised directions of fully connected and convolutional layers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ascent.h"
#include "directions.h"
#include "hessian.h"
#include "model.h"
#include "rng.h"
#include "suites.h"

/* A symmetric 6x6 matrix Q diag(lambda) Q^T with a fixed rotation Q. */
enum { DN = 6 };
static double mat[DN][DN];
static const double lambdas[DN] = { 5.0, -3.0, 2.0, 1.0, 0.5, 0.1 };

static void build_matrix(void)
{
    /* Q from Gram-Schmidt on seeded vectors */
    double q[DN][DN];
    for (int i = 0; i < DN; i++) {
        for (int k = 0; k < DN; k++)
            q[i][k] = rng_normal(3, 3, (uint64_t)i, (uint64_t)k, 0);
        for (int j = 0; j < i; j++) {
            double d = 0;
            for (int k = 0; k < DN; k++)
                d += q[i][k] * q[j][k];
            for (int k = 0; k < DN; k++)
                q[i][k] -= d * q[j][k];
        }
        double nrm = 0;
        for (int k = 0; k < DN; k++)
            nrm += q[i][k] * q[i][k];
        for (int k = 0; k < DN; k++)
            q[i][k] /= sqrt(nrm);
    }
    for (int a = 0; a < DN; a++)
        for (int b = 0; b < DN; b++) {
            mat[a][b] = 0;
            for (int i = 0; i < DN; i++)
                mat[a][b] += q[i][a] * lambdas[i] * q[i][b];
        }
}

static void matvec(void *user, const float *v, float *out)
{
    (void)user;
    for (int a = 0; a < DN; a++) {
        double s = 0;
        for (int b = 0; b < DN; b++)
            s += mat[a][b] * v[b];
        out[a] = (float)s;
    }
}

START_TEST(test_power_iteration_deflation)
{
    build_matrix();
    struct eigen_result res[3];
    float vecs[3 * DN], work[DN];
    power_iteration(matvec, NULL, DN, 3, 2000, 1e-6, 7, res, vecs, work);
    ck_assert_double_eq_tol(res[0].value, 5.0, 1e-3);
    ck_assert_double_eq_tol(res[1].value, -3.0, 1e-3);
    ck_assert_double_eq_tol(res[2].value, 2.0, 1e-3);
    ck_assert(res[0].converged);
    /* eigenvectors: unit norm, H u = lambda u */
    float hu[DN];
    matvec(NULL, vecs, hu);
    for (int a = 0; a < DN; a++)
        ck_assert_float_eq_tol(hu[a], 5.0f * vecs[a], 2e-3);
}
END_TEST

/* ---- a softmax linear model in:3,fc:2 on 5 fixed samples ----------------- */

enum { NS = 5, IN = 3, K = 2 };
static float data[NS][IN];
static int32_t labels[NS] = { 0, 1, 1, 0, 1 };

struct lin {
    struct model m;
};

static double model_grad(void *user, const float *x, float *grad)
{
    struct model *m = user;
    memcpy(m->arena.w, x, m->arena.n * sizeof *x);
    memcpy(m->act[0], data, sizeof data);
    struct pass_ctx ctx = { .train = false };
    model_forward(m, &ctx, NS);
    int correct;
    double loss = model_loss(m, labels, NS, &correct);
    model_backward(m, labels, NS, NULL, NULL);
    for (size_t i = 0; i < m->arena.n; i++)
        grad[i] = m->arena.g[i] / NS;
    return loss / NS;
}

START_TEST(test_hvp_against_closed_form)
{
    struct spec s;
    char err[128];
    ck_assert_int_eq(spec_parse(&s, "in:3,fc:2", false, 0, err, sizeof err), 0);
    struct model_options mo = { .bn_eps = 1e-5f, .bn_momentum = 0.1f };
    struct model m;
    ck_assert_int_eq(model_build(&m, &s, NS, &mo, err, sizeof err), 0);
    model_init_params(&m, 3);
    for (int n = 0; n < NS; n++)
        for (int i = 0; i < IN; i++)
            data[n][i] = (float)rng_normal(5, 5, (uint64_t)n, (uint64_t)i, 0);
    size_t N = m.arena.n;
    size_t woff = m.arena.views[0].off, boff = m.arena.views[1].off;
    float *x0 = malloc(N * sizeof *x0), *v = calloc(N, sizeof *v), *hv = malloc(N * sizeof *hv);
    float *work = malloc(3 * N * sizeof *work);
    memcpy(x0, m.arena.w, N * sizeof *x0);
    /* theta = (W (K x IN), b (K)); per sample, z = W x + b, and the Hessian
     * of the mean loss is mean_n (diag(p) - p p^T) kron [x;1][x;1]^T */
    double H[K * (IN + 1)][K * (IN + 1)];
    memset(H, 0, sizeof H);
    for (int n = 0; n < NS; n++) {
        double z[K], p[K], zmax = -1e30, sum = 0, xe[IN + 1];
        for (int k = 0; k < K; k++) {
            z[k] = x0[boff + (size_t)k];
            for (int i = 0; i < IN; i++)
                z[k] += x0[woff + (size_t)(k * IN + i)] * data[n][i];
            zmax = fmax(zmax, z[k]);
        }
        for (int k = 0; k < K; k++)
            sum += (p[k] = exp(z[k] - zmax));
        for (int k = 0; k < K; k++)
            p[k] /= sum;
        for (int i = 0; i < IN; i++)
            xe[i] = data[n][i];
        xe[IN] = 1;
        for (int k = 0; k < K; k++)
            for (int l = 0; l < K; l++)
                for (int i = 0; i <= IN; i++)
                    for (int j = 0; j <= IN; j++)
                        H[k * (IN + 1) + i][l * (IN + 1) + j] +=
                            ((k == l ? p[k] : 0) - p[k] * p[l]) * xe[i] * xe[j] / NS;
    }
    /* arena index of parameter (k, i): W[k][i] for i < IN, b[k] for i == IN */
#define IDX(k, i) ((i) < IN ? woff + (size_t)((k) * IN + (i)) : boff + (size_t)(k))
    for (int trial = 0; trial < 3; trial++) {
        memset(v, 0, N * sizeof *v);
        for (int k = 0; k < K; k++)
            for (int i = 0; i <= IN; i++)
                v[IDX(k, i)] = (float)rng_normal(9, 9, (uint64_t)trial, (uint64_t)(k * 4 + i), 0);
        hvp_central(model_grad, &m, x0, v, N, 1e-2, hv, work);
        for (int k = 0; k < K; k++) {
            for (int i = 0; i <= IN; i++) {
                double want = 0;
                for (int l = 0; l < K; l++)
                    for (int j = 0; j <= IN; j++)
                        want += H[k * (IN + 1) + i][l * (IN + 1) + j] * v[IDX(l, j)];
                ck_assert_msg(fabs(hv[IDX(k, i)] - want) < 2e-3 * (1 + fabs(want)),
                              "Hv[%d,%d] = %g, closed form %g", k, i, hv[IDX(k, i)], want);
            }
        }
    }
#undef IDX
    free(x0);
    free(v);
    free(hv);
    free(work);
    model_free(&m);
}
END_TEST

/* ---- the top eigenvalue at realistic weight norms ------------------------- */

/* A softmax linear model in:32,fc:10 on 128 samples, its weights scaled to a
 * norm of 80 (a trained MLP's parameters have norms of tens): the finite-
 * difference radius grows with the norm, and so does the bias of the
 * eigenvalue it reads (the curvature changes along the radius). */
enum { RS = 128, RIN = 32, RK = 10, RP = RK * (RIN + 1) };
static float rdata[RS][RIN];
static int32_t rlabels[RS];

static double rmodel_grad(void *user, const float *x, float *grad)
{
    struct model *m = user;
    memcpy(m->arena.w, x, m->arena.n * sizeof *x);
    memcpy(m->act[0], rdata, sizeof rdata);
    struct pass_ctx ctx = { .train = false };
    model_forward(m, &ctx, RS);
    int correct;
    double loss = model_loss(m, rlabels, RS, &correct);
    model_backward(m, rlabels, RS, NULL, NULL);
    for (size_t i = 0; i < m->arena.n; i++)
        grad[i] = m->arena.g[i] / RS;
    return loss / RS;
}

struct rhvp {
    struct model *m;
    const float *x0;
    double radius;
    float *work;
};

static void rmodel_hvp(void *user, const float *v, float *out)
{
    struct rhvp *h = user;
    hvp_central(rmodel_grad, h->m, h->x0, v, h->m->arena.n, h->radius, out, h->work);
}

/* The largest eigenvalue of the closed-form Hessian (double precision, PSD:
 * power iteration converges to it). */
static double closed_form_top(const float *x0, size_t woff, size_t boff)
{
    double *H = calloc((size_t)RP * RP, sizeof *H), *v = malloc(RP * sizeof *v),
           *w = malloc(RP * sizeof *w);
    ck_assert(H && v && w);
    for (int n = 0; n < RS; n++) {
        double z[RK], p[RK], zmax = -1e300, sum = 0, xe[RIN + 1];
        for (int k = 0; k < RK; k++) {
            z[k] = x0[boff + (size_t)k];
            for (int i = 0; i < RIN; i++)
                z[k] += (double)x0[woff + (size_t)(k * RIN + i)] * rdata[n][i];
            zmax = fmax(zmax, z[k]);
        }
        for (int k = 0; k < RK; k++)
            sum += (p[k] = exp(z[k] - zmax));
        for (int k = 0; k < RK; k++)
            p[k] /= sum;
        for (int i = 0; i < RIN; i++)
            xe[i] = rdata[n][i];
        xe[RIN] = 1;
        for (int k = 0; k < RK; k++)
            for (int l = 0; l < RK; l++)
                for (int i = 0; i <= RIN; i++)
                    for (int j = 0; j <= RIN; j++)
                        H[(size_t)(k * (RIN + 1) + i) * RP + (size_t)(l * (RIN + 1) + j)] +=
                            ((k == l ? p[k] : 0) - p[k] * p[l]) * xe[i] * xe[j] / RS;
    }
    for (int i = 0; i < RP; i++)
        v[i] = rng_normal(11, 11, (uint64_t)i, 0, 0);
    double lambda = 0;
    for (int it = 0; it < 20000; it++) {
        double nrm = 0, q = 0;
        for (int a = 0; a < RP; a++) {
            double s = 0;
            for (int b = 0; b < RP; b++)
                s += H[(size_t)a * RP + (size_t)b] * v[b];
            w[a] = s;
        }
        for (int a = 0; a < RP; a++) {
            q += v[a] * w[a];
            nrm += w[a] * w[a];
        }
        double vv = 0;
        for (int a = 0; a < RP; a++)
            vv += v[a] * v[a];
        double next = q / vv;
        for (int a = 0; a < RP; a++)
            v[a] = w[a] / sqrt(nrm);
        if (it > 100 && fabs(next - lambda) < 1e-13 * fabs(next))
            break;
        lambda = next;
    }
    free(H);
    free(v);
    free(w);
    return lambda;
}

START_TEST(test_hessian_top_at_realistic_norm)
{
    struct spec s;
    char err[128];
    ck_assert_int_eq(spec_parse(&s, "in:32,fc:10", false, 0, err, sizeof err), 0);
    struct model_options mo = { .bn_eps = 1e-5f, .bn_momentum = 0.1f };
    struct model m;
    ck_assert_int_eq(model_build(&m, &s, RS, &mo, err, sizeof err), 0);
    model_init_params(&m, 5);
    for (int n = 0; n < RS; n++) {
        for (int i = 0; i < RIN; i++)
            rdata[n][i] = (float)rng_normal(13, 13, (uint64_t)n, (uint64_t)i, 0);
        rlabels[n] = (int32_t)rng_below(RK, 13, 14, (uint64_t)n, 0, 0);
    }
    size_t N = m.arena.n;
    ck_assert_int_eq((int)N, RP);
    float *x0 = malloc(N * sizeof *x0), *vecs = malloc(N * sizeof *vecs),
          *work = malloc(N * sizeof *work);
    struct rhvp h = { .m = &m, .x0 = x0, .work = malloc(3 * N * sizeof(float)) };
    ck_assert(x0 && vecs && work && h.work);
    double xn = 0;
    for (size_t i = 0; i < N; i++)
        xn += (double)m.arena.w[i] * m.arena.w[i];
    for (size_t i = 0; i < N; i++)
        x0[i] = (float)(m.arena.w[i] * (80.0 / sqrt(xn)));
    double want = closed_form_top(x0, m.arena.views[0].off, m.arena.views[1].off);
    h.radius = hessian_fd_radius(HESSIAN_FD_STEP, x0, N);
    struct eigen_result res;
    power_iteration(rmodel_hvp, &h, N, 1, 500, 1e-7, 3, &res, vecs, work);
    double rel = (res.value - want) / want;
    /* measured at this norm, step: error of the top eigenvalue: 1e-3: -1.6%
     * (the old default; the curvature changes over the radius 0.08),
     * 3e-4: -0.14%, 1e-4 (the default): -0.017%, 1e-5: +0.008%; at a norm
     * of 40, 1e-5 is -0.06% off as the float gradients' rounding takes over,
     * 1e-4 +0.002% */
    ck_assert_msg(fabs(rel) < 2e-3, "top eigenvalue %.6g by finite differences (radius %g), %.6g in closed form: %+.3f%%",
                  res.value, h.radius, want, 100 * rel);
    free(x0);
    free(vecs);
    free(work);
    free(h.work);
    model_free(&m);
}
END_TEST

START_TEST(test_filter_normalised_directions)
{
    struct spec s;
    char err[128];
    ck_assert_int_eq(spec_parse(&s, "in:6,fc:5,bn,relu,fc:3", false, 0, err, sizeof err), 0);
    struct model_options mo = { .bn_eps = 1e-5f, .bn_momentum = 0.1f };
    struct model m;
    ck_assert_int_eq(model_build(&m, &s, 2, &mo, err, sizeof err), 0);
    model_init_params(&m, 4);
    const struct arena *a = &m.arena;
    float *d = malloc(a->n * sizeof *d), *again = malloc(a->n * sizeof *again);
    direction_random(d, a, a->w, 11, 0, true);
    direction_random(again, a, a->w, 11, 0, true);
    ck_assert(memcmp(d, again, a->n * sizeof *d) == 0);
    for (int v = 0; v < a->nviews; v++) {
        const struct tensor_view *tv = &a->views[v];
        for (int r = 0; r < tv->rows; r++) {
            double dn = 0, wn = 0;
            for (int c = 0; c < tv->cols; c++) {
                size_t k = tv->off + (size_t)r * tv->cols + c;
                dn += (double)d[k] * d[k];
                wn += (double)a->w[k] * a->w[k];
            }
            if (tv->role == ROLE_WEIGHT)
                ck_assert_msg(fabs(sqrt(dn) - sqrt(wn)) < 1e-5 * sqrt(wn), "%s row %d", tv->name, r);
            else
                ck_assert_double_eq(dn, 0.0); /* biases and batch norm stay */
        }
    }
    /* another direction number is another direction; without filter
     * normalisation each tensor has the tensor's norm */
    direction_random(again, a, a->w, 11, 1, true);
    ck_assert(memcmp(d, again, a->n * sizeof *d) != 0);
    direction_random(d, a, a->w, 11, 0, false);
    const struct tensor_view *w1 = &a->views[0];
    double dn = 0, wn = 0;
    for (size_t k = 0; k < w1->n; k++) {
        dn += (double)d[w1->off + k] * d[w1->off + k];
        wn += (double)a->w[w1->off + k] * a->w[w1->off + k];
    }
    ck_assert_double_eq_tol(sqrt(dn), sqrt(wn), 1e-4 * sqrt(wn));
    free(d);
    free(again);
    model_free(&m);
}
END_TEST

/* Li et al.'s filters of a convolution: filter f of a conv layer is output
 * channel f's IC x k x k weights, the f-th run of IC k k floats of the
 * weight. Filters of very different norms each keep their own; the bias of
 * a convolution does not move. */
START_TEST(test_filter_normalised_conv_directions)
{
    struct spec s;
    char err[128];
    ck_assert_int_eq(spec_parse(&s, "in:2x5x5,conv:3k3p1,bn,relu,conv:4k3s2,relu,fc:3", false, 0,
                                err, sizeof err), 0);
    struct model_options mo = { .bn_eps = 1e-5f, .bn_momentum = 0.1f };
    struct model m;
    ck_assert_int_eq(model_build(&m, &s, 2, &mo, err, sizeof err), 0);
    model_init_params(&m, 4);
    const struct arena *a = &m.arena;
    static const struct { const char *name; int filters, size; } conv[] = {
        { "conv1.weight", 3, 2 * 3 * 3 }, { "conv2.weight", 4, 3 * 3 * 3 } };
    /* filter f scaled by 10^f: one norm for the whole tensor would drown the small ones */
    for (int v = 0; v < a->nviews; v++)
        if (!strncmp(a->views[v].name, "conv", 4) && a->views[v].role == ROLE_WEIGHT)
            for (size_t k = 0; k < a->views[v].n; k++)
                a->w[a->views[v].off + k] *= (float)pow(10.0, (double)(k / (size_t)a->views[v].cols));
    float *d = malloc(a->n * sizeof *d);
    direction_random(d, a, a->w, 11, 0, true);
    for (int c = 0; c < 2; c++) {
        int v = 0;
        while (strcmp(a->views[v].name, conv[c].name))
            v++;
        const float *dv = d + a->views[v].off, *wv = a->w + a->views[v].off;
        ck_assert_uint_eq(a->views[v].n, (size_t)conv[c].filters * (size_t)conv[c].size);
        for (int f = 0; f < conv[c].filters; f++) {
            double dn = 0, wn = 0, dot = 0;
            for (int k = f * conv[c].size; k < (f + 1) * conv[c].size; k++) {
                dn += (double)dv[k] * dv[k];
                wn += (double)wv[k] * wv[k];
                dot += (double)dv[k] * wv[k];
            }
            ck_assert_msg(fabs(sqrt(dn) - sqrt(wn)) < 1e-5 * sqrt(wn), "%s filter %d: |d| %g, |w| %g",
                          conv[c].name, f, sqrt(dn), sqrt(wn));
            ck_assert_msg(fabs(dot) < 0.999 * dn, "%s filter %d is the weight itself", conv[c].name, f);
        }
    }
    for (int v = 0; v < a->nviews; v++)
        if (a->views[v].role != ROLE_WEIGHT)
            for (size_t k = 0; k < a->views[v].n; k++)
                ck_assert_msg(d[a->views[v].off + k] == 0.0f, "%s moves", a->views[v].name);
    free(d);
    model_free(&m);
}
END_TEST

/* A separable convex quadratic f(y) = sum a_i y_i + h_i y_i^2 / 2 takes its
 * maximum over the box |y_i| <= b_i at the corner y_i = sign(a_i) b_i, where
 * it is sum |a_i| b_i + h_i b_i^2 / 2: the answer in closed form. */
enum { QM = 7 };

/* f(y) = 1 - (y - 2)^2 / 4, its top at y = 2 with f = 1 */
static double bump(void *user, const float *y, float *grad)
{
    (void)user;
    if (grad)
        grad[0] = -(y[0] - 2.0f) / 2.0f;
    return 1.0 - (y[0] - 2.0) * (y[0] - 2.0) / 4.0;
}
static const double qa[QM] = { 1.0, -2.0, 0.5, -0.1, 3.0, 0.2, -1.5 };
static const double qh[QM] = { 2.0, 1.0, 4.0, 0.5, 0.1, 3.0, 1.0 };
static int quad_calls;

static double quad(void *user, const float *y, float *grad)
{
    (void)user;
    quad_calls++;
    double f = 0;
    for (int i = 0; i < QM; i++) {
        f += qa[i] * y[i] + 0.5 * qh[i] * y[i] * y[i];
        if (grad)
            grad[i] = (float)(qa[i] + qh[i] * y[i]);
    }
    return f;
}

START_TEST(test_box_ascent_closed_form)
{
    float bound[QM], y[QM], work[2 * QM];
    double want = 0;
    for (int i = 0; i < QM; i++) {
        bound[i] = 0.1f * (float)(i + 1);
        double b = bound[i];
        want += fabs(qa[i]) * b + 0.5 * qh[i] * b * b;
    }
    struct ascent_result res;
    quad_calls = 0;
    box_ascent(quad, NULL, bound, QM, 10, y, work, &res);
    ck_assert_double_eq_tol(res.f0, 0.0, 1e-12);
    ck_assert_double_eq_tol(res.best, want, 1e-5);
    ck_assert_int_eq(res.iterations, 10);
    ck_assert_int_eq(res.evaluations, quad_calls);
    for (int i = 0; i < QM; i++)
        ck_assert(fabsf(y[i]) <= bound[i]);
    /* a concave bump inside the box: the ascent stops at its top, not a corner */
    float small[1] = { 10.0f }, y1[1], w1[2];
    struct ascent_result r1;
    box_ascent(bump, NULL, small, 1, 40, y1, w1, &r1);
    ck_assert_double_eq_tol(r1.best, 1.0, 1e-3);
    ck_assert_float_eq_tol(y1[0], 2.0f, 0.05f);
}
END_TEST

Suite *analysis_suite(void)
{
    Suite *s = suite_create("analysis");
    TCase *tc = tcase_create("numerics");
    tcase_add_test(tc, test_power_iteration_deflation);
    tcase_add_test(tc, test_box_ascent_closed_form);
    tcase_add_test(tc, test_hvp_against_closed_form);
    tcase_add_test(tc, test_hessian_top_at_realistic_norm);
    tcase_add_test(tc, test_filter_normalised_directions);
    tcase_add_test(tc, test_filter_normalised_conv_directions);
    suite_add_tcase(s, tc);
    return s;
}
