/* Rectified linear unit, forward and backward. */
#include "relu.h"

#include "simd.h"

/* Written as "negative goes to 0" rather than "positive passes" so that a NaN
 * passes through: a diverged weight must reach the loss, where the trainer
 * looks for it, instead of being silently zeroed here. */
DDT_HOT void relu_forward(float *out, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = in[i] < 0.0f ? 0.0f : in[i];
}

/* The gradient is 0 at 0 (as in PyTorch); a NaN output passes dout through. */
DDT_HOT void relu_backward(float *din, const float *dout, const float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        din[i] = out[i] <= 0.0f ? 0.0f : dout[i];
}
