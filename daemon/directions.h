/* Random directions in parameter space for loss-landscape cuts (Li et al.
 * 2018): normal draws keyed by (seed, direction), then filter-normalised so
 * that every row of a weight has the norm of the same row of the parameters:
 * a row is an fc layer's output neuron, and a convolution's filter (its
 * weight is viewed as (OC, IC·k·k), one output channel's IC x k x k weights a
 * row); biases and batch-norm parameters get zero. */
#ifndef DDT_DIRECTIONS_H
#define DDT_DIRECTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"

/* d (a->n floats, arena layout) = direction number `which` for the
 * parameters w. Without filter_norm each weight tensor's direction is scaled
 * to the tensor's norm instead (layer normalisation). */
void direction_random(float *d, const struct arena *a, const float *w, uint64_t seed,
                      int which, bool filter_norm);

#endif
