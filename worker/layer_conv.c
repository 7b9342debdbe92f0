/* The 2-D convolution layer kind, conv:OC followed by fields kK (kernel,
 * required), sS (stride, 1), pP (zero padding, 0) and b0 (no bias), as in
 * conv:32k5p2: the glue between the layer table and the kernels of conv.c. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "conv.h"
#include "layer.h"
#include "rng.h"

/* Bounds that no sensible network comes near; beyond them sizes would
 * overflow the int shapes of views and layers. */
enum { CONV_MAX_CHANNELS = 65536, CONV_MAX_FIELD = 255, CONV_MAX_VALUES = 1 << 24 };

struct conv_state {
    struct conv_geom g;
    float *col; /* (IC·k·k, OH·OW) one sample's columns; NULL for 1x1 stride 1 pad 0 */
};

enum { CONV_COL };

/* A whole number in [lo, hi] from [p, e): digits only. */
static int field_value(const char *p, const char *e, int lo, int hi, int *out)
{
    long v = 0;
    if (p == e)
        return -1;
    for (; p < e; p++) {
        if (*p < '0' || *p > '9' || v > hi)
            return -1;
        v = 10 * v + (*p - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static const char *digits_end(const char *p, const char *e)
{
    while (p < e && *p >= '0' && *p <= '9')
        p++;
    return p;
}

/* One field f with its value [v, e) into a; -1 with why filled. */
static int conv_field(struct layer_arg *a, char f, const char *v, const char *e, char *why,
                      size_t whylen)
{
    int n, lo = f == 'p' || f == 'b' ? 0 : 1, hi = f == 'b' ? 0 : CONV_MAX_FIELD;
    if (!f || !strchr("ksbp", f)) {
        snprintf(why, whylen, "'%c' is not a field of conv (kK kernel, sS stride, pP padding, b0 no bias)", f);
        return -1;
    }
    if (field_value(v, e, lo, hi, &n)) {
        if (v == e && f != 'b')
            snprintf(why, whylen, "the field %c needs a number after it, as in conv:32k5p2", f);
        else if (f == 'b')
            snprintf(why, whylen, "the bias field can only be b0 (no bias)");
        else
            snprintf(why, whylen, "the %s %.*s must be a whole number from %d to %d",
                     f == 'k' ? "kernel size" : f == 's' ? "stride" : "padding", (int)(e - v), v,
                     lo, hi);
        return -1;
    }
    if (f == 'k')
        a->kernel = n;
    else if (f == 's')
        a->stride = n;
    else if (f == 'p')
        a->pad = n;
    else
        a->no_bias = true;
    return 0;
}

/* "OC" then fields in any order, each at most once: "32k5p2", "64k3s2p1b0". */
static int conv_arg(struct layer_arg *a, const char *text, int len, char *why, size_t whylen)
{
    const char *end = text + len, *p = digits_end(text, end);
    if (field_value(text, p, 1, CONV_MAX_CHANNELS, &a->width)) {
        snprintf(why, whylen, "conv:OC needs its output channels first, from 1 to %d, then fields, as in conv:32k5p2",
                 CONV_MAX_CHANNELS);
        return -1;
    }
    a->stride = 1;
    char seen[8] = "";
    while (p < end) {
        char f = *p++;
        const char *v = p;
        p = digits_end(p, end);
        if (f && strchr(seen, f)) {
            snprintf(why, whylen, "the field %c is given twice", f);
            return -1;
        }
        if (conv_field(a, f, v, p, why, whylen))
            return -1;
        seen[strlen(seen)] = f;
    }
    if (!a->kernel) {
        snprintf(why, whylen, "the kernel size kK is required, as in conv:32k5p2");
        return -1;
    }
    if (a->pad >= a->kernel) {
        snprintf(why, whylen, "the padding %d must be smaller than the kernel size %d",
                 a->pad, a->kernel);
        return -1;
    }
    return 0;
}

/* Fields in the order k, s, p, b0, defaults left out. */
static void conv_format(const struct layer_arg *a, char *out, int outlen)
{
    int used = snprintf(out, (size_t)outlen, "%dk%d", a->width, a->kernel);
    if (a->stride != 1 && used < outlen)
        used += snprintf(out + used, (size_t)(outlen - used), "s%d", a->stride);
    if (a->pad && used < outlen)
        used += snprintf(out + used, (size_t)(outlen - used), "p%d", a->pad);
    if (a->no_bias && used < outlen)
        snprintf(out + used, (size_t)(outlen - used), "b0");
}

static int conv_shape(const struct layer_arg *a, struct shape in, struct shape *out, char *why,
                      size_t whylen)
{
    struct conv_geom g;
    if (conv_geom_init(&g, in.c, in.h, in.w, a->width, a->kernel, a->stride, a->pad)) {
        snprintf(why, whylen, "a %dx%d kernel does not fit a %dx%d input with padding %d",
                 a->kernel, a->kernel, in.h, in.w, a->pad);
        return -1;
    }
    long long fan_in = (long long)in.c * a->kernel * a->kernel;
    if (fan_in > CONV_MAX_VALUES || fan_in * a->width > INT_MAX) {
        snprintf(why, whylen, "a weight of %d x %lld is too large", a->width, fan_in);
        return -1;
    }
    if ((long long)g.oc * g.oh * g.ow > CONV_MAX_VALUES) {
        snprintf(why, whylen, "an output of %dx%dx%d is more than %d values per sample",
                 g.oc, g.oh, g.ow, CONV_MAX_VALUES);
        return -1;
    }
    *out = (struct shape){ g.oc, g.oh, g.ow };
    return 0;
}

/* convK.weight (OC, IC·k·k) and, unless b0, convK.bias (OC); the column
 * buffer for one sample. */
static int conv_declare(struct layer *l, const struct layer_arg *a, const struct layer_decl *d)
{
    struct conv_state *st = l->state;
    struct conv_geom *g = &st->g;
    if (conv_geom_init(g, l->in.c, l->in.h, l->in.w, a->width, a->kernel, a->stride, a->pad))
        return -1; /* out_shape refused it already */
    char name[32];
    snprintf(name, sizeof name, "conv%d.weight", d->nth);
    l->w_view = arena_declare(d->arena, name, ROLE_WEIGHT, g->oc, g->ic * g->k * g->k, d->group);
    if (!a->no_bias) {
        snprintf(name, sizeof name, "conv%d.bias", d->nth);
        l->b_view = arena_declare(d->arena, name, ROLE_BIAS, g->oc, 1, d->group);
        if (l->b_view < 0)
            return -1;
    }
    l->buf[CONV_COL].bytes = conv_col_floats(g) * sizeof(float);
    return l->w_view < 0 ? -1 : 0;
}

static void conv_bind(struct layer *l, const struct layer_stats *stats)
{
    (void)stats;
    struct conv_state *st = l->state;
    st->col = l->buf[CONV_COL].p;
}

/* As fc: normal weights of std sqrt(gain / fan_in), fan_in = IC·k·k, drawn
 * from the view's own stream; the bias stays 0. */
static void conv_init(struct layer *l, uint64_t seed, double gain)
{
    const struct tensor_view *v = &l->arena->views[l->w_view];
    double std = sqrt(gain / v->cols);
    float *w = arena_w(l->arena, l->w_view);
    for (size_t k = 0; k < v->n; k++)
        w[k] = (float)(std * rng_normal(seed, RNG_INIT, (uint64_t)l->w_view, k, 0));
}

static const float *conv_bias(const struct arena *a, const struct layer *l, bool grad)
{
    if (l->b_view < 0)
        return NULL;
    return grad ? arena_g(a, l->b_view) : arena_w(a, l->b_view);
}

static void conv_fwd(struct layer *l, const struct pass_ctx *ctx, float *out, const float *in,
                     int B)
{
    (void)ctx;
    struct conv_state *st = l->state;
    conv_forward(out, st->col, in, arena_w(l->arena, l->w_view), conv_bias(l->arena, l, false),
                 B, &st->g);
}

static void conv_bwd(struct layer *l, const struct arena *a, float *din, const float *dout,
                     const float *in, const float *out, int B)
{
    (void)out;
    struct conv_state *st = l->state;
    conv_backward(din, arena_g(a, l->w_view), l->b_view < 0 ? NULL : arena_g(a, l->b_view),
                  st->col, dout, in, arena_w(a, l->w_view), B, &st->g, l->accumulate);
}

/* h = the weight gradient of the first rows samples alone, then their bias
 * sums; the column buffer is free again once backward is done. */
static void conv_half_norms(const struct layer *l, float *h, const float *dout, const float *in,
                            int rows, double sq[2])
{
    const struct conv_state *st = l->state;
    const struct arena *a = l->arena;
    conv_backward(NULL, h, NULL, st->col, dout, in, arena_w(a, l->w_view), rows, &st->g, 0);
    layer_add_half_norms(sq, arena_g(a, l->w_view), h, a->views[l->w_view].n);
    if (l->b_view < 0)
        return;
    conv_bias_grad(h, dout, rows, st->g.oc, st->g.oh * st->g.ow, 0);
    layer_add_half_norms(sq, conv_bias(a, l, true), h, (size_t)st->g.oc);
}

static double conv_layer_flops(const struct layer *l)
{
    const struct conv_state *st = l->state;
    return conv_flops(&st->g);
}

const struct layer_kind layer_conv = {
    .name = "conv",
    .usage = "conv:OCkK[sS][pP][b0]",
    .parse_arg = conv_arg,
    .format_arg = conv_format,
    .out_shape = conv_shape,
    .weighted = true,
    .state_size = sizeof(struct conv_state),
    .declare = conv_declare,
    .bind = conv_bind,
    .init_params = conv_init,
    .forward = conv_fwd,
    .backward = conv_bwd,
    .half_norms = conv_half_norms,
    .flops = conv_layer_flops,
};
