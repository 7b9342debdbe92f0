/* Inverted dropout whose mask is a pure function of (seed, layer, step,
 * global sample index, unit), so it does not depend on how the batch is split
 * across ranks and needs no saved state. */
#ifndef DDT_DROPOUT_H
#define DDT_DROPOUT_H

#include <stdint.h>

struct dropout_key {
    uint64_t seed;
    uint64_t layer; /* position of the layer in the model */
    uint64_t step;  /* global step counter */
    uint64_t first_sample; /* global index of row 0 of this slice */
};

/* out (B, C) = in * mask / (1 - p), mask (B, C) in {0, 1} kept for backward.
 * p == 0 copies. */
void dropout_forward(float *out, uint8_t *mask, const float *in, int B, int C, float p,
                     const struct dropout_key *key);

/* din (B, C) = dout * mask / (1 - p) */
void dropout_backward(float *din, const float *dout, const uint8_t *mask, int B, int C, float p);

#endif
