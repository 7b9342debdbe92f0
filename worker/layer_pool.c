/* The pooling layer kinds, maxpool:K[sS], avgpool:K[sS] and gap: the glue
 * between the layer table and the kernels of pool.c. They take any C x H x W
 * input that their window fits and keep the channels; none has parameters. */
#include <stdio.h>
#include <string.h>

#include "layer.h"
#include "pool.h"

struct pool_state {
    int k, stride;
    int32_t *arg; /* maxpool: (max_batch, out_dim) where each max was */
};

/* "K" or "KsS" (the stride S defaults to K). */
static int pool_arg(struct layer_arg *a, const char *text, int len, char *why, size_t whylen)
{
    const char *end = text + len, *s = memchr(text, 's', (size_t)len);
    if (layer_parse_width(text, s ? s : end, &a->kernel) ||
        (s && layer_parse_width(s + 1, end, &a->stride))) {
        snprintf(why, whylen,
                 "the window must be K or KsS (window K, stride S), whole numbers from 1 to 16777216");
        return -1;
    }
    if (!s)
        a->stride = a->kernel;
    return 0;
}

/* The stride only when it is not the window's. */
static void pool_format(const struct layer_arg *a, char *out, int outlen)
{
    if (a->stride == a->kernel)
        snprintf(out, (size_t)outlen, "%d", a->kernel);
    else
        snprintf(out, (size_t)outlen, "%ds%d", a->kernel, a->stride);
}

/* No padding: a window larger than the plane has nowhere to go. */
static int pool_shape(const struct layer_arg *a, struct shape in, struct shape *out, char *why,
                      size_t whylen)
{
    if (a->kernel > in.h || a->kernel > in.w) {
        snprintf(why, whylen, "a %dx%d window does not fit a %dx%d input (%dx%dx%d)", a->kernel,
                 a->kernel, in.h, in.w, in.c, in.h, in.w);
        return -1;
    }
    *out = (struct shape){ in.c, pool_out_size(in.h, a->kernel, a->stride),
                           pool_out_size(in.w, a->kernel, a->stride) };
    return 0;
}

static int pool_declare(struct layer *l, const struct layer_arg *a, const struct layer_decl *d)
{
    struct pool_state *st = l->state;
    st->k = a->kernel;
    st->stride = a->stride;
    return 0;
}

/* One comparison (max) or addition (average) per window element. */
static double pool_flops(const struct layer *l)
{
    const struct pool_state *st = l->state;
    return (double)l->out_dim * st->k * st->k;
}

/* ---- maxpool ----------------------------------------------------------------- */

static int maxpool_declare(struct layer *l, const struct layer_arg *a, const struct layer_decl *d)
{
    l->buf[0].bytes = (size_t)d->max_batch * (size_t)l->out_dim * sizeof(int32_t);
    return pool_declare(l, a, d);
}

static void maxpool_bind(struct layer *l, const struct layer_stats *stats)
{
    (void)stats;
    struct pool_state *st = l->state;
    st->arg = l->buf[0].p;
}

static void maxpool_fwd(struct layer *l, const struct pass_ctx *ctx, float *out, const float *in,
                        int B)
{
    (void)ctx;
    struct pool_state *st = l->state;
    maxpool_forward(out, st->arg, in, B, l->in.c, l->in.h, l->in.w, st->k, st->stride);
}

/* Follows the arg-max of the last forward, whatever its mode. */
static void maxpool_bwd(struct layer *l, const struct arena *a, float *din, const float *dout,
                        const float *in, const float *out, int B)
{
    (void)a;
    (void)in;
    (void)out;
    struct pool_state *st = l->state;
    if (din)
        maxpool_backward(din, dout, st->arg, B, l->in.c, l->in.h, l->in.w, l->out.h, l->out.w);
}

const struct layer_kind layer_maxpool = {
    .name = "maxpool",
    .usage = "maxpool:K[sS]",
    .parse_arg = pool_arg,
    .format_arg = pool_format,
    .out_shape = pool_shape,
    .state_size = sizeof(struct pool_state),
    .declare = maxpool_declare,
    .bind = maxpool_bind,
    .forward = maxpool_fwd,
    .backward = maxpool_bwd,
    .flops = pool_flops,
};

/* ---- avgpool ----------------------------------------------------------------- */

static void avgpool_fwd(struct layer *l, const struct pass_ctx *ctx, float *out, const float *in,
                        int B)
{
    (void)ctx;
    const struct pool_state *st = l->state;
    avgpool_forward(out, in, B, l->in.c, l->in.h, l->in.w, st->k, st->stride);
}

static void avgpool_bwd(struct layer *l, const struct arena *a, float *din, const float *dout,
                        const float *in, const float *out, int B)
{
    (void)a;
    (void)in;
    (void)out;
    const struct pool_state *st = l->state;
    if (din)
        avgpool_backward(din, dout, B, l->in.c, l->in.h, l->in.w, st->k, st->stride);
}

const struct layer_kind layer_avgpool = {
    .name = "avgpool",
    .usage = "avgpool:K[sS]",
    .parse_arg = pool_arg,
    .format_arg = pool_format,
    .out_shape = pool_shape,
    .state_size = sizeof(struct pool_state),
    .declare = pool_declare,
    .forward = avgpool_fwd,
    .backward = avgpool_bwd,
    .flops = pool_flops,
};

/* ---- gap: global average pooling, C x H x W -> C x 1 x 1 ----------------------- */

static int gap_shape(const struct layer_arg *a, struct shape in, struct shape *out, char *why,
                     size_t whylen)
{
    (void)a;
    *out = (struct shape){ in.c, 1, 1 };
    return 0;
}

static void gap_fwd(struct layer *l, const struct pass_ctx *ctx, float *out, const float *in,
                    int B)
{
    (void)ctx;
    gap_forward(out, in, B, l->in.c, l->in.h * l->in.w);
}

static void gap_bwd(struct layer *l, const struct arena *a, float *din, const float *dout,
                    const float *in, const float *out, int B)
{
    (void)a;
    (void)in;
    (void)out;
    if (din)
        gap_backward(din, dout, B, l->in.c, l->in.h * l->in.w);
}

/* One addition per input element. */
static double gap_flops(const struct layer *l)
{
    return (double)l->in_dim;
}

const struct layer_kind layer_gap = {
    .name = "gap",
    .usage = "gap",
    .out_shape = gap_shape,
    .forward = gap_fwd,
    .backward = gap_bwd,
    .flops = gap_flops,
};
