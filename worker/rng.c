/* Counter-based generator: a splitmix64-style finaliser chained over the key. */
#include "rng.h"

#include <math.h>

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t rng_u64(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t h = mix64(seed ^ 0x6a09e667f3bcc909ULL);
    h = mix64(h ^ purpose);
    h = mix64(h ^ a);
    h = mix64(h ^ b);
    return mix64(h ^ c);
}

float rng_uniform(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b, uint64_t c)
{
    return (float)(rng_u64(seed, purpose, a, b, c) >> 40) * (1.0f / 16777216.0f);
}

double rng_normal(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t r = rng_u64(seed, purpose, a, b, c);
    /* two 32-bit halves; u1 in (0, 1] so the log is finite */
    double u1 = ((double)(r >> 32) + 1.0) / 4294967296.0;
    double u2 = (double)(r & 0xffffffffULL) / 4294967296.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t rng_below(uint64_t n, uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b,
                   uint64_t c)
{
    unsigned __int128 m = (unsigned __int128)rng_u64(seed, purpose, a, b, c) * n;
    return (uint64_t)(m >> 64);
}
