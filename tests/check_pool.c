/* Tests of pooling: the kernels of pool.c against double-precision references
 * and central differences (window = stride, overlapping windows, windows that
 * skip inputs, odd planes such as 3x7x5), max pooling's ties and NaNs, the
 * maxpool/avgpool/gap kinds through the spec parser (round trips, refusals),
 * and whole models with spatial batch norm and pooling: gradients, ghost
 * groups split across slices, running statistics, shapes and memory. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "model.h"
#include "pool.h"
#include "rng.h"
#include "suites.h"

/* ---- helpers (as in check_layers.c: L = sum(out * R), so dout = R) ------------
 *
 * Pooling is piecewise linear: max pooling is linear while no window's max
 * changes, which central differences with h = 1e-6 cannot disturb when the
 * values of a window are further apart than that (the inputs are drawn so
 * that they are, see distinct_inputs). The tolerances are check_util.h's. */

static void fill(float *x, size_t n, uint64_t key, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = scale * (float)rng_normal(23, 1, key, i, 0);
}

/* Values of a random order, at least 1e-3 apart: no two within reach of the
 * differences, no ties. */
static void distinct_inputs(float *x, size_t n, uint64_t key)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)rng_below(i + 1, 23, 2, key, i, 0);
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        x[i] = (x[i] - (float)n / 2) * 1e-2f;
}

enum { MAXP, AVGP, GAP };

struct pool_case {
    int B, C, H, W, K, S;
};

/* window = stride; odd planes; overlapping (S < K); skipping (S > K); a
 * window as wide as the plane; a window of one */
static const struct pool_case pool_cases[] = {
    { 2, 3, 7, 5, 2, 2 }, { 2, 3, 7, 5, 3, 1 }, { 3, 2, 7, 5, 3, 2 }, { 2, 2, 7, 7, 2, 3 },
    { 2, 3, 6, 5, 5, 1 }, { 1, 2, 3, 4, 1, 1 }, { 2, 1, 4, 4, 4, 4 },
};

struct pool_ref {
    int op, B, C, H, W, KH, KW, S, OH, OW; /* gap: a KH x KW = H x W window */
    double *in, *R, *out;
};

/* The definition: each window's max or mean. */
static void ref_pool(struct pool_ref *r)
{
    for (int p = 0; p < r->B * r->C; p++)
        for (int oh = 0; oh < r->OH; oh++)
            for (int ow = 0; ow < r->OW; ow++) {
                const double *x = r->in + (size_t)p * r->H * r->W;
                double best = x[oh * r->S * r->W + ow * r->S], sum = 0;
                for (int kh = 0; kh < r->KH; kh++)
                    for (int kw = 0; kw < r->KW; kw++) {
                        double v = x[(oh * r->S + kh) * r->W + ow * r->S + kw];
                        best = v > best ? v : best;
                        sum += v;
                    }
                r->out[((size_t)p * r->OH + oh) * r->OW + ow] =
                    r->op == MAXP ? best : sum / (r->KH * r->KW);
            }
}

static double pool_ref_loss(void *p)
{
    struct pool_ref *r = p;
    ref_pool(r);
    double s = 0;
    for (size_t k = 0; k < (size_t)r->B * r->C * r->OH * r->OW; k++)
        s += r->out[k] * r->R[k];
    return s;
}

/* Forward against the reference, backward against central differences;
 * din is overwritten (NaN before). Gap is a mean over the plane's window. */
