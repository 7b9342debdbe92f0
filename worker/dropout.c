/* Inverted dropout with masks drawn from the counter-based generator. */
#include "dropout.h"

#include <string.h>

#include "rng.h"
#include "simd.h"

void dropout_forward(float *out, uint8_t *mask, const float *in, int B, int C, float p,
                     const struct dropout_key *key)
{
    size_t n = (size_t)B * (size_t)C;
    if (p <= 0.0f) {
        memcpy(out, in, n * sizeof *out);
        memset(mask, 1, n);
        return;
    }
    float scale = 1.0f / (1.0f - p);
    for (int i = 0; i < B; i++) {
        /* keyed by the sample's global position, never by the rank's row */
        uint64_t base = (key->first_sample + (uint64_t)i) * (uint64_t)C;
        for (int c = 0; c < C; c++) {
            size_t k = (size_t)i * C + c;
            uint8_t keep = rng_uniform(key->seed, RNG_DROPOUT, key->layer, key->step,
                                       base + (uint64_t)c) >= p;
            mask[k] = keep;
            out[k] = keep ? in[k] * scale : 0.0f;
        }
    }
}

DDT_HOT void dropout_backward(float *din, const float *dout, const uint8_t *mask, int B, int C,
                              float p)
{
    size_t n = (size_t)B * (size_t)C;
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    for (size_t k = 0; k < n; k++)
        din[k] = mask[k] ? dout[k] * scale : 0.0f;
}
