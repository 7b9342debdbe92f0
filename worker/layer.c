/* The table of layer kinds, the input pseudo-layer, and helpers the kinds
 * share. */
#include "layer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Kinds that only the table names (layer_pool.c, layer_res.c). */
extern const struct layer_kind layer_maxpool, layer_avgpool, layer_gap, layer_res;

/* One row per kind, in the order the parser lists them to a user. */
static const struct layer_kind *const kinds[] = {
    &layer_input, &layer_fc, &layer_bn, &layer_relu, &layer_dropout,
    &layer_conv,
    &layer_maxpool,
    &layer_avgpool,
    &layer_gap,
    &layer_res,
};

enum { NKINDS = (int)(sizeof kinds / sizeof kinds[0]) };

const struct layer_kind *layer_kind_find(const char *name, int len)
{
    for (int i = 0; i < NKINDS; i++)
        if ((int)strlen(kinds[i]->name) == len && !strncmp(name, kinds[i]->name, (size_t)len))
            return kinds[i];
    return NULL;
}

void layer_kind_usage(char *out, int outlen)
{
    int used = 0;
    out[0] = 0;
    for (int i = 0; i < NKINDS && used < outlen; i++)
        used += snprintf(out + used, (size_t)(outlen - used), "%s%s", i ? ", " : "",
                         kinds[i]->usage);
}

int layer_parse_width(const char *p, const char *end, int *out)
{
    if (p == end || *p < '0' || *p > '9')
        return -1;
    errno = 0;
    char *e;
    long v = strtol(p, &e, 10);
    if (errno || e != end || v < 1 || v > (1L << 24))
        return -1;
    *out = (int)v;
    return 0;
}

int layer_arg_width(struct layer_arg *a, const char *text, int len, char *why, size_t whylen)
{
    if (layer_parse_width(text, text + len, &a->width)) {
        snprintf(why, whylen, "the width must be a whole number from 1 to 16777216");
        return -1;
    }
    return 0;
}

void layer_format_width(const struct layer_arg *a, char *out, int outlen)
{
    snprintf(out, (size_t)outlen, "%d", a->width);
}

void layer_add_half_norms(double sq[2], const float *g, const float *h, size_t n)
{
    double a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        double rest = (double)g[i] - h[i];
        a += (double)h[i] * h[i];
        b += rest * rest;
    }
    sq[0] += a;
    sq[1] += b;
}

/* ---- the input: in:N or in:CxHxW, the first item of every list, not a layer -- */

/* "N" (N x 1 x 1) or "CxHxW"; width = C·H·W, which is what the data holds
 * per sample, in NCHW order. */
static int input_arg(struct layer_arg *a, const char *text, int len, char *why, size_t whylen)
{
    const char *end = text + len, *x1 = memchr(text, 'x', (size_t)len);
    if (!x1) {
        if (layer_arg_width(a, text, len, why, whylen))
            return -1;
        a->shape = (struct shape){ a->width, 1, 1 };
        return 0;
    }
    const char *x2 = memchr(x1 + 1, 'x', (size_t)(end - x1 - 1));
    struct shape s;
    if (!x2 || layer_parse_width(text, x1, &s.c) || layer_parse_width(x1 + 1, x2, &s.h) ||
        layer_parse_width(x2 + 1, end, &s.w) || (long long)s.c * s.h * s.w > (1LL << 24)) {
        snprintf(why, whylen,
                 "the input must be N or CxHxW, whole numbers from 1 with a product of at most 16777216");
        return -1;
    }
    a->shape = s;
    a->width = shape_size(s);
    return 0;
}

/* in:N for an N x 1 x 1 input, whichever way it was written. */
static void input_format(const struct layer_arg *a, char *out, int outlen)
{
    if (a->shape.h > 1 || a->shape.w > 1)
        snprintf(out, (size_t)outlen, "%dx%dx%d", a->shape.c, a->shape.h, a->shape.w);
    else
        layer_format_width(a, out, outlen);
}

static int input_shape(const struct layer_arg *a, struct shape in, struct shape *out, char *why,
                       size_t whylen)
{
    (void)in;
    /* the MLP shorthand sets the width alone */
    *out = a->shape.c ? a->shape : (struct shape){ a->width, 1, 1 };
    return 0;
}

/* No ops: the model takes its input from act[0] and builds no layer for it. */
const struct layer_kind layer_input = {
    .name = "in",
    .usage = "in:N",
    .parse_arg = input_arg,
    .format_arg = input_format,
    .out_shape = input_shape,
};