static void check_pool_op(int op, const struct pool_case *pc)
{
    int K = pc->K, S = pc->S, H = pc->H, W = pc->W;
    struct pool_ref r = { op, pc->B, pc->C, H, W, K, K, S, pool_out_size(H, K, S),
                          pool_out_size(W, K, S), NULL, NULL, NULL };
    if (op == GAP)
        r.KH = H, r.KW = W, r.S = 1, r.OH = r.OW = 1;
    size_t nin = (size_t)r.B * r.C * H * W, nout = (size_t)r.B * r.C * r.OH * r.OW;
    float *in = tu_falloc(nin), *out = tu_falloc(nout), *R = tu_falloc(nout);
    float *din = tu_falloc(nin);
    int32_t *arg = malloc(nout * sizeof *arg);
    ck_assert_ptr_nonnull(arg);
    distinct_inputs(in, nin, (uint64_t)(op * 100 + K * 10 + S));
    fill(R, nout, 2, 1);
    tu_set_all(din, nin, NAN);
    if (op == MAXP) {
        maxpool_forward(out, arg, in, r.B, r.C, H, W, K, S);
        maxpool_backward(din, R, arg, r.B, r.C, H, W, r.OH, r.OW);
    } else if (op == AVGP) {
        avgpool_forward(out, in, r.B, r.C, H, W, K, S);
        avgpool_backward(din, R, r.B, r.C, H, W, K, S);
    } else {
        gap_forward(out, in, r.B, r.C, H * W);
        gap_backward(din, R, r.B, r.C, H * W);
    }
    r.in = tu_to_double(in, nin);
    r.R = tu_to_double(R, nout);
    r.out = tu_dalloc(nout);
    ref_pool(&r);
    for (size_t k = 0; k < nout; k++)
        ck_assert_msg(fabs(out[k] - r.out[k]) <= 1e-6 * (1 + fabs(r.out[k])),
                      "op %d out[%zu]: %.9g, reference %.9g", op, k, out[k], r.out[k]);
    tu_check_grad("din", din, 0.0f, r.in, nin, pool_ref_loss, &r);
    free(in);
    free(out);
    free(R);
    free(din);
    free(arg);
    free(r.in);
    free(r.R);
    free(r.out);
}

enum { NPOOL_CASES = (int)(sizeof pool_cases / sizeof pool_cases[0]) };

START_TEST(test_maxpool_gradients)
{
    check_pool_op(MAXP, &pool_cases[_i]);
}
END_TEST

START_TEST(test_avgpool_gradients)
{
    check_pool_op(AVGP, &pool_cases[_i]);
}
END_TEST

START_TEST(test_gap_gradients)
{
    check_pool_op(GAP, &pool_cases[_i]);
}
END_TEST

/* Ties go to the first max in row-major window order, and backward follows
 * that choice; a NaN wins over numbers so it reaches the loss; overlapping
 * windows that share a max add their gradients there. */
START_TEST(test_maxpool_ties_and_nan)
{
    /* one 3x4 plane, windows 2x2 stride 2: (1 1 / 1 1), (0 2 / 2 0) */
    float in[12] = { 1, 1, 0, 2, 1, 1, 2, 0, 5, 5, 5, 5 }, out[2], d[2] = { 10, 20 }, din[12];
    int32_t arg[2];
    maxpool_forward(out, arg, in, 1, 1, 3, 4, 2, 2);
    ck_assert_float_eq(out[0], 1.0f);
    ck_assert_float_eq(out[1], 2.0f);
    ck_assert_int_eq(arg[0], 0);
    ck_assert_int_eq(arg[1], 3);
    maxpool_backward(din, d, arg, 1, 1, 3, 4, 1, 2);
    float want[12] = { 10, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0 };
    ck_assert(memcmp(din, want, sizeof din) == 0);

    /* NaN anywhere in the window wins; the first NaN when there are two */
    float nan_in[4] = { 3, NAN, 4, NAN }, o;
    int32_t a;
    maxpool_forward(&o, &a, nan_in, 1, 1, 2, 2, 2, 2);
    ck_assert(isnan(o));
    ck_assert_int_eq(a, 1);
    nan_in[0] = NAN;
    maxpool_forward(&o, &a, nan_in, 1, 1, 2, 2, 2, 2);
    ck_assert_int_eq(a, 0);

    /* overlapping 3x3 windows (stride 1) over a 3x4 plane share their max,
     * the first 9: its gradient is the sum of both */
    float pl[12] = { 0, 0, 0, 0, 0, 9, 9, 0, 0, 0, 0, 0 }, o2[2], d2[2] = { 1.5f, 2.5f }, g2[12];
    int32_t a2[2];
    maxpool_forward(o2, a2, pl, 1, 1, 3, 4, 3, 1);
    ck_assert_int_eq(a2[0], 5); /* the first 9 in both windows */
    ck_assert_int_eq(a2[1], 5);
    maxpool_backward(g2, d2, a2, 1, 1, 3, 4, 1, 2);
    ck_assert_float_eq(g2[5], 4.0f);
    ck_assert_float_eq(g2[6], 0.0f);
}
END_TEST

