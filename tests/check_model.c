/* Tests of the model: whole-model gradients, ghost batch norm's independence
 * from how a batch is split, running statistics, tensor layout. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "model.h"
#include "model_init.h"
#include "suites.h"

/* Central differences of the summed loss against the analytic gradient, for
 * a sample of every tensor's elements. */
static void check_gradients_mode(const char *spec, int B, int G, bool train)
{
    struct model m;
    tu_build(&m, spec, B, G);
    tu_fill_input(&m, B);
    tu_model_gradients(&m, spec, B, train, 1e-2f);
    model_free(&m);
}

static void check_gradients(const char *spec, int B, int G)
{
    check_gradients_mode(spec, B, G, true);
}

START_TEST(test_model_gradients)
{
    check_gradients("in:5,fc:6,relu,fc:3", 4, 0);
    /* two batch norms in a row without a ReLU between: a ReLU right after
     * batch norm on 8 samples puts kinks within reach of the finite
     * differences; the layers are checked one by one in check_layers */
    check_gradients("in:5,fc:6,bn,fc:4,bn,fc:3", 8, 0);
    check_gradients("in:5,fc:6,bn,relu,dropout:0.3,fc:3", 8, 3);
}
END_TEST

/* The evaluation-mode gradient (running statistics, no dropout), which the
 * analysis commands differentiate. */
START_TEST(test_model_gradients_eval_mode)
{
    check_gradients_mode("in:5,fc:6,bn,fc:4,bn,dropout:0.5,fc:3", 8, 0, false);
}
END_TEST

/* With ghost groups, a batch's forward is the same whether computed at once
 * or as two slices that each hold whole groups (the multi-rank case). */
START_TEST(test_ghost_bn_split_invariance)
{
    const int B = 8, G = 2;
    struct model whole, half;
    tu_build(&whole, "in:5,fc:6,bn,relu,dropout:0.5,fc:3", B, G);
    tu_build(&half, "in:5,fc:6,bn,relu,dropout:0.5,fc:3", B, G);
    tu_fill_input(&whole, B);
    struct pass_ctx ctx = { .train = true, .seed = 4, .step = 9, .first_sample = 0 };
    const float *out = model_forward(&whole, &ctx, B);
    for (int part = 0; part < 2; part++) {
        int first = part * B / 2;
        memcpy(half.act[0], whole.act[0] + first * 5, (size_t)(B / 2) * 5 * sizeof(float));
        struct pass_ctx pc = ctx;
        pc.first_sample = (uint64_t)first;
        const float *o = model_forward(&half, &pc, B / 2);
        for (int i = 0; i < B / 2 * 3; i++)
            ck_assert_float_eq_tol(o[i], out[first * 3 + i], 1e-6);
    }
    model_free(&whole);
    model_free(&half);
}
END_TEST

/* bn_batch holds group sums and the group count; running statistics move by
 * momentum towards their mean. */
START_TEST(test_running_statistics)
{
    const int B = 6, G = 3;
    struct model m;
    tu_build(&m, "in:2,fc:2,bn,relu,fc:2", B, G);
    tu_fill_input(&m, B);
    struct pass_ctx ctx = { .train = true, .seed = 1 };
    model_forward(&m, &ctx, B);
    ck_assert_float_eq(m.bn_batch[m.bn_running_n], 2.0f);
    /* the mean over groups of group means of fc1's output equals its batch mean */
    const float *a = m.act[1];
    for (int c = 0; c < 2; c++) {
        double mean = 0;
        for (int i = 0; i < B; i++)
            mean += a[i * 2 + c];
        mean /= B;
        ck_assert_double_eq_tol(m.bn_batch[c] / 2.0, mean, 1e-5);
    }
    float expect = 0.9f * 0.0f + 0.1f * m.bn_batch[0] / 2.0f;
    model_update_running(&m);
    ck_assert_float_eq_tol(m.bn_running[0], expect, 1e-7);
    ck_assert_float_gt(m.bn_running[2], 0.0f); /* a variance moved from 1 */
    model_free(&m);
}
END_TEST

