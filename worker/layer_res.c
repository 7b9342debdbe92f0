/* The residual block kind, res:OC[sS], the basic block of He et al. 2016:
 *
 *   out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
 *
 * conv1 3x3 stride S pad 1 and conv2 3x3 stride 1 pad 1, both without bias;
 * the shortcut is x itself when the shape is kept (OC == IC and S == 1), else
 * a projection, a 1x1 convolution of stride S without bias followed by its
 * own batch norm (projbn). Glue only: the math is conv.c's, batchnorm.c's and
 * relu.c's, plus the sum. Its batch norms normalise over the batch (or ghost
 * group) and the plane as bn does, and keep their running statistics side by
 * side in the block's share (bn1, bn2, projbn), so that ranks reduce them and
 * checkpoints store them like any bn's. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "batchnorm.h"
#include "conv.h"
#include "layer.h"
#include "model.h"
#include "relu.h"
#include "rng.h"

/* conv:'s bounds (layer_conv.c) */
enum { RES_MAX_CHANNELS = 65536, RES_MAX_STRIDE = 255 };

/* One batch norm of the block: its views, what its backward needs, and its
 * (OC) slices of the block's running and batch statistics. */
struct res_bn {
    int gamma, beta;
    float *xhat;        /* (max_batch, OC, OH, OW) */
    float *mean, *rstd; /* (max_batch, OC): a row per group, enough for any group size */
    float *run_mean, *run_var, *batch_mean, *batch_var;
};

enum { RES_BN1, RES_BN2, RES_PROJBN };

struct res_state {
    struct conv_geom g1, g2, gp; /* conv1, conv2, the projection (when proj) */
    bool proj;
    int group;                   /* ghost group size, 0 = the whole slice */
    float eps, momentum;
    bool last_train;             /* mode of the last forward, which backward follows */
    int w1, w2, wp;              /* conv weight views (wp -1 without projection) */
    struct res_bn bn[3];         /* bn1, bn2, projbn */
    float *groups;               /* the model's ghost group count, shared by every bn */
    float *col;                  /* the largest of the three convs' column buffers */
    float *r1;                   /* (max_batch, OC, OH, OW) relu(bn1): conv2's input */
    /* The gradients of one backward, all (max_batch, OC, OH, OW), kept for
     * half_norms: at the sum (after the final relu), at conv2's output, at
     * bn1's output (after the inner relu), at conv1's and at the
     * projection's output. Forward borrows g_sum for each conv's output
     * before its bn, and g_c2 for projbn's output. */
    float *g_sum, *g_c2, *g_r1, *g_c1, *g_cp;
    float *din_proj;             /* (max_batch, IC, H, W) the projection's input gradient */
    float *scratch;              /* (2 OC) bn backward's group sums */
    int max_batch;               /* the slice the pieces are sized for */
};

/* The pieces carved from the block's one buffer, in this order (absent ones
 * empty), each on a 64-byte boundary as a buffer of its own would be. */
enum {
    P_COL, P_R1, P_XHAT1, P_XHAT2, P_XHATP, P_MEAN1, P_RSTD1, P_MEAN2, P_RSTD2, P_MEANP,
    P_RSTDP, P_GSUM, P_GC2, P_GR1, P_GC1, P_GCP, P_DINP, P_SCRATCH, RES_PIECES
};

/* ---- the spec item ----------------------------------------------------------- */

/* "OC" or "OCsS". */
static int res_arg(struct layer_arg *a, const char *text, int len, char *why, size_t whylen)
{
    const char *end = text + len, *p = text;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    if (layer_parse_width(text, p, &a->width) || a->width > RES_MAX_CHANNELS) {
        snprintf(why, whylen, "res:OC needs its output channels first, from 1 to %d, then optionally sS (stride), as in res:32s2",
                 RES_MAX_CHANNELS);
        return -1;
    }
    a->stride = 1;
    if (p == end)
        return 0;
    if (*p != 's') {
        snprintf(why, whylen, "'%c' is not a field of res (its only one is sS, the stride)", *p);
        return -1;
    }
    if (layer_parse_width(p + 1, end, &a->stride) || a->stride > RES_MAX_STRIDE) {
        if (p + 1 == end)
            snprintf(why, whylen, "the field s needs a number after it, as in res:32s2");
        else
            snprintf(why, whylen, "the stride %.*s must be a whole number from 1 to %d",
                     (int)(end - p - 1), p + 1, RES_MAX_STRIDE);
        return -1;
    }
    return 0;
}

