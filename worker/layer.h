/* The layer interface: a layer's shapes, parameter views and memory, and the
 * table of layer kinds that the spec parser and the model build from.
 *
 * A kind is one row of the table in layer.c, written in its own file
 * (layer_fc.c, layer_bn.c, ...) next to its numeric kernels (linear.c,
 * batchnorm.c, ...). The model loop only calls through the row: a new kind
 * needs no edit to the model, the step or the optimizer. */
#ifndef DDT_LAYER_H
#define DDT_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

struct model_options;

/* What one sample looks like between layers: channels x height x width. A
 * fully connected layer's output is C x 1 x 1; kernels see a batch of them as
 * a row-major (B, C·H·W) array. */
struct shape {
    int c, h, w;
};

static inline int shape_size(struct shape s)
{
    return s.c * s.h * s.w;
}

/* The argument of a spec item ("fc:1024", "dropout:0.5"); each kind reads
 * the fields it needs, the others stay 0. */
struct layer_arg {
    int width;  /* in: (C·H·W), fc:, conv: (output channels) */
    float p;    /* dropout: */
    struct shape shape;      /* in: the input's (N x 1 x 1 for in:N) */
    int kernel, stride, pad; /* conv:, maxpool:, avgpool: (pooling has no padding) */
    bool no_bias;            /* conv:...b0 */
};

/* What a forward pass needs to know beyond its input. */
struct pass_ctx {
    bool train;
    uint64_t seed;
    uint64_t step;         /* global step, keys dropout masks */
    uint64_t first_sample; /* global position of row 0 of the slice, keys dropout */
    /* gradient accumulation: the rows are part `part` of `parts` equal parts
     * of the slice, forwarded one after the other; batch norm's running
     * statistics gather over all of them (0 of 0 or 1: the whole slice) */
    int part, parts;
};

enum { LAYER_MAX_BUFS = 4 };

/* A buffer a kind declares (bytes, for the largest slice) and the model
 * allocates once, 64-byte aligned and zeroed, and frees. */
struct layer_buf {
    size_t bytes;
    void *p;
};

struct layer {
    const struct layer_kind *kind;
    int index;             /* position in the model */
    struct shape in, out;  /* per sample */
    int in_dim, out_dim;   /* shape_size of in and out */
    int w_view, b_view;    /* arena views (fc: weight, bias; bn: gamma, beta); -1 if none */
    int stat_channels;     /* channels with running statistics (a mean and a variance each) */
    const struct arena *arena;
    struct layer_buf buf[LAYER_MAX_BUFS]; /* activation and scratch memory beyond the output */
    void *state;           /* the kind's own (state_size bytes, zeroed), owned by the model */
    /* backward adds to the parameter gradients rather than overwriting them
     * (a step's micro-batches after the first); set by model_backward */
    bool accumulate;
};

/* What declare gets besides the spec argument. */
struct layer_decl {
    struct arena *arena;
    const struct model_options *opt;
    int max_batch;
    int nth;    /* 1 for the first layer of its kind, 2 for the next...: tensor names */
    int group;  /* tensor_view.layer: the weighted layer this one belongs to, 0 before any */
};

/* Where a layer with running statistics keeps them, given by the model: the
 * means of every such layer come first in one block, then the variances, so
 * ranks reduce and checkpoints store one array. batch_* receive the last
 * training pass's statistics as sums over ghost groups, and *groups their
 * count. */
struct layer_stats {
    float *run_mean, *run_var;     /* (stat_channels) each */
    float *batch_mean, *batch_var; /* (stat_channels) each */
    float *groups;
};

/* One kind of layer. Optional entries are NULL (or 0) when the kind has no
 * use for them. */
struct layer_kind {
    const char *name;   /* as written in specs: "fc" */
    const char *usage;  /* as listed when an item is not a layer: "fc:N" */
    /* The argument after "name:", NULL when the kind takes none. Returns -1
     * with why filled when text[0..len) is not one. */
    int (*parse_arg)(struct layer_arg *a, const char *text, int len, char *why, size_t whylen);
    void (*format_arg)(const struct layer_arg *a, char *out, int outlen);
    /* The output shape for the input shape, or -1 with why filled when this
     * kind cannot take that input. */
    int (*out_shape)(const struct layer_arg *a, struct shape in, struct shape *out, char *why,
                     size_t whylen);
    /* A layer with a weight matrix: it numbers the trainable layers (the
     * views' layer), and it ends the search for the activation that an
     * earlier weighted layer feeds. */
    bool weighted;
    /* An activation: the initialisation gain of the weighted layer that
     * feeds it (ReLU: 2, He); 0 for every other kind. */
    double act_gain;
    size_t state_size;
    /* Fills the state from the argument and the options, declares the
     * parameter views, stat_channels and the buffers. -1 when out of memory. */
    int (*declare)(struct layer *l, const struct layer_arg *a, const struct layer_decl *d);
    /* Once the buffers exist: takes its pointers into them and its running
     * statistics (stats is NULL when stat_channels is 0). */
    void (*bind)(struct layer *l, const struct layer_stats *stats);
    /* Initial parameters (the arena is zeroed before) and running statistics,
     * keyed by seed alone; gain as act_gain says (1 when no activation). */
    void (*init_params)(struct layer *l, uint64_t seed, double gain);
    /* out (B, out_dim) from in (B, in_dim) */
    void (*forward)(struct layer *l, const struct pass_ctx *ctx, float *out, const float *in,
                    int B);
    /* din (B, in_dim) from dout (B, out_dim); din is NULL when nobody needs it.
     * Parameter gradients are overwritten, or added to when l->accumulate is
     * set, in the order one backward over all the rows would add them. */
    void (*backward)(struct layer *l, const struct arena *a, float *din, const float *dout,
                     const float *in, const float *out, int B);
    /* running = (1 - momentum) running + momentum * (batch sums / groups) */
    void (*update_running)(struct layer *l, float groups);
    /* The noise scale's halves: with h the gradient of the first `rows` rows
     * alone (computed in scratch, as large as the largest view) and g the
     * whole gradient, adds |h|^2 to sq[0] and |g - h|^2 to sq[1], tensor by
     * tensor in view order. */
    void (*half_norms)(const struct layer *l, float *scratch, const float *dout,
                       const float *in, int rows, double sq[2]);
    /* Forward multiply-adds x2 per sample. */
    double (*flops)(const struct layer *l);
};

/* The kinds the spec grammar names itself (a list starts with in: and ends
 * with fc:, and the MLP shorthand expands into fc, bn, relu and dropout). */
extern const struct layer_kind layer_input, layer_fc, layer_bn, layer_relu, layer_dropout,
    layer_conv;

/* The kind written name[0..len) in specs, or NULL. */
const struct layer_kind *layer_kind_find(const char *name, int len);

/* Writes every kind's usage, ", "-separated ("in:N, fc:N, bn, ..."). */
void layer_kind_usage(char *out, int outlen);

/* A positive layer width from [p, end); rejects signs, junk and absurd sizes. */
int layer_parse_width(const char *p, const char *end, int *out);

/* parse_arg and format_arg of the kinds whose argument is a width. */
int layer_arg_width(struct layer_arg *a, const char *text, int len, char *why, size_t whylen);
void layer_format_width(const struct layer_arg *a, char *out, int outlen);

/* |h|^2 to sq[0] and |g - h|^2 to sq[1], for one tensor of n elements whose
 * gradient is g and whose first rows' share of it is h. */
void layer_add_half_norms(double sq[2], const float *g, const float *h, size_t n);

#endif