START_TEST(test_layout_and_counts)
{
    struct model m;
    tu_build(&m, "in:784,fc:1024,bn,relu,fc:1024,bn,relu,fc:10", 4, 0);
    ck_assert_uint_eq(model_param_count(&m),
                      784 * 1024 + 1024 + 2 * 1024 + 1024 * 1024 + 1024 + 2 * 1024 + 1024 * 10 + 10);
    ck_assert_double_eq(model_flops_per_sample(&m), 2.0 * (784 * 1024 + 1024 * 1024 + 1024 * 10));
    ck_assert_str_eq(m.arena.views[0].name, "fc1.weight");
    ck_assert_str_eq(m.arena.views[2].name, "bn1.weight");
    size_t prev_lo = 0, lo, hi;
    for (int l = m.nlayers - 1; l >= 0; l--) {
        model_grad_range(&m, l, &lo, &hi);
        ck_assert_uint_eq(hi, m.arena.n);
        if (l < m.nlayers - 1)
            ck_assert_uint_le(lo, prev_lo);
        prev_lo = lo;
    }
    ck_assert_uint_eq(prev_lo, 0);
    /* He init: the first layer's weights have std close to sqrt(2/784) */
    double s2 = 0;
    for (size_t k = 0; k < m.arena.views[0].n; k++)
        s2 += (double)m.arena.w[k] * m.arena.w[k];
    ck_assert_double_eq_tol(sqrt(s2 / (double)m.arena.views[0].n), sqrt(2.0 / 784), 1e-3);
    model_free(&m);
}
END_TEST

/* Every layer carries its kind, its shapes and its views; bn declares its
 * running statistics and buffers, dropout its mask. */
START_TEST(test_layer_shapes_and_memory)
{
    const int B = 8;
    struct model m;
    tu_build(&m, "in:784,fc:256,bn,relu,dropout:0.5,fc:10", B, 0);
    ck_assert_int_eq(m.nlayers, 5);
    const struct layer *l = m.layers;
    ck_assert_ptr_eq(l[0].kind, &layer_fc);
    ck_assert(l[0].in.c == 784 && l[0].in.h == 1 && l[0].in.w == 1);
    ck_assert(l[0].out.c == 256 && l[0].out.h == 1 && l[0].out.w == 1);
    ck_assert_int_eq(l[0].in_dim, 784);
    ck_assert_int_eq(l[0].out_dim, 256);
    ck_assert_str_eq(m.arena.views[l[0].w_view].name, "fc1.weight");
    ck_assert_str_eq(m.arena.views[l[0].b_view].name, "fc1.bias");
    ck_assert_ptr_eq(l[1].kind, &layer_bn);
    ck_assert_str_eq(m.arena.views[l[1].w_view].name, "bn1.weight");
    ck_assert_int_eq(l[1].stat_channels, 256);
    ck_assert_uint_eq(m.bn_running_n, 2 * 256);
    ck_assert_ptr_eq(l[2].kind, &layer_relu);
    ck_assert_int_eq(l[2].w_view, -1);
    ck_assert_ptr_eq(l[3].kind, &layer_dropout);
    ck_assert_uint_eq(l[3].buf[0].bytes, (size_t)B * 256);
    ck_assert_ptr_nonnull(l[3].buf[0].p);
    ck_assert(l[4].in.c == 256 && l[4].out.c == 10);
    ck_assert_str_eq(m.arena.views[l[4].w_view].name, "fc2.weight");
    ck_assert_int_eq(m.max_width, 784);
    /* inputs, two gradient buffers, softmax, every output, bn's xhat, group
     * means and rstds and its 2 C of scratch, as floats; the mask, the labels */
    size_t floats = B * 784 + 2 * B * 784 + B * 10 + 4 * B * 256 + B * 10 + 3 * B * 256 + 2 * 256;
    ck_assert_uint_eq(model_activation_bytes(&m), floats * 4 + B * 256 + B * 4);
    model_free(&m);
}
END_TEST

/* Frozen layers get rate 0, the others decay^(L-l) from the head down; batch
 * norm follows the linear layer before it. */
START_TEST(test_layer_rates)
{
    struct model m;
    tu_build(&m, "in:4,fc:4,bn,relu,fc:4,bn,relu,fc:3", 2, 0);
    arena_set_layer_rates(&m.arena, 1, 0.5);
    const struct tensor_view *v = m.arena.views;
    ck_assert_str_eq(v[0].name, "fc1.weight");
    ck_assert_float_eq(v[0].lr_mult, 0.0f);
    ck_assert_float_eq(v[3].lr_mult, 0.0f); /* bn1.bias */
    ck_assert_str_eq(v[4].name, "fc2.weight");
    ck_assert_float_eq(v[4].lr_mult, 0.5f);
    ck_assert_float_eq(v[7].lr_mult, 0.5f); /* bn2.bias */
    ck_assert_str_eq(v[8].name, "fc3.weight");
    ck_assert_float_eq(v[8].lr_mult, 1.0f);
    arena_set_layer_rates(&m.arena, 0, 0.1);
    ck_assert_float_eq_tol(v[0].lr_mult, 0.01f, 1e-8);
    model_free(&m);
}
END_TEST