/* ---- the kinds through the spec parser ----------------------------------------- */

struct spec_case {
    const char *text, *canonical;
    struct shape last; /* the shape before the final fc */
};

static const struct spec_case spec_good[] = {
    { "in:3x7x5,maxpool:2,fc:2", "in:3x7x5,maxpool:2,fc:2", { 3, 3, 2 } },
    { "in:3x7x5,maxpool:2s2,fc:2", "in:3x7x5,maxpool:2,fc:2", { 3, 3, 2 } },
    { "in:3x7x5,maxpool:3s2,fc:2", "in:3x7x5,maxpool:3s2,fc:2", { 3, 3, 2 } },
    { "in:3x7x5,avgpool:3s1,fc:2", "in:3x7x5,avgpool:3s1,fc:2", { 3, 5, 3 } },
    { "in:3x7x5,avgpool:2s3,fc:2", "in:3x7x5,avgpool:2s3,fc:2", { 3, 2, 2 } },
    { "in:3x7x5,gap,fc:2", "in:3x7x5,gap,fc:2", { 3, 1, 1 } },
    { "in:2x6x6,bn,relu,maxpool:2,fc:3", "in:2x6x6,bn,relu,maxpool:2,fc:3", { 2, 3, 3 } },
    { "in:1x28x28,bn,maxpool:2,avgpool:2,dropout:0.5,gap,fc:10",
      "in:1x28x28,bn,maxpool:2,avgpool:2,dropout:0.5,gap,fc:10", { 1, 1, 1 } },
    { "in:3x5x5,maxpool:5,fc:2", "in:3x5x5,maxpool:5,fc:2", { 3, 1, 1 } },
    { "in:4x1x1,maxpool:1,gap,fc:2", "in:4,maxpool:1,gap,fc:2", { 4, 1, 1 } },
};

START_TEST(test_pool_spec_round_trip)
{
    const struct spec_case *c = &spec_good[_i];
    struct spec s, again;
    char err[256];
    tu_spec_round_trip(&s, &again, c->text, c->canonical);
    struct shape sh[SPEC_MAX_ITEMS];
    ck_assert_int_eq(spec_shapes(&s, sh, err, sizeof err), 0);
    struct shape l = sh[s.n - 2];
    ck_assert_msg(l.c == c->last.c && l.h == c->last.h && l.w == c->last.w, "%s: %dx%dx%d",
                  c->text, l.c, l.h, l.w);
    ck_assert_int_eq(spec_input_width(&s), shape_size(sh[0]));
}
END_TEST

struct bad_case {
    const char *text, *says;
};

