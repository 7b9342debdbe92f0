/* Epoch permutations and per-rank slices of a global batch. */
#include "sampler.h"

#include "rng.h"

/* Fisher-Yates: position i - 1 takes a draw below i keyed by (purpose, a, i - 1). */
static void shuffle(uint32_t *perm, size_t n, uint64_t seed, uint64_t purpose, uint64_t a)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(i, seed, purpose, a, i - 1, 0);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

void sampler_permutation(uint32_t *perm, size_t n, uint64_t seed, uint64_t epoch)
{
    shuffle(perm, n, seed, RNG_SHUFFLE, epoch);
}

void sampler_subset(uint32_t *perm, size_t n, uint64_t seed, uint64_t which)
{
    shuffle(perm, n, seed, RNG_SUBSET, which);
}

void sampler_holdout(uint32_t *perm, size_t n, uint64_t seed)
{
    shuffle(perm, n, seed, RNG_HOLDOUT, 0);
}

void sampler_slice(int B, int rank, int nranks, int *first, int *count)
{
    long lo = (long)B * rank / nranks;
    long hi = (long)B * (rank + 1) / nranks;
    *first = (int)lo;
    *count = (int)(hi - lo);
}
