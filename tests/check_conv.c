/* Tests of the 2-D convolution: the kernels of conv.c against a direct
 * double-precision convolution and its central differences (strides 1 to 3,
 * padding 0 to 2, odd sizes, 1x1 kernels, a kernel as large as the padded
 * input), the conv: spec item and the in:CxHxW input (round trips,
 * refusals), and whole models with conv layers (gradients, half norms,
 * tensors and memory). Tolerances as in check_util.h: the reference is
 * linear in each input, so its central differences are good to about 1e-9,
 * the float kernels to about 1e-6 relative; 1e-4 relative plus 1e-4 absolute
 * still catches a wrong or missing term, of order 1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "conv.h"
#include "model.h"
#include "rng.h"
#include "suites.h"

static void fill(float *x, size_t n, uint64_t key)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)rng_normal(23, 1, key, i, 0);
}

/* ---- the kernels against a direct convolution ------------------------------- */

/* B, IC, H, W, OC, k, stride, pad, bias */
static const int cases[][9] = {
    { 2, 3, 7, 5, 4, 3, 1, 1, 1 }, /* odd sizes, "same" padding */
    { 2, 3, 7, 5, 4, 3, 2, 0, 1 }, /* stride 2, no padding, a leftover column */
    { 1, 2, 6, 6, 3, 3, 2, 2, 0 }, /* padding 2, no bias */
    { 3, 5, 4, 3, 6, 1, 1, 0, 1 }, /* pointwise: no im2col */
    { 2, 4, 5, 5, 3, 1, 2, 0, 0 }, /* a 1x1 projection of stride 2 */
    { 2, 2, 3, 3, 3, 5, 1, 1, 1 }, /* the kernel as large as the padded input */
    { 2, 1, 8, 8, 2, 4, 3, 1, 1 }, /* stride 3, an even kernel */
    { 1, 3, 9, 9, 4, 5, 2, 2, 1 }, /* a 5x5 kernel, stride 2, padding 2 */
    { 2, 2, 6, 4, 3, 5, 1, 2, 1 }, /* "same" 5x5 on a plane narrower than the kernel */
};
enum { NCASES = (int)(sizeof cases / sizeof cases[0]) };

struct conv_ref {
    double *in, *w, *b, *R, *out;
    int B, bias;
    struct conv_geom g;
};

/* The definition: out[n][o][y][x] = b[o] + sum over c, i, j of
 * w[o][c][i][j] in[n][c][y s - p + i][x s - p + j], 0 outside the input. */
static void ref_conv(const struct conv_ref *r)
{
    const struct conv_geom *g = &r->g;
    int k = g->k;
    for (int n = 0; n < r->B; n++)
        for (int o = 0; o < g->oc; o++)
            for (int y = 0; y < g->oh; y++)
                for (int x = 0; x < g->ow; x++) {
                    double s = r->bias ? r->b[o] : 0.0;
                    for (int c = 0; c < g->ic; c++)
                        for (int i = 0; i < k; i++)
                            for (int j = 0; j < k; j++) {
                                int iy = y * g->stride - g->pad + i, ix = x * g->stride - g->pad + j;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                    continue;
                                s += r->w[((o * g->ic + c) * k + i) * k + j] *
                                     r->in[((n * g->ic + c) * g->h + iy) * g->w + ix];
                            }
                    r->out[((n * g->oc + o) * g->oh + y) * g->ow + x] = s;
                }
}

static double ref_loss(void *p)
{
    const struct conv_ref *r = p;
    ref_conv(r);
    size_t n = (size_t)r->B * r->g.oc * r->g.oh * r->g.ow;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += r->out[i] * r->R[i];
    return s;
}

struct conv_bufs {
    float *in, *w, *b, *R, *out, *col, *din, *dw, *db;
    size_t nin, nw, nout;
};

static void conv_bufs_init(struct conv_bufs *f, const struct conv_geom *g, int B, int key)
{
    f->nin = (size_t)B * g->ic * g->h * g->w;
    f->nw = (size_t)g->oc * g->ic * g->k * g->k;
    f->nout = (size_t)B * g->oc * g->oh * g->ow;
    f->in = tu_falloc(f->nin);
    f->w = tu_falloc(f->nw);
    f->b = tu_falloc((size_t)g->oc);
    f->R = tu_falloc(f->nout);
    f->out = tu_falloc(f->nout);
    f->col = tu_falloc(conv_col_floats(g));
    f->din = tu_falloc(f->nin);
    f->dw = tu_falloc(f->nw);
    f->db = tu_falloc((size_t)g->oc);
    fill(f->in, f->nin, (uint64_t)key);
    fill(f->w, f->nw, (uint64_t)key + 1);
    fill(f->b, (size_t)g->oc, (uint64_t)key + 2);
    fill(f->R, f->nout, (uint64_t)key + 3);
}

