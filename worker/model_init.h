/* --init: the distribution of a model's initial weights, so that a study
 * can start where a reference implementation starts. */
#ifndef DDT_MODEL_INIT_H
#define DDT_MODEL_INIT_H

#include <stdint.h>

#include "model.h"

enum model_init {
    INIT_HE = 0,    /* model_init_params: He normal, LeCun normal for the output layer */
    INIT_LECUN = 1, /* every weight normal with std 1 / sqrt(fan_in), biases 0 */
    INIT_TORCH = 2, /* PyTorch's Linear/Conv2d default: weights and biases uniform in
                     * [-1 / sqrt(fan_in), 1 / sqrt(fan_in)] */
};

/* model_init_params, then (lecun, torch) every weight tensor, and with torch
 * every bias, drawn again from the same seeded init stream; fan_in is the
 * weight's columns (in_dim for fc, IC·k·k for conv), a bias takes its
 * weight's. Batch norm keeps gamma 1, beta 0 and its running statistics. */
void model_init_params_as(struct model *m, uint64_t seed, enum model_init how);

#endif
