/* The batch-norm layer kind, bn: the glue between the layer table and the
 * kernels of batchnorm.c, with ghost groups and running statistics. It
 * normalises each channel of a C x H x W input over the batch (or the ghost
 * group) and the H x W plane; a C x 1 x 1 input goes through the
 * per-feature kernels, as it always has. */
#include <stdio.h>
#include <string.h>

#include "batchnorm.h"
#include "layer.h"
#include "model.h"

struct bn_state {
    int group;             /* ghost group size, 0 = the whole slice */
    float eps, momentum;
    bool last_train;       /* mode of the last forward, which backward follows */
    float *xhat;           /* (max_batch, C, H, W) the normalised input */
    float *mean, *rstd;    /* (max_batch, C): a row per group, enough for any group size */
    float *scratch;        /* (2 C) backward's group sums */
    float *run_mean, *run_var, *batch_mean, *batch_var, *groups; /* see struct layer_stats */
};

enum { BN_XHAT, BN_MEAN, BN_RSTD, BN_SCRATCH };

static int bn_shape(const struct layer_arg *a, struct shape in, struct shape *out, char *why,
                    size_t whylen)
{
    (void)a;
    *out = in;
    return 0;
}

/* Values each channel's statistics take per sample. */
static int bn_plane(const struct layer *l)
{
    return l->out.h * l->out.w;
}

/* bnK.weight (gamma) and bnK.bias (beta), C each, in the group of the
 * weighted layer before. */
static int bn_declare(struct layer *l, const struct layer_arg *a, const struct layer_decl *d)
{
    (void)a;
    struct bn_state *st = l->state;
    size_t B = (size_t)d->max_batch, C = (size_t)l->out.c;
    char name[32];
    st->group = d->opt->bn_group;
    st->eps = d->opt->bn_eps;
    st->momentum = d->opt->bn_momentum;
    snprintf(name, sizeof name, "bn%d.weight", d->nth);
    l->w_view = arena_declare(d->arena, name, ROLE_BN_GAMMA, l->out.c, 1, d->group);
    snprintf(name, sizeof name, "bn%d.bias", d->nth);
    l->b_view = arena_declare(d->arena, name, ROLE_BN_BETA, l->out.c, 1, d->group);
    l->stat_channels = l->out.c;
    l->buf[BN_XHAT].bytes = B * (size_t)l->out_dim * sizeof(float);
    l->buf[BN_MEAN].bytes = B * C * sizeof(float);
    l->buf[BN_RSTD].bytes = B * C * sizeof(float);
    l->buf[BN_SCRATCH].bytes = 2 * C * sizeof(float);
    return l->w_view < 0 || l->b_view < 0 ? -1 : 0;
}

static void bn_bind(struct layer *l, const struct layer_stats *stats)
{
    struct bn_state *st = l->state;
    st->xhat = l->buf[BN_XHAT].p;
    st->mean = l->buf[BN_MEAN].p;
    st->rstd = l->buf[BN_RSTD].p;
    st->scratch = l->buf[BN_SCRATCH].p;
    st->run_mean = stats->run_mean;
    st->run_var = stats->run_var;
    st->batch_mean = stats->batch_mean;
    st->batch_var = stats->batch_var;
    st->groups = stats->groups;
}

/* gamma 1 (beta stays 0), running mean 0 and variance 1. */
static void bn_init(struct layer *l, uint64_t seed, double gain)
{
    (void)seed;
    (void)gain;
    struct bn_state *st = l->state;
    float *gamma = arena_w(l->arena, l->w_view);
    for (int c = 0; c < l->out.c; c++) {
        gamma[c] = 1.0f;
        st->run_mean[c] = 0.0f;
        st->run_var[c] = 1.0f;
    }
}

