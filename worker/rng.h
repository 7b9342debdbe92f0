/* Counter-based random numbers: every draw is a pure function of its key, so
 * there is no generator state to save and no dependence on the rank count. */
#ifndef DDT_RNG_H
#define DDT_RNG_H

#include <stdint.h>

/* What a draw is for; part of the key so that streams never collide. */
enum rng_purpose {
    RNG_SHUFFLE = 1,   /* (epoch, position) */
    RNG_INIT = 2,      /* (tensor index, element) */
    RNG_DROPOUT = 3,   /* (layer, step, global sample index * width + unit) */
    RNG_SUBSET = 4,    /* (which subset, position) */
    RNG_DIRECTION = 5, /* (direction, element) */
    RNG_AUGMENT = 6,   /* (epoch, training-set row, which draw) */
    RNG_HOLDOUT = 7,   /* (0, position): the validation rows held out of training */
};

/* 64 well-mixed bits from (seed, purpose, a, b, c). */
uint64_t rng_u64(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b, uint64_t c);

/* Uniform in [0, 1) with 24 bits of precision (exactly representable). */
float rng_uniform(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b, uint64_t c);

/* Standard normal (Box-Muller on two draws of the same key). */
double rng_normal(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b, uint64_t c);

/* Uniform integer in [0, n), n > 0, without modulo bias worth speaking of
 * (128-bit multiply-shift). */
uint64_t rng_below(uint64_t n, uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b,
                   uint64_t c);

#endif