static void conv_bufs_free(struct conv_bufs *f)
{
    free(f->in);
    free(f->w);
    free(f->b);
    free(f->R);
    free(f->out);
    free(f->col);
    free(f->din);
    free(f->dw);
    free(f->db);
}

START_TEST(test_conv_forward_and_gradients)
{
    const int *c = cases[_i];
    int B = c[0], bias = c[8];
    struct conv_geom g;
    ck_assert_int_eq(conv_geom_init(&g, c[1], c[2], c[3], c[4], c[5], c[6], c[7]), 0);
    ck_assert_int_eq(g.oh, (c[2] + 2 * c[7] - c[5]) / c[6] + 1);
    ck_assert_int_eq(g.ow, (c[3] + 2 * c[7] - c[5]) / c[6] + 1);
    ck_assert(conv_is_pointwise(&g) == (c[5] == 1 && c[6] == 1 && c[7] == 0));
    struct conv_bufs f;
    conv_bufs_init(&f, &g, B, 10 * _i);
    /* every output and gradient is written, never read first (NaN would show) */
    tu_set_all(f.out, f.nout, NAN);
    tu_set_all(f.din, f.nin, NAN);
    tu_set_all(f.dw, f.nw, NAN);
    tu_set_all(f.db, (size_t)g.oc, NAN);
    conv_forward(f.out, f.col, f.in, f.w, bias ? f.b : NULL, B, &g);
    conv_backward(f.din, f.dw, bias ? f.db : NULL, f.col, f.R, f.in, f.w, B, &g, 0);

    struct conv_ref r = { tu_to_double(f.in, f.nin), tu_to_double(f.w, f.nw), tu_to_double(f.b, (size_t)g.oc),
                          tu_to_double(f.R, f.nout), tu_dalloc(f.nout), B, bias, g };
    ref_conv(&r);
    for (size_t k = 0; k < f.nout; k++)
        ck_assert_msg(fabs(f.out[k] - r.out[k]) <= 1e-5 * (1 + fabs(r.out[k])),
                      "out[%zu]: kernel %.9g, direct %.9g", k, f.out[k], r.out[k]);
    tu_check_grad("din", f.din, 0.0f, r.in, f.nin, ref_loss, &r);
    tu_check_grad("dw", f.dw, 0.0f, r.w, f.nw, ref_loss, &r);
    if (bias)
        tu_check_grad("db", f.db, 0.0f, r.b, (size_t)g.oc, ref_loss, &r);

    /* without an input gradient (the first layer) the others are the same,
     * and twice over they are overwritten, not added to */
    float *dw2 = tu_falloc(f.nw), *db2 = tu_falloc((size_t)g.oc);
    tu_set_all(dw2, f.nw, NAN);
    conv_backward(NULL, dw2, db2, f.col, f.R, f.in, f.w, B, &g, 0);
    conv_backward(NULL, dw2, db2, f.col, f.R, f.in, f.w, B, &g, 0);
    for (size_t k = 0; k < f.nw; k++)
        ck_assert_float_eq_tol(dw2[k], f.dw[k], 1e-5);
    if (bias)
        for (int k = 0; k < g.oc; k++)
            ck_assert_float_eq_tol(db2[k], f.db[k], 1e-5);
    /* no sample: zero gradients */
    conv_backward(NULL, dw2, db2, f.col, f.R, f.in, f.w, 0, &g, 0);
    for (size_t k = 0; k < f.nw; k++)
        ck_assert_float_eq(dw2[k], 0.0f);
    for (int k = 0; k < g.oc; k++)
        ck_assert_float_eq(db2[k], 0.0f);

    free(dw2);
    free(db2);
    free(r.in);
    free(r.w);
    free(r.b);
    free(r.R);
    free(r.out);
    conv_bufs_free(&f);
}
END_TEST

