/* Which samples each rank sees: the epoch's permutation comes from (seed,
 * epoch) alone, global batch k is positions [k*B, (k+1)*B) of it, and rank r
 * takes the r-th contiguous slice of that batch. */
#ifndef DDT_SAMPLER_H
#define DDT_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

/* perm (n) = a Fisher-Yates shuffle of 0..n-1 keyed by (seed, epoch). */
void sampler_permutation(uint32_t *perm, size_t n, uint64_t seed, uint64_t epoch);

/* perm (n) = a Fisher-Yates shuffle of 0..n-1 drawn from the RNG_SUBSET
 * stream (seed, subset `which`): the analyses' seeded subsets are its first
 * samples. Its own stream, so that no subset is a training epoch's order. */
void sampler_subset(uint32_t *perm, size_t n, uint64_t seed, uint64_t which);

/* perm (n) = a Fisher-Yates shuffle of 0..n-1 drawn from the RNG_HOLDOUT
 * stream: --val-fraction holds its first k rows out of training. A function
 * of the seed alone, so that every rank (and every rank count) agrees on the
 * split, and its own stream, so that the split is no epoch's order. */
void sampler_holdout(uint32_t *perm, size_t n, uint64_t seed);

/* The slice of a global batch of B samples that rank r of N takes: rows
 * [*first, *first + *count) of the batch. Sizes differ by at most one. */
void sampler_slice(int B, int rank, int nranks, int *first, int *count);

#endif