/* Without batch norm, rows contribute independently: the half norms of one
 * backward equal the norms of backward passes over each half alone. */
START_TEST(test_half_norms)
{
    const int B = 8;
    struct model m;
    tu_build(&m, "in:5,fc:6,relu,fc:3", B, 0);
    ck_assert_int_eq(model_enable_halves(&m), 0);
    tu_fill_input(&m, B);
    struct pass_ctx ctx = { .train = true, .seed = 1 };
    tu_half_norms_split(&m, &ctx, B);
    model_free(&m);
}
END_TEST

/* The sample std of view v, its largest |value|, and its mean. */
static void view_stats(const struct model *m, int v, double *sd, double *most, double *mean)
{
    const struct tensor_view *tv = &m->arena.views[v];
    const float *w = arena_w(&m->arena, v);
    double s = 0, s2 = 0;
    *most = 0;
    for (size_t k = 0; k < tv->n; k++) {
        s += w[k];
        s2 += (double)w[k] * w[k];
        *most = fabs(w[k]) > *most ? fabs(w[k]) : *most;
    }
    *mean = s / (double)tv->n;
    *sd = sqrt(s2 / (double)tv->n - *mean * *mean);
}

/* --init against its formulas, view by view: std 1/sqrt(fan_in) for lecun;
 * for torch every value within the bound 1/sqrt(fan_in), the largest near
 * it, and std bound/sqrt(3) (a uniform's). The sample std of n draws is off
 * by about 1/sqrt(2n) relative (1.7% for the 1728 weights of the conv, less
 * for the others): tolerances are 4 of those plus 1%, biases (64 values and
 * up) checked against the bound and a loose 25% on their std. he is
 * model_init_params bit for bit; batch norm stays gamma 1, beta 0. */
START_TEST(test_init_kinds)
{
    const char *spec = "in:3x12x12,conv:64k3p1,bn,relu,fc:256,relu,fc:10";
    struct model m, ref;
    tu_build(&m, spec, 2, 0);
    tu_build(&ref, spec, 2, 0);
    model_init_params(&ref, 9);
    model_init_params_as(&m, 9, INIT_HE);
    ck_assert(memcmp(m.arena.w, ref.arena.w, m.arena.n * sizeof(float)) == 0);
    for (int how = INIT_LECUN; how <= INIT_TORCH; how++) {
        model_init_params_as(&m, 9, (enum model_init)how);
        int fan_in = 0;
        for (int v = 0; v < m.arena.nviews; v++) {
            const struct tensor_view *tv = &m.arena.views[v];
            double sd, most, mean;
            view_stats(&m, v, &sd, &most, &mean);
            if (tv->role == ROLE_WEIGHT)
                fan_in = tv->cols;
            double bound = 1.0 / sqrt((double)fan_in), tol = 4.0 / sqrt(2.0 * (double)tv->n) + 0.01;
            if (tv->role == ROLE_BN_GAMMA) {
                ck_assert(sd == 0 && mean == 1.0);
            } else if (tv->role == ROLE_BN_BETA || (tv->role == ROLE_BIAS && how == INIT_LECUN)) {
                ck_assert(most == 0);
            } else if (how == INIT_LECUN) {
                ck_assert_msg(fabs(sd / bound - 1) < tol, "%s: lecun std %g, want %g", tv->name, sd, bound);
            } else {
                ck_assert_msg(most <= bound, "%s: %g beyond the bound %g", tv->name, most, bound);
                ck_assert_msg(most > 0.9 * bound, "%s: largest %g, bound %g", tv->name, most, bound);
                double want = bound / sqrt(3.0), t = tv->role == ROLE_BIAS ? 0.25 : tol;
                ck_assert_msg(fabs(sd / want - 1) < t, "%s: torch std %g, want %g", tv->name, sd, want);
            }
        }
        ck_assert_int_eq(m.arena.views[0].cols, 27); /* conv fan_in = 3 x 3 x 3 */
    }
    model_free(&m);
    model_free(&ref);
}
END_TEST

Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_model_gradients);
    tcase_add_test(tc, test_model_gradients_eval_mode);
    tcase_add_test(tc, test_ghost_bn_split_invariance);
    tcase_add_test(tc, test_running_statistics);
    tcase_add_test(tc, test_layout_and_counts);
    tcase_add_test(tc, test_layer_shapes_and_memory);
    tcase_add_test(tc, test_layer_rates);
    tcase_add_test(tc, test_half_norms);
    tcase_add_test(tc, test_init_kinds);
    suite_add_tcase(s, tc);
    return s;
}