/* col2im is im2col's adjoint: <im2col(x), y> = <x, col2im(y)>. */
START_TEST(test_im2col_adjoint)
{
    const int *c = cases[_i];
    struct conv_geom g;
    ck_assert_int_eq(conv_geom_init(&g, c[1], c[2], c[3], c[4], c[5], c[6], c[7]), 0);
    size_t nx = (size_t)g.ic * g.h * g.w, ncol = (size_t)g.ic * g.k * g.k * g.oh * g.ow;
    float *x = tu_falloc(nx), *y = tu_falloc(ncol), *col = tu_falloc(ncol), *back = tu_falloc(nx);
    fill(x, nx, 1);
    fill(y, ncol, 2);
    tu_set_all(col, ncol, NAN);
    conv_im2col(col, x, &g);
    memset(back, 0, nx * sizeof *back);
    conv_col2im(back, y, &g);
    double a = 0, b = 0;
    for (size_t k = 0; k < ncol; k++)
        a += (double)col[k] * y[k];
    for (size_t k = 0; k < nx; k++)
        b += (double)x[k] * back[k];
    ck_assert_msg(fabs(a - b) <= 1e-5 * (1 + fabs(a)), "<im2col x, y> %g, <x, col2im y> %g", a, b);
    free(x);
    free(y);
    free(col);
    free(back);
}
END_TEST

START_TEST(test_conv_geometry_refusals)
{
    struct conv_geom g;
    ck_assert_int_eq(conv_geom_init(&g, 1, 3, 3, 4, 5, 1, 0), -1); /* 5 > 3 */
    ck_assert_int_eq(conv_geom_init(&g, 1, 3, 3, 4, 5, 1, 1), 0);  /* 5 == 3 + 2 */
    ck_assert(g.oh == 1 && g.ow == 1);
    ck_assert_int_eq(conv_geom_init(&g, 1, 3, 9, 4, 5, 1, 0), -1); /* too short */
    ck_assert_int_eq(conv_geom_init(&g, 1, 8, 8, 4, 3, 0, 0), -1); /* stride 0 */
    ck_assert_int_eq(conv_geom_init(&g, 0, 8, 8, 4, 3, 1, 0), -1);
    ck_assert_int_eq(conv_geom_init(&g, 1, 8, 8, 0, 3, 1, 0), -1);
    ck_assert_int_eq(conv_geom_init(&g, 1, 28, 28, 32, 5, 1, 2), 0);
    ck_assert(g.oh == 28 && g.ow == 28);
    ck_assert_double_eq(conv_flops(&g), 2.0 * 32 * 25 * 28 * 28);
    ck_assert_uint_eq(conv_col_floats(&g), 25 * 28 * 28);
    ck_assert_int_eq(conv_geom_init(&g, 16, 8, 8, 32, 1, 1, 0), 0);
    ck_assert_uint_eq(conv_col_floats(&g), 0);
}
END_TEST

/* ---- the spec: conv: and in:CxHxW ------------------------------------------- */

struct spec_case {
    const char *text, *canonical;
};

static const struct spec_case good[] = {
    { "in:1x28x28,conv:32k5p2,relu,fc:10", "in:1x28x28,conv:32k5p2,relu,fc:10" },
    { "in:3x32x32,conv:64p1b0k3s2,fc:10", "in:3x32x32,conv:64k3s2p1b0,fc:10" },
    { "in:3x32x32,conv:16k3s1p0,fc:10", "in:3x32x32,conv:16k3,fc:10" },
    { "in:784x1x1,fc:10", "in:784,fc:10" },
    { "in:1x1x5,fc:2", "in:1x1x5,fc:2" },
    { "in:2x3x3,conv:4k1,conv:1k3p2,fc:2", "in:2x3x3,conv:4k1,conv:1k3p2,fc:2" },
};

START_TEST(test_conv_spec_good)
{
    struct spec s, again;
    tu_spec_round_trip(&s, &again, good[_i].text, good[_i].canonical);
    ck_assert_int_eq(spec_input_width(&s), spec_input_width(&again));
}
END_TEST

struct bad_case {
    const char *text, *says;
};