static void bn_fwd(struct layer *l, const struct pass_ctx *ctx, float *out, const float *in,
                   int B)
{
    struct bn_state *st = l->state;
    const float *gamma = arena_w(l->arena, l->w_view), *beta = arena_w(l->arena, l->b_view);
    int C = l->out.c, HW = bn_plane(l);
    st->last_train = ctx->train;
    if (!ctx->train) {
        if (HW == 1)
            bn_forward_eval(out, st->xhat, in, gamma, beta, st->run_mean, st->run_var, B, C,
                            st->eps);
        else
            bn_spatial_forward_eval(out, st->xhat, in, gamma, beta, st->run_mean, st->run_var, B,
                                    C, HW, st->eps);
        return;
    }
    int G = st->group > 0 ? st->group : B;
    int parts = ctx->parts > 1 ? ctx->parts : 1;
    if (HW == 1)
        bn_forward_train(out, st->xhat, st->mean, st->rstd, st->batch_mean, st->batch_var, in,
                         gamma, beta, B, C, G, st->eps, ctx->part, parts);
    else
        bn_spatial_forward_train(out, st->xhat, st->mean, st->rstd, st->batch_mean,
                                 st->batch_var, in, gamma, beta, B, C, HW, G, st->eps, ctx->part,
                                 parts);
    /* sums over groups, so ranks can add their blocks before averaging, once
     * every part of the slice (gradient accumulation) has added its share */
    if (ctx->part != parts - 1)
        return;
    float groups = (float)(bn_group_count(B, G) * parts);
    for (int c = 0; c < C; c++) {
        st->batch_mean[c] *= groups;
        st->batch_var[c] *= groups;
    }
    *st->groups = groups;
}

static void bn_bwd(struct layer *l, const struct arena *a, float *din, const float *dout,
                   const float *in, const float *out, int B)
{
    (void)in;
    (void)out;
    struct bn_state *st = l->state;
    float *dgamma = arena_g(a, l->w_view), *dbeta = arena_g(a, l->b_view);
    const float *gamma = arena_w(a, l->w_view);
    int C = l->out.c, HW = bn_plane(l);
    if (!st->last_train) {
        if (HW == 1)
            bn_backward_eval(din, dgamma, dbeta, dout, st->xhat, gamma, st->run_var, B, C,
                             st->eps);
        else
            bn_spatial_backward_eval(din, dgamma, dbeta, dout, st->xhat, gamma, st->run_var, B,
                                     C, HW, st->eps);
        return;
    }
    int G = st->group > 0 ? st->group : B;
    if (HW == 1)
        bn_backward(din, dgamma, dbeta, st->scratch, dout, st->xhat, st->rstd, gamma, B, C, G,
                    l->accumulate);
    else
        bn_spatial_backward(din, dgamma, dbeta, st->scratch, dout, st->xhat, st->rstd, gamma, B,
                            C, HW, G, l->accumulate);
}

static void bn_update(struct layer *l, float groups)
{
    struct bn_state *st = l->state;
    float *bm = st->batch_mean, *bv = st->batch_var;
    for (int c = 0; c < l->out.c; c++) {
        float mean = bm[c] / groups, var = bv[c] / groups;
        st->run_mean[c] = (1.0f - st->momentum) * st->run_mean[c] + st->momentum * mean;
        st->run_var[c] = (1.0f - st->momentum) * st->run_var[c] + st->momentum * var;
    }
}

/* dgamma = sum of dout xhat, dbeta = sum of dout over the first rows; only a
 * training pass's (an evaluation pass's gradient is not split). */
static void bn_half_norms(const struct layer *l, float *h, const float *dout, const float *in,
                          int rows, double sq[2])
{
    (void)in;
    const struct bn_state *st = l->state;
    if (!st->last_train)
        return;
    const struct arena *a = l->arena;
    int C = l->out.c;
    float *hb = h + C;
    bn_param_grad_rows(h, hb, dout, st->xhat, rows, C, bn_plane(l));
    layer_add_half_norms(sq, arena_g(a, l->w_view), h, (size_t)C);
    layer_add_half_norms(sq, arena_g(a, l->b_view), hb, (size_t)C);
}

const struct layer_kind layer_bn = {
    .name = "bn",
    .usage = "bn",
    .out_shape = bn_shape,
    .state_size = sizeof(struct bn_state),
    .declare = bn_declare,
    .bind = bn_bind,
    .init_params = bn_init,
    .forward = bn_fwd,
    .backward = bn_bwd,
    .update_running = bn_update,
    .half_norms = bn_half_norms,
};