static const struct bad_case spec_bad[] = {
    { "in:3x7x5,maxpool:6,fc:2", "item 2 'maxpool:6': a 6x6 window does not fit a 7x5 input" },
    { "in:3x7x5,avgpool:8s1,fc:2", "item 2 'avgpool:8s1': a 8x8 window does not fit a 7x5" },
    { "in:4,maxpool:2,fc:2", "item 2 'maxpool:2': a 2x2 window does not fit a 1x1 input" },
    { "in:2x6x6,maxpool:3,maxpool:3,fc:2", "item 3 'maxpool:3': a 3x3 window does not fit a 2x2" },
    { "in:3x7x5,maxpool:0,fc:2", "item 2 'maxpool:0': the window must be K or KsS" },
    { "in:3x7x5,maxpool:2s0,fc:2", "the window must be K or KsS" },
    { "in:3x7x5,maxpool:,fc:2", "the window must be K or KsS" },
    { "in:3x7x5,maxpool:2s,fc:2", "the window must be K or KsS" },
    { "in:3x7x5,maxpool:s2,fc:2", "the window must be K or KsS" },
    { "in:3x7x5,maxpool:-2,fc:2", "the window must be K or KsS" },
    { "in:3x7x5,maxpool:+2,fc:2", "the window must be K or KsS" },
    { "in:3x7x5,maxpool:2x,fc:2", "the window must be K or KsS" },
    { "in:3x7x5,avgpool:3s2s1,fc:2", "the window must be K or KsS" },
    { "in:3x7x5,avgpool:99999999999,fc:2", "the window must be K or KsS" },
    { "in:3x7x5,avgpool:2s99999999999,fc:2", "the window must be K or KsS" },
    { "in:3x7x5,maxpool,fc:2", "item 2 'maxpool' is not a layer" },
    { "in:3x7x5,gap:2,fc:2", "item 2 'gap:2' is not a layer" },
    { "in:3x0x5,fc:2", "item 1 'in:3x0x5': the input must be N or CxHxW" },
    { "in:3x5,fc:2", "the input must be N or CxHxW" },
    { "in:3x5x5x5,fc:2", "the input must be N or CxHxW" },
    { "in:x5x5,fc:2", "the input must be N or CxHxW" },
    { "in:3x5x,fc:2", "the input must be N or CxHxW" },
    { "in:4096x4096x4096,fc:2", "the input must be N or CxHxW" },
    { "in:0,fc:2", "the width must be" },
};

START_TEST(test_pool_spec_refusals)
{
    tu_spec_refused(spec_bad[_i].text, false, spec_bad[_i].says);
}
END_TEST

/* ---- whole models ------------------------------------------------------------- */

/* Distinct inputs (no ties in any window) with channel offsets, and labels. */
static void fill_input(struct model *m, int B)
{
    distinct_inputs(m->act[0], (size_t)B * m->in_dim, 7);
    for (int i = 0; i < B * m->in_dim; i++)
        m->act[0][i] = 3.0f * m->act[0][i] + 0.5f * (float)(i % 3);
    for (int i = 0; i < B; i++)
        m->labels[i] = (int32_t)(i % m->classes);
}

/* Central differences of the summed loss against every parameter's analytic
 * gradient (a sample of each tensor's elements), as check_model.c does, with
 * a step h in float. Pooling windows hold distinct inputs, so no max changes
 * place within a step; a ReLU after batch norm has hundreds of values near its
 * kink, and a step of 1e-2 on a bn bias crosses a few of them (0.57 against
 * 0.65 in the first case): those cases take 1e-3, where the float rounding of
 * the loss (about 1e-6 over 1e-3) still sits well inside the tolerance. */
static void check_model_gradients(const char *spec, int B, int G, bool train, float h)
{
    struct model m;
    tu_build(&m, spec, B, G);
    fill_input(&m, B);
    tu_model_gradients(&m, spec, B, train, h);
    model_free(&m);
}

struct model_case {
    const char *spec;
    int B, G;
    bool train;
    float h;
};

static const struct model_case model_cases[] = {
    { "in:2x6x6,bn,relu,maxpool:2,fc:3", 8, 0, true, 1e-3f },
    { "in:2x6x6,bn,relu,maxpool:2,fc:3", 8, 3, true, 1e-3f },
    { "in:3x7x5,bn,maxpool:3s2,bn,fc:4", 6, 0, true, 1e-2f },
    { "in:2x6x6,bn,avgpool:2s1,bn,gap,fc:3", 5, 2, true, 1e-2f },
    { "in:2x5x5,bn,dropout:0.3,avgpool:2,fc:3", 6, 2, true, 1e-2f },
    { "in:2x6x6,fc:8,bn,fc:3", 8, 0, true, 1e-2f },
    { "in:2x6x6,bn,maxpool:2,bn,dropout:0.5,fc:3", 8, 0, false, 1e-2f },
    { "in:3x7x5,bn,avgpool:3s2,gap,fc:3", 4, 0, false, 1e-2f },
    { "in:2x6x6,bn,relu,maxpool:2,fc:3", 8, 0, false, 1e-3f },
};

START_TEST(test_pool_model_gradients)
{
    const struct model_case *c = &model_cases[_i];
    check_model_gradients(c->spec, c->B, c->G, c->train, c->h);
}
END_TEST