static const struct bad_case bad[] = {
    { "in:1x28,fc:2", "the input must be N or CxHxW" },
    { "in:1x28x28x2,fc:2", "the input must be N or CxHxW" },
    { "in:0x28x28,fc:2", "the input must be N or CxHxW" },
    { "in:1xx28,fc:2", "the input must be N or CxHxW" },
    { "in:4096x4096x2,fc:2", "a product of at most 16777216" },
    { "in:1x8x8,conv:k3,fc:2", "item 2 'conv:k3': conv:OC needs its output channels first" },
    { "in:1x8x8,conv:0k3,fc:2", "output channels first, from 1 to 65536" },
    { "in:1x8x8,conv:65537k3,fc:2", "output channels first" },
    { "in:1x8x8,conv:4,fc:2", "the kernel size kK is required" },
    { "in:1x8x8,conv:4p1,fc:2", "the kernel size kK is required" },
    { "in:1x8x8,conv:4k0,fc:2", "the kernel size 0 must be a whole number from 1 to 255" },
    { "in:1x8x8,conv:4k3s0,fc:2", "the stride 0 must be a whole number from 1 to 255" },
    { "in:1x8x8,conv:4k3s,fc:2", "the field s needs a number after it" },
    { "in:1x8x8,conv:4k3p-1,fc:2", "the field p needs a number after it" },
    { "in:1x8x8,conv:4k3-1,fc:2", "'-' is not a field of conv" },
    { "in:1x8x8,conv:4k3x2,fc:2", "'x' is not a field of conv" },
    { "in:1x8x8,conv:4k3k5,fc:2", "the field k is given twice" },
    { "in:1x8x8,conv:4k3b1,fc:2", "the bias field can only be b0" },
    { "in:1x8x8,conv:4k3p3,fc:2", "the padding 3 must be smaller than the kernel size 3" },
    { "in:1x8x8,conv:4k99999,fc:2", "kernel size 99999 must be" },
    { "in:1x3x3,conv:64k5,fc:2", "item 2 'conv:64k5': a 5x5 kernel does not fit a 3x3 input with padding 0" },
    { "in:1x2x9,conv:4k5p1,fc:2", "a 5x5 kernel does not fit a 2x9 input with padding 1" },
    { "in:1x8x8,conv:4k3s2,conv:4k5,fc:2", "item 3 'conv:4k5': a 5x5 kernel does not fit a 3x3 input" },
    { "in:64,conv:4k3,fc:2", "a 3x3 kernel does not fit a 1x1 input with padding 0" },
    { "in:1x4096x4096,conv:2k3p1,fc:2", "more than 16777216 values per sample" },
    { "in:1x8x8,conv:4k3", "must end with fc:K" },
};

START_TEST(test_conv_spec_bad)
{
    tu_spec_refused(bad[_i].text, false, bad[_i].says);
}
END_TEST

/* Shapes through convs, and fc flattening whatever it is given. */
START_TEST(test_conv_spec_shapes)
{
    struct spec s;
    char err[256];
    ck_assert_int_eq(spec_parse(&s, "in:1x28x28,conv:16k5p2,relu,conv:32k5s2p2,relu,fc:10", 0, 0,
                                err, sizeof err), 0);
    ck_assert_int_eq(spec_input_width(&s), 784);
    ck_assert_int_eq(spec_output_width(&s), 10);
    struct shape sh[SPEC_MAX_ITEMS];
    ck_assert_msg(spec_shapes(&s, sh, err, sizeof err) == 0, "%s", err);
    static const int want[][3] = { { 1, 28, 28 }, { 16, 28, 28 }, { 16, 28, 28 },
                                   { 32, 14, 14 }, { 32, 14, 14 }, { 10, 1, 1 } };
    for (int i = 0; i < s.n; i++)
        ck_assert_msg(sh[i].c == want[i][0] && sh[i].h == want[i][1] && sh[i].w == want[i][2],
                      "item %d: %dx%dx%d", i + 1, sh[i].c, sh[i].h, sh[i].w);
    ck_assert_ptr_eq(layer_kind_find("conv", 4), &layer_conv);
}
END_TEST

/* ---- models with conv layers ------------------------------------------------- */

/* m with inputs and labels, no ghost groups. */
static void build(struct model *m, const char *text, int B)
{
    tu_build(m, text, B, 0);
    tu_fill_input(m, B);
}

static const struct pass_ctx train_ctx = { .train = true, .seed = 1 };

/* Central differences of the summed loss against every element of every
 * tensor, biases given non-zero values so that ReLU kinks are not all at the
 * same place. h = 1e-3, not check_model.c's 1e-2: a kernel weight touches
 * every position of its channel, and 1e-2 moves several pre-activations
 * across a ReLU's kink (errors of 0.1 seen); at 1e-3 the worst error is
 * 4e-3, float rounding of the loss and a few small kinks. */
