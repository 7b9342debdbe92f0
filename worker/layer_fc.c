/* The fully connected layer kind, fc:N: the glue between the layer table and
 * the kernels of linear.c. Its input is flattened, so any shape feeds it. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "layer.h"
#include "linear.h"
#include "model.h"
#include "rng.h"

/* Ghost batch norm's groups (--bn-group) split the products too: each
 * group's rows are one sgemm, and the weight gradient adds the groups' in
 * order. sgemm's result for a row depends on how many rows it is given (the
 * kernels tile them), so only products over the same row blocks make the
 * same bits: a step that forwards its slice in micro-batches of whole groups
 * (gradient accumulation) then matches one pass over the slice. Evaluation
 * passes, which have no groups, take all their rows at once. */
struct fc_state {
    int group;       /* rows per product in training passes, 0: the whole slice */
    bool last_train; /* mode of the last forward, which backward follows */
};

/* Rows [lo, lo + n) of the next block of a pass over B rows. */
static int fc_block(const struct layer *l, int lo, int B)
{
    const struct fc_state *st = l->state;
    int n = st->group > 0 && st->last_train ? st->group : B;
    return n < B - lo ? n : B - lo;
}

static int fc_shape(const struct layer_arg *a, struct shape in, struct shape *out, char *why,
                    size_t whylen)
{
    (void)in;
    *out = (struct shape){ a->width, 1, 1 };
    return 0;
}

/* fcK.weight (out_dim, in_dim) and fcK.bias (out_dim), K counting from 1. */
static int fc_declare(struct layer *l, const struct layer_arg *a, const struct layer_decl *d)
{
    (void)a;
    struct fc_state *st = l->state;
    st->group = d->opt->bn_group;
    char name[32];
    snprintf(name, sizeof name, "fc%d.weight", d->nth);
    l->w_view = arena_declare(d->arena, name, ROLE_WEIGHT, l->out_dim, l->in_dim, d->group);
    snprintf(name, sizeof name, "fc%d.bias", d->nth);
    l->b_view = arena_declare(d->arena, name, ROLE_BIAS, l->out_dim, 1, d->group);
    return l->w_view < 0 || l->b_view < 0 ? -1 : 0;
}

/* Normal weights of std sqrt(gain / fan_in) (He for gain 2, LeCun for 1);
 * the bias stays 0. */
static void fc_init(struct layer *l, uint64_t seed, double gain)
{
    double std = sqrt(gain / l->in_dim);
    const struct tensor_view *v = &l->arena->views[l->w_view];
    float *w = arena_w(l->arena, l->w_view);
    for (size_t k = 0; k < v->n; k++)
        w[k] = (float)(std * rng_normal(seed, RNG_INIT, (uint64_t)l->w_view, k, 0));
}

static void fc_fwd(struct layer *l, const struct pass_ctx *ctx, float *out, const float *in,
                   int B)
{
    struct fc_state *st = l->state;
    st->last_train = ctx->train;
    for (int lo = 0, n; lo < B; lo += n) {
        n = fc_block(l, lo, B);
        linear_forward(out + (size_t)lo * l->out_dim, in + (size_t)lo * l->in_dim,
                       arena_w(l->arena, l->w_view), arena_w(l->arena, l->b_view), n, l->in_dim,
                       l->out_dim);
    }
}

static void fc_bwd(struct layer *l, const struct arena *a, float *din, const float *dout,
                   const float *in, const float *out, int B)
{
    (void)out;
    int IN = l->in_dim, OUT = l->out_dim;
    if (B < 1 && !l->accumulate)
        linear_backward(din, arena_g(a, l->w_view), arena_g(a, l->b_view), dout, in,
                        arena_w(a, l->w_view), 0, IN, OUT, 0);
    for (int lo = 0, n; lo < B; lo += n) {
        n = fc_block(l, lo, B);
        linear_backward(din ? din + (size_t)lo * IN : NULL, arena_g(a, l->w_view),
                        arena_g(a, l->b_view), dout + (size_t)lo * OUT, in + (size_t)lo * IN,
                        arena_w(a, l->w_view), n, IN, OUT, l->accumulate || lo > 0);
    }
}

/* h = dout[0..rows)^T in[0..rows) for the weight, column sums for the bias. */
static void fc_half_norms(const struct layer *l, float *h, const float *dout, const float *in,
                          int rows, double sq[2])
{
    const struct arena *a = l->arena;
    int C = l->out_dim;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, l->in_dim, rows, 1.0f, dout, C, in,
                l->in_dim, 0.0f, h, l->in_dim);
    layer_add_half_norms(sq, arena_g(a, l->w_view), h, a->views[l->w_view].n);
    memset(h, 0, (size_t)C * sizeof *h);
    for (int i = 0; i < rows; i++)
        for (int c = 0; c < C; c++)
            h[c] += dout[(size_t)i * C + c];
    layer_add_half_norms(sq, arena_g(a, l->b_view), h, (size_t)C);
}

static double fc_flops(const struct layer *l)
{
    return 2.0 * l->in_dim * l->out_dim;
}

const struct layer_kind layer_fc = {
    .name = "fc",
    .usage = "fc:N",
    .parse_arg = layer_arg_width,
    .format_arg = layer_format_width,
    .out_shape = fc_shape,
    .weighted = true,
    .state_size = sizeof(struct fc_state),
    .declare = fc_declare,
    .init_params = fc_init,
    .forward = fc_fwd,
    .backward = fc_bwd,
    .half_norms = fc_half_norms,
    .flops = fc_flops,
};