/* With ghost groups a batch's forward is the same whether computed at once
 * or as two slices of whole groups (the multi-rank case), spatial bn and
 * dropout (keyed by global sample) included. */
START_TEST(test_pool_ghost_split_invariance)
{
    const int B = 8, G = 2;
    const char *spec = "in:2x6x6,bn,relu,dropout:0.5,maxpool:2,bn,fc:3";
    struct model whole, half;
    tu_build(&whole, spec, B, G);
    tu_build(&half, spec, B, G);
    fill_input(&whole, B);
    int in = whole.in_dim;
    struct pass_ctx ctx = { .train = true, .seed = 4, .step = 9, .first_sample = 0 };
    const float *out = model_forward(&whole, &ctx, B);
    for (int part = 0; part < 2; part++) {
        int first = part * B / 2;
        memcpy(half.act[0], whole.act[0] + first * in, (size_t)(B / 2) * in * sizeof(float));
        struct pass_ctx pc = ctx;
        pc.first_sample = (uint64_t)first;
        const float *o = model_forward(&half, &pc, B / 2);
        for (int i = 0; i < B / 2 * 3; i++)
            ck_assert_float_eq_tol(o[i], out[first * 3 + i], 1e-6);
        /* the layers before fc see the very same bits */
        for (int l = 0; l < half.nlayers - 1; l++) {
            size_t n = (size_t)half.layers[l].out_dim;
            ck_assert(memcmp(half.act[l + 1], whole.act[l + 1] + first * n,
                             (size_t)(B / 2) * n * sizeof(float)) == 0);
        }
    }
    model_free(&whole);
    model_free(&half);
}
END_TEST

/* bn_batch holds per-channel sums over ghost groups of the group means and
 * unbiased variances (n = samples x plane), and the group count; running
 * statistics move by momentum towards their mean. Against a double
 * reference over the input, which the first bn normalises. */
START_TEST(test_pool_running_statistics)
{
    enum { B = 6, G = 3, C = 2, HW = 9 };
    struct model m;
    tu_build(&m, "in:2x3x3,bn,maxpool:2,fc:2", B, G);
    fill_input(&m, B);
    ck_assert_uint_eq(m.bn_running_n, 2 * C);
    struct pass_ctx ctx = { .train = true, .seed = 1 };
    model_forward(&m, &ctx, B);
    ck_assert_float_eq(m.bn_batch[m.bn_running_n], 2.0f);
    const float *x = m.act[0];
    float want_m[C], want_v[C];
    for (int c = 0; c < C; c++) {
        double sm = 0, sv = 0;
        for (int g = 0; g < 2; g++) {
            double mean = 0, var = 0;
            for (int i = g * G; i < g * G + G; i++)
                for (int p = 0; p < HW; p++)
                    mean += x[(i * C + c) * HW + p];
            mean /= G * HW;
            for (int i = g * G; i < g * G + G; i++)
                for (int p = 0; p < HW; p++)
                    var += pow(x[(i * C + c) * HW + p] - mean, 2);
            sm += mean;
            sv += var / (G * HW - 1);
        }
        ck_assert_double_eq_tol(m.bn_batch[c], sm, 1e-5 * (1 + fabs(sm)));
        ck_assert_double_eq_tol(m.bn_batch[C + c], sv, 1e-5 * (1 + fabs(sv)));
        want_m[c] = (float)(0.9 * 0.0 + 0.1 * sm / 2);
        want_v[c] = (float)(0.9 * 1.0 + 0.1 * sv / 2);
    }
    model_update_running(&m);
    for (int c = 0; c < C; c++) {
        ck_assert_float_eq_tol(m.bn_running[c], want_m[c], 1e-6);
        ck_assert_float_eq_tol(m.bn_running[C + c], want_v[c], 1e-6);
    }
    model_free(&m);
}
END_TEST