/* The stride only when it is not 1. */
static void res_format(const struct layer_arg *a, char *out, int outlen)
{
    if (a->stride == 1)
        snprintf(out, (size_t)outlen, "%d", a->width);
    else
        snprintf(out, (size_t)outlen, "%ds%d", a->width, a->stride);
}

/* conv1's output, with conv:'s own refusals for both convs' sizes. A plane
 * one pixel high or wide is refused, C x 1 x 1 included: legal math, but
 * there the 3x3 kernels read one row or column and padding, and at least
 * three weights in nine would never learn. */
static int res_shape(const struct layer_arg *a, struct shape in, struct shape *out, char *why,
                     size_t whylen)
{
    if (in.h < 2 || in.w < 2) {
        snprintf(why, whylen, "a residual block needs a plane of at least 2x2, not %dx%dx%d (put it before gap)",
                 in.c, in.h, in.w);
        return -1;
    }
    struct layer_arg c = { .width = a->width, .kernel = 3, .stride = a->stride, .pad = 1,
                           .no_bias = true };
    struct shape mid;
    if (layer_conv.out_shape(&c, in, &mid, why, whylen))
        return -1;
    c.stride = 1;
    return layer_conv.out_shape(&c, mid, out, why, whylen);
}

/* ---- memory ------------------------------------------------------------------ */

/* Floats of each piece for a slice of B samples (0 for an absent one). */
static void res_pieces(const struct layer *l, const struct res_state *st, size_t B,
                       size_t n[RES_PIECES])
{
    size_t O = B * (size_t)l->out_dim, C = (size_t)l->out.c, col = conv_col_floats(&st->g1);
    size_t c2 = conv_col_floats(&st->g2), cp = st->proj ? conv_col_floats(&st->gp) : 0;
    col = c2 > col ? c2 : col;
    n[P_COL] = cp > col ? cp : col;
    n[P_R1] = n[P_XHAT1] = n[P_XHAT2] = O;
    n[P_MEAN1] = n[P_RSTD1] = n[P_MEAN2] = n[P_RSTD2] = B * C;
    n[P_GSUM] = n[P_GC2] = n[P_GR1] = n[P_GC1] = O;
    n[P_XHATP] = n[P_GCP] = st->proj ? O : 0;
    n[P_MEANP] = n[P_RSTDP] = st->proj ? B * C : 0;
    n[P_DINP] = st->proj ? B * (size_t)l->in_dim : 0;
    n[P_SCRATCH] = 2 * C;
}

