/* The ReLU layer kind, relu: the glue between the layer table and relu.c.
 * Elementwise, so it takes any shape and keeps it. */
#include "layer.h"
#include "relu.h"

static int relu_shape(const struct layer_arg *a, struct shape in, struct shape *out, char *why,
                      size_t whylen)
{
    (void)a;
    *out = in;
    return 0;
}

static void relu_fwd(struct layer *l, const struct pass_ctx *ctx, float *out, const float *in,
                     int B)
{
    (void)ctx;
    relu_forward(out, in, (size_t)B * (size_t)l->out_dim);
}

/* Reads its own output (out > 0 where in > 0), so it needs no buffer. */
static void relu_bwd(struct layer *l, const struct arena *a, float *din, const float *dout,
                     const float *in, const float *out, int B)
{
    (void)a;
    (void)in;
    relu_backward(din, dout, out, (size_t)B * (size_t)l->out_dim);
}

const struct layer_kind layer_relu = {
    .name = "relu",
    .usage = "relu",
    .out_shape = relu_shape,
    .act_gain = 2.0, /* He: a ReLU zeroes half its input's variance */
    .forward = relu_fwd,
    .backward = relu_bwd,
};