/* Shapes, tensors, declared buffers and flops of a model with pooling. */
START_TEST(test_pool_model_memory)
{
    const int B = 4;
    struct model m;
    tu_build(&m, "in:3x7x5,bn,maxpool:3s2,avgpool:2s1,dropout:0.5,gap,fc:4", B, 0);
    ck_assert_int_eq(m.nlayers, 6);
    ck_assert_int_eq(m.in_dim, 105);
    const struct layer *l = m.layers;
    ck_assert_int_eq(l[0].stat_channels, 3);
    ck_assert_uint_eq(m.arena.views[l[0].w_view].n, 3);
    ck_assert_uint_eq(m.arena.views[l[0].b_view].n, 3);
    ck_assert_uint_eq(l[0].buf[0].bytes, (size_t)B * 105 * sizeof(float)); /* xhat */
    ck_assert_uint_eq(l[0].buf[1].bytes, (size_t)B * 3 * sizeof(float));   /* group means */
    ck_assert(l[1].out.c == 3 && l[1].out.h == 3 && l[1].out.w == 2);
    ck_assert_uint_eq(l[1].buf[0].bytes, (size_t)B * 18 * sizeof(int32_t)); /* arg-max */
    ck_assert_int_eq(l[1].w_view, -1);
    ck_assert(l[2].out.c == 3 && l[2].out.h == 2 && l[2].out.w == 1);
    ck_assert_uint_eq(l[2].buf[0].bytes, 0);
    ck_assert_uint_eq(l[3].buf[0].bytes, (size_t)B * 6); /* the mask, per element */
    ck_assert(l[4].out.c == 3 && l[4].out.h == 1 && l[4].out.w == 1);
    ck_assert_int_eq(l[5].in_dim, 3);
    /* comparisons, additions, then fc's multiply-adds x2 */
    ck_assert_double_eq(model_flops_per_sample(&m), 18 * 9 + 6 * 4 + 6 + 2.0 * 3 * 4);
    ck_assert_uint_eq(model_param_count(&m), 3 + 3 + 3 * 4 + 4);
    model_free(&m);
}
END_TEST

/* The noise scale's halves with spatial batch norm: without ghost groups the
 * first rows' gradient share of gamma and beta is a sum over those rows, and
 * all of it is the whole gradient. */
START_TEST(test_pool_half_norms)
{
    const int B = 6;
    struct model m;
    tu_build(&m, "in:2x4x4,bn,maxpool:2,fc:3", B, 0);
    ck_assert_int_eq(model_enable_halves(&m), 0);
    fill_input(&m, B);
    struct pass_ctx ctx = { .train = true, .seed = 1 };
    tu_loss_of(&m, &ctx, B);
    m.measure_halves = true;
    model_backward(&m, m.labels, B, NULL, NULL);
    /* |h|^2 + |g - h|^2 >= |g|^2 / 2 for any h, and both halves count */
    double g2 = 0;
    for (size_t k = 0; k < m.arena.n; k++)
        g2 += (double)m.arena.g[k] * m.arena.g[k];
    ck_assert(m.half_sq[0] > 0 && m.half_sq[1] > 0);
    ck_assert(m.half_sq[0] + m.half_sq[1] >= g2 / 2 * (1 - 1e-6));
    model_free(&m);
}
END_TEST

Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_maxpool_gradients, 0, NPOOL_CASES);
    tcase_add_loop_test(tc, test_avgpool_gradients, 0, NPOOL_CASES);
    tcase_add_loop_test(tc, test_gap_gradients, 0, NPOOL_CASES);
    tcase_add_test(tc, test_maxpool_ties_and_nan);
    suite_add_tcase(s, tc);

    tc = tcase_create("spec");
    tcase_add_loop_test(tc, test_pool_spec_round_trip, 0,
                        (int)(sizeof spec_good / sizeof spec_good[0]));
    tcase_add_loop_test(tc, test_pool_spec_refusals, 0, (int)(sizeof spec_bad / sizeof spec_bad[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("model");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_pool_model_gradients, 0,
                        (int)(sizeof model_cases / sizeof model_cases[0]));
    tcase_add_test(tc, test_pool_ghost_split_invariance);
    tcase_add_test(tc, test_pool_running_statistics);
    tcase_add_test(tc, test_pool_model_memory);
    tcase_add_test(tc, test_pool_half_norms);
    suite_add_tcase(s, tc);
    return s;
}
