/* The dropout layer kind, dropout:P: the glue between the layer table and
 * dropout.c. Elementwise, so it takes any shape and keeps it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dropout.h"
#include "layer.h"

struct dropout_state {
    float p;
    float p_last;    /* the rate the last forward used (0 in evaluation) */
    uint8_t *mask;   /* (max_batch, C·H·W): one per element, keyed by its index in the sample */
};

/* P in [0, 1). */
static int dropout_arg(struct layer_arg *a, const char *text, int len, char *why, size_t whylen)
{
    char buf[64];
    if (len == 0 || (size_t)len >= sizeof buf)
        goto bad;
    memcpy(buf, text, (size_t)len);
    buf[len] = 0;
    errno = 0;
    char *e;
    double v = strtod(buf, &e);
    if (errno || *e || !(v >= 0 && v < 1))
        goto bad;
    a->p = (float)v;
    return 0;
bad:
    snprintf(why, whylen, "the dropout rate must be a number in [0, 1)");
    return -1;
}

static void dropout_format(const struct layer_arg *a, char *out, int outlen)
{
    snprintf(out, (size_t)outlen, "%g", a->p);
}

static int dropout_shape(const struct layer_arg *a, struct shape in, struct shape *out,
                         char *why, size_t whylen)
{
    (void)a;
    *out = in;
    return 0;
}

static int dropout_declare(struct layer *l, const struct layer_arg *a, const struct layer_decl *d)
{
    struct dropout_state *st = l->state;
    st->p = a->p;
    l->buf[0].bytes = (size_t)d->max_batch * (size_t)l->out_dim;
    return 0;
}

static void dropout_bind(struct layer *l, const struct layer_stats *stats)
{
    (void)stats;
    struct dropout_state *st = l->state;
    st->mask = l->buf[0].p;
}

/* The mask is keyed by the layer's position, the step and each sample's
 * global position, so it does not depend on how ranks split the batch. */
static void dropout_fwd(struct layer *l, const struct pass_ctx *ctx, float *out, const float *in,
                        int B)
{
    struct dropout_state *st = l->state;
    float p = ctx->train ? st->p : 0.0f;
    st->p_last = p;
    struct dropout_key key = { .seed = ctx->seed, .layer = (uint64_t)l->index,
                               .step = ctx->step, .first_sample = ctx->first_sample };
    dropout_forward(out, st->mask, in, B, l->out_dim, p, &key);
}

static void dropout_bwd(struct layer *l, const struct arena *a, float *din, const float *dout,
                        const float *in, const float *out, int B)
{
    (void)a;
    (void)in;
    (void)out;
    struct dropout_state *st = l->state;
    dropout_backward(din, dout, st->mask, B, l->out_dim, st->p_last);
}

const struct layer_kind layer_dropout = {
    .name = "dropout",
    .usage = "dropout:P",
    .parse_arg = dropout_arg,
    .format_arg = dropout_format,
    .out_shape = dropout_shape,
    .state_size = sizeof(struct dropout_state),
    .declare = dropout_declare,
    .bind = dropout_bind,
    .forward = dropout_fwd,
    .backward = dropout_bwd,
};
