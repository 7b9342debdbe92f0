/* Rectified linear unit. */
#ifndef DDT_RELU_H
#define DDT_RELU_H

#include <stddef.h>

/* out (n) = max(in, 0); out may equal in. */
void relu_forward(float *out, const float *in, size_t n);

/* din (n) = dout where out > 0, else 0; din may equal dout. */
void relu_backward(float *din, const float *dout, const float *out, size_t n);

#endif