/* Floats of a piece rounded up to whole 64-byte lines. */
static size_t res_line_floats(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* Floats of the block's one buffer. */
static size_t res_buffer_floats(const struct layer *l, const struct res_state *st)
{
    size_t n[RES_PIECES], total = 0;
    res_pieces(l, st, (size_t)st->max_batch, n);
    for (int k = 0; k < RES_PIECES; k++)
        total += res_line_floats(n[k]);
    return total;
}

/* resK.conv1.weight, resK.<bn>.weight and .bias: a conv weight (OC, fan_in)
 * or a bn's gamma and beta (OC each), all in the block's group. */
static int res_view(const struct layer_decl *d, const char *part, const char *what,
                    enum tensor_role role, int rows, int cols)
{
    char name[32];
    snprintf(name, sizeof name, "res%d.%s.%s", d->nth, part, what);
    return arena_declare(d->arena, name, role, rows, cols, d->group);
}

static int res_declare_bn(struct res_bn *b, const struct layer_decl *d, const char *part,
                          int C)
{
    b->gamma = res_view(d, part, "weight", ROLE_BN_GAMMA, C, 1);
    b->beta = res_view(d, part, "bias", ROLE_BN_BETA, C, 1);
    return b->gamma < 0 || b->beta < 0 ? -1 : 0;
}

/* The views in the order of CONV.md (conv1, bn1, conv2, bn2, then proj and
 * projbn), statistics for each bn's channels, and one buffer for the rest.
 * w_view is conv1's: the first of the block's views, where its gradient
 * range starts; b_view stays -1. */
static int res_declare(struct layer *l, const struct layer_arg *a, const struct layer_decl *d)
{
    struct res_state *st = l->state;
    int IC = l->in.c, OC = a->width, S = a->stride;
    st->proj = OC != IC || S != 1;
    if (conv_geom_init(&st->g1, IC, l->in.h, l->in.w, OC, 3, S, 1) ||
        conv_geom_init(&st->g2, OC, st->g1.oh, st->g1.ow, OC, 3, 1, 1) ||
        (st->proj && conv_geom_init(&st->gp, IC, l->in.h, l->in.w, OC, 1, S, 0)))
        return -1; /* out_shape refused it already */
    st->group = d->opt->bn_group;
    st->eps = (float)d->opt->bn_eps;
    st->momentum = (float)d->opt->bn_momentum;
    st->max_batch = d->max_batch;
    st->wp = -1;
    st->w1 = res_view(d, "conv1", "weight", ROLE_WEIGHT, OC, IC * 9);
    if (st->w1 < 0 || res_declare_bn(&st->bn[RES_BN1], d, "bn1", OC))
        return -1;
    st->w2 = res_view(d, "conv2", "weight", ROLE_WEIGHT, OC, OC * 9);
    if (st->w2 < 0 || res_declare_bn(&st->bn[RES_BN2], d, "bn2", OC))
        return -1;
    if (st->proj) {
        st->wp = res_view(d, "proj", "weight", ROLE_WEIGHT, OC, IC);
        if (st->wp < 0 || res_declare_bn(&st->bn[RES_PROJBN], d, "projbn", OC))
            return -1;
    }
    l->w_view = st->w1;
    l->stat_channels = (st->proj ? 3 : 2) * OC;
    l->buf[0].bytes = res_buffer_floats(l, st) * sizeof(float);
    return 0;
}

/* bn k's (OC) slices of the block's statistics, bn1's first. */
static void res_bind_stats(struct res_state *st, const struct layer_stats *stats, int k, int C)
{
    struct res_bn *b = &st->bn[k];
    b->run_mean = stats->run_mean + k * C;
    b->run_var = stats->run_var + k * C;
    b->batch_mean = stats->batch_mean + k * C;
    b->batch_var = stats->batch_var + k * C;
}

/* Carves the buffer as res_pieces lays it out. */
static void res_bind(struct layer *l, const struct layer_stats *stats)
{
    struct res_state *st = l->state;
    size_t n[RES_PIECES];
    float *p[RES_PIECES], *at = l->buf[0].p;
    res_pieces(l, st, (size_t)st->max_batch, n);
    for (int k = 0; k < RES_PIECES; k++) {
        p[k] = n[k] ? at : NULL;
        at += res_line_floats(n[k]);
    }
    st->col = p[P_COL];
    st->r1 = p[P_R1];
    static const int xhat[3] = { P_XHAT1, P_XHAT2, P_XHATP }, mean[3] = { P_MEAN1, P_MEAN2, P_MEANP },
                     rstd[3] = { P_RSTD1, P_RSTD2, P_RSTDP };
    for (int k = 0; k < 3; k++) {
        st->bn[k].xhat = p[xhat[k]];
        st->bn[k].mean = p[mean[k]];
        st->bn[k].rstd = p[rstd[k]];
    }
    st->g_sum = p[P_GSUM];
    st->g_c2 = p[P_GC2];
    st->g_r1 = p[P_GR1];
    st->g_c1 = p[P_GC1];
    st->g_cp = p[P_GCP];
    st->din_proj = p[P_DINP];
    st->scratch = p[P_SCRATCH];
    for (int k = 0; k < (st->proj ? 3 : 2); k++)
        res_bind_stats(st, stats, k, l->out.c);
    st->groups = stats->groups;
}

/* He-normal conv weights (std sqrt(2 / fan_in)) whatever follows the block:
 * inside it every conv feeds a bn and then a relu. Drawn as conv: draws,
 * from the view's own stream. */
static void res_init_conv(const struct arena *a, int view, uint64_t seed)
{
    const struct tensor_view *v = &a->views[view];
    double std = sqrt(2.0 / v->cols);
    float *w = arena_w(a, view);
    for (size_t k = 0; k < v->n; k++)
        w[k] = (float)(std * rng_normal(seed, RNG_INIT, (uint64_t)view, k, 0));
}

/* Every gamma 1, bn2's too (PyTorch's default; some zero it so that a block
 * starts as its shortcut, which we do not), betas 0; running means 0 and
 * variances 1. */
static void res_init(struct layer *l, uint64_t seed, double gain)
{
    (void)gain;
    struct res_state *st = l->state;
    res_init_conv(l->arena, st->w1, seed);
    res_init_conv(l->arena, st->w2, seed);
    if (st->proj)
        res_init_conv(l->arena, st->wp, seed);
    for (int k = 0; k < (st->proj ? 3 : 2); k++) {
        float *gamma = arena_w(l->arena, st->bn[k].gamma);
        for (int c = 0; c < l->out.c; c++) {
            gamma[c] = 1.0f;
            st->bn[k].run_mean[c] = 0.0f;
            st->bn[k].run_var[c] = 1.0f;
        }
    }
}

/* ---- passes ------------------------------------------------------------------ */

/* out (B, OC, OH, OW) = bn k of in, as bn: does over a plane; a training pass
 * leaves its statistics as sums over the ghost groups. */
static void res_bn_forward(struct layer *l, struct res_bn *b, float *out, const float *in, int B,
                           const struct pass_ctx *ctx)
{
    bool train = ctx->train;
    struct res_state *st = l->state;
    const float *gamma = arena_w(l->arena, b->gamma), *beta = arena_w(l->arena, b->beta);
    int C = l->out.c, HW = l->out.h * l->out.w;
    if (!train) {
        bn_spatial_forward_eval(out, b->xhat, in, gamma, beta, b->run_mean, b->run_var, B, C, HW,
                                st->eps);
        return;
    }
    int G = st->group > 0 ? st->group : B;
    int parts = ctx->parts > 1 ? ctx->parts : 1;
    bn_spatial_forward_train(out, b->xhat, b->mean, b->rstd, b->batch_mean, b->batch_var, in,
                             gamma, beta, B, C, HW, G, st->eps, ctx->part, parts);
    /* the sums, once every part of the slice has added its share */
    if (ctx->part != parts - 1)
        return;
    float groups = (float)(bn_group_count(B, G) * parts);
    for (int c = 0; c < C; c++) {
        b->batch_mean[c] *= groups;
        b->batch_var[c] *= groups;
    }
    *st->groups = groups;
}

/* Each conv's output goes to g_sum (free until backward) on its way to its
 * bn; projbn's output to g_c2, likewise. */
static void res_fwd(struct layer *l, const struct pass_ctx *ctx, float *out, const float *in,
                    int B)
{
    struct res_state *st = l->state;
    const struct arena *a = l->arena;
    size_t n = (size_t)B * (size_t)l->out_dim;
    st->last_train = ctx->train;
    conv_forward(st->g_sum, st->col, in, arena_w(a, st->w1), NULL, B, &st->g1);
    res_bn_forward(l, &st->bn[RES_BN1], st->r1, st->g_sum, B, ctx);
    relu_forward(st->r1, st->r1, n);
    conv_forward(st->g_sum, st->col, st->r1, arena_w(a, st->w2), NULL, B, &st->g2);
    res_bn_forward(l, &st->bn[RES_BN2], out, st->g_sum, B, ctx);
    const float *shortcut = in;
    if (st->proj) {
        conv_forward(st->g_sum, st->col, in, arena_w(a, st->wp), NULL, B, &st->gp);
        res_bn_forward(l, &st->bn[RES_PROJBN], st->g_c2, st->g_sum, B, ctx);
        shortcut = st->g_c2;
    }
    for (size_t i = 0; i < n; i++)
        out[i] += shortcut[i];
    relu_forward(out, out, n);
}

/* din (B, OC, OH, OW) from dout through bn k, in the mode of the last
 * forward; its gamma and beta gradients overwritten. */
static void res_bn_backward(struct layer *l, const struct arena *a, struct res_bn *b, float *din,
                            const float *dout, int B)
{
    struct res_state *st = l->state;
    float *dgamma = arena_g(a, b->gamma), *dbeta = arena_g(a, b->beta);
    const float *gamma = arena_w(a, b->gamma);
    int C = l->out.c, HW = l->out.h * l->out.w;
    if (!st->last_train) {
        bn_spatial_backward_eval(din, dgamma, dbeta, dout, b->xhat, gamma, b->run_var, B, C, HW,
                                 st->eps);
        return;
    }
    int G = st->group > 0 ? st->group : B;
    bn_spatial_backward(din, dgamma, dbeta, st->scratch, dout, b->xhat, b->rstd, gamma, B, C, HW,
                        G, l->accumulate);
}

/* The forward in reverse. din = conv1's input gradient plus the shortcut's,
 * added in that order. */
static void res_bwd(struct layer *l, const struct arena *a, float *din, const float *dout,
                    const float *in, const float *out, int B)
{
    struct res_state *st = l->state;
    size_t n = (size_t)B * (size_t)l->out_dim, nin = (size_t)B * (size_t)l->in_dim;
    relu_backward(st->g_sum, dout, out, n);
    res_bn_backward(l, a, &st->bn[RES_BN2], st->g_c2, st->g_sum, B);
    conv_backward(st->g_r1, arena_g(a, st->w2), NULL, st->col, st->g_c2, st->r1,
                  arena_w(a, st->w2), B, &st->g2, l->accumulate);
    relu_backward(st->g_r1, st->g_r1, st->r1, n);
    res_bn_backward(l, a, &st->bn[RES_BN1], st->g_c1, st->g_r1, B);
    conv_backward(din, arena_g(a, st->w1), NULL, st->col, st->g_c1, in, arena_w(a, st->w1), B,
                  &st->g1, l->accumulate);
    const float *shortcut = st->g_sum;
    if (st->proj) {
        res_bn_backward(l, a, &st->bn[RES_PROJBN], st->g_cp, st->g_sum, B);
        conv_backward(din ? st->din_proj : NULL, arena_g(a, st->wp), NULL, st->col, st->g_cp,
                      in, arena_w(a, st->wp), B, &st->gp, l->accumulate);
        shortcut = st->din_proj;
    }
    if (din)
        for (size_t i = 0; i < nin; i++)
            din[i] += shortcut[i];
}

/* As bn:, channel by channel over bn1's, bn2's and projbn's statistics. */
static void res_update(struct layer *l, float groups)
{
    struct res_state *st = l->state;
    const float *bm = st->bn[RES_BN1].batch_mean, *bv = st->bn[RES_BN1].batch_var;
    float *rm = st->bn[RES_BN1].run_mean, *rv = st->bn[RES_BN1].run_var;
    for (int c = 0; c < l->stat_channels; c++) {
        float mean = bm[c] / groups, var = bv[c] / groups;
        rm[c] = (1.0f - st->momentum) * rm[c] + st->momentum * mean;
        rv[c] = (1.0f - st->momentum) * rv[c] + st->momentum * var;
    }
}

/* ---- the noise scale's halves ------------------------------------------------ */

/* A conv weight's share from the first rows, its output gradient dy kept by
 * backward; the column buffer is free again once backward is done. */
static void res_half_conv(const struct layer *l, int view, const struct conv_geom *g, float *h,
                          const float *dy, const float *x, int rows, double sq[2])
{
    const struct res_state *st = l->state;
    const struct arena *a = l->arena;
    conv_backward(NULL, h, NULL, st->col, dy, x, arena_w(a, view), rows, g, 0);
    layer_add_half_norms(sq, arena_g(a, view), h, a->views[view].n);
}

/* A bn's, as bn: gives it: only a training pass's. */
static void res_half_bn(const struct layer *l, const struct res_bn *b, float *h, const float *dy,
                        int rows, double sq[2])
{
    const struct res_state *st = l->state;
    if (!st->last_train)
        return;
    int C = l->out.c;
    bn_param_grad_rows(h, h + C, dy, b->xhat, rows, C, l->out.h * l->out.w);
    layer_add_half_norms(sq, arena_g(l->arena, b->gamma), h, (size_t)C);
    layer_add_half_norms(sq, arena_g(l->arena, b->beta), h + C, (size_t)C);
}

/* Tensor by tensor in view order, each from the gradient at its output that
 * the last backward kept. */
static void res_half_norms(const struct layer *l, float *h, const float *dout, const float *in,
                           int rows, double sq[2])
{
    (void)dout;
    const struct res_state *st = l->state;
    res_half_conv(l, st->w1, &st->g1, h, st->g_c1, in, rows, sq);
    res_half_bn(l, &st->bn[RES_BN1], h, st->g_r1, rows, sq);
    res_half_conv(l, st->w2, &st->g2, h, st->g_c2, st->r1, rows, sq);
    res_half_bn(l, &st->bn[RES_BN2], h, st->g_sum, rows, sq);
    if (!st->proj)
        return;
    res_half_conv(l, st->wp, &st->gp, h, st->g_cp, in, rows, sq);
    res_half_bn(l, &st->bn[RES_PROJBN], h, st->g_sum, rows, sq);
}

/* The convolutions' (batch norms, relus and the sum are not counted, as bn:
 * and relu are not). */
static double res_flops(const struct layer *l)
{
    const struct res_state *st = l->state;
    return conv_flops(&st->g1) + conv_flops(&st->g2) + (st->proj ? conv_flops(&st->gp) : 0.0);
}

const struct layer_kind layer_res = {
    .name = "res",
    .usage = "res:OC[sS]",
    .parse_arg = res_arg,
    .format_arg = res_format,
    .out_shape = res_shape,
    .weighted = true,
    .state_size = sizeof(struct res_state),
    .declare = res_declare,
    .bind = res_bind,
    .init_params = res_init,
    .forward = res_fwd,
    .backward = res_bwd,
    .update_running = res_update,
    .half_norms = res_half_norms,
    .flops = res_flops,
};