START_TEST(test_conv_model_gradients)
{
    const int B = 3;
    const char *spec = "in:1x8x8,conv:4k3p1,relu,conv:6k3s2,relu,fc:3";
    struct model m;
    build(&m, spec, B);
    for (int v = 0; v < m.arena.nviews; v++)
        if (m.arena.views[v].role == ROLE_BIAS)
            for (size_t k = 0; k < m.arena.views[v].n; k++)
                arena_w(&m.arena, v)[k] = 0.1f * (float)rng_normal(3, 3, (uint64_t)v, k, 0);
    tu_model_fd(&m, spec, &train_ctx, B, 1e-3f, true);
    model_free(&m);
}
END_TEST

/* Tensor names and shapes, buffers, FLOPs, He initialisation; b0 declares no
 * bias and a pointwise conv no column buffer. */
START_TEST(test_conv_model_layout)
{
    const int B = 4;
    struct model m;
    build(&m, "in:3x32x32,conv:16k3p1,relu,conv:8k1b0,conv:4k3s2p1,fc:10", B);
    ck_assert_int_eq(m.in_dim, 3 * 32 * 32);
    const struct tensor_view *v = m.arena.views;
    ck_assert_int_eq(m.arena.nviews, 7);
    ck_assert_str_eq(v[0].name, "conv1.weight");
    ck_assert(v[0].rows == 16 && v[0].cols == 27);
    ck_assert_str_eq(v[1].name, "conv1.bias");
    ck_assert(v[1].rows == 16 && v[1].cols == 1 && v[1].role == ROLE_BIAS);
    ck_assert_str_eq(v[2].name, "conv2.weight");
    ck_assert(v[2].rows == 8 && v[2].cols == 16);
    ck_assert_str_eq(v[3].name, "conv3.weight");
    ck_assert(v[3].rows == 4 && v[3].cols == 72);
    ck_assert_str_eq(v[5].name, "fc1.weight");
    ck_assert(v[5].rows == 10 && v[5].cols == 4 * 16 * 16);
    ck_assert_int_eq(m.layers[2].b_view, -1);
    ck_assert(v[0].layer == 0 && v[2].layer == 1 && v[3].layer == 2 && v[5].layer == 3);
    ck_assert_uint_eq(m.layers[0].buf[0].bytes, 27 * 32 * 32 * sizeof(float));
    ck_assert_uint_eq(m.layers[2].buf[0].bytes, 0);
    ck_assert_uint_eq(m.layers[3].buf[0].bytes, 72 * 16 * 16 * sizeof(float));
    ck_assert_int_eq(m.max_width, 16 * 32 * 32);
    ck_assert_double_eq(model_flops_per_sample(&m),
                        2.0 * (16 * 27 * 1024 + 8 * 16 * 1024 + 4 * 72 * 256 + 10 * 1024));
    /* He: conv1 feeds a ReLU (std sqrt(2/27)), conv2 and conv3 feed none */
    double s2 = 0;
    for (size_t k = 0; k < v[0].n; k++)
        s2 += (double)m.arena.w[v[0].off + k] * m.arena.w[v[0].off + k];
    ck_assert_double_eq_tol(sqrt(s2 / (double)v[0].n), sqrt(2.0 / 27), 0.02);
    for (size_t k = 0; k < v[1].n; k++)
        ck_assert_float_eq(m.arena.w[v[1].off + k], 0.0f);
    model_free(&m);
}
END_TEST

/* Without batch norm samples contribute independently: the half norms of
 * one backward are the norms of backward passes over each half alone. */
START_TEST(test_conv_half_norms)
{
    const int B = 6;
    struct model m;
    build(&m, "in:2x5x5,conv:3k3p1,relu,conv:4k1,fc:3", B);
    ck_assert_int_eq(model_enable_halves(&m), 0);
    tu_half_norms_split(&m, &train_ctx, B);
    model_free(&m);
}
END_TEST

Suite *conv_suite(void)
{
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("kernels");
    tcase_add_loop_test(tc, test_conv_forward_and_gradients, 0, NCASES);
    tcase_add_loop_test(tc, test_im2col_adjoint, 0, NCASES);
    tcase_add_test(tc, test_conv_geometry_refusals);
    suite_add_tcase(s, tc);

    tc = tcase_create("spec");
    tcase_add_loop_test(tc, test_conv_spec_good, 0, (int)(sizeof good / sizeof good[0]));
    tcase_add_loop_test(tc, test_conv_spec_bad, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, test_conv_spec_shapes);
    suite_add_tcase(s, tc);

    tc = tcase_create("model");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_conv_model_gradients);
    tcase_add_test(tc, test_conv_model_layout);
    tcase_add_test(tc, test_conv_half_norms);
    suite_add_tcase(s, tc);
    return s;
}
