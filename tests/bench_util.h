/* What the benchmark programs share: clocks, random matrices, the GEMMs of
 * the MLP's training step timed alone, and a synthetic data set of
 * Fashion-MNIST's shape. */
#ifndef DDT_BENCH_UTIL_H
#define DDT_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

/* Monotonic wall seconds. */
double bench_now(void);

/* n floats of N(0, 0.05^2), 64-byte aligned (free()). */
float *bench_randn(size_t n, uint64_t key);

/* qsort's comparison of doubles. */
int bench_cmp_double(const void *a, const void *b);

/* The GEMMs of one training step of the linear layers dims[0] -> dims[1] ->
 * ... -> dims[nl] at batch B (forward, weight gradient, and the input
 * gradient of all but the first layer), repeated for `seconds`: GFLOP/s of
 * the fastest step (*best) and of the median one (*median), and (unless
 * NULL) *median_seconds, the median step's time. */
void bench_gemm_rates(const int *dims, int nl, int B, double seconds, double *best,
                      double *median, double *median_seconds);

/* Synthetic uint8 samples of dim features and 10 classes, so that a step
 * includes the gather and normalisation it has in training. */
void bench_make_data(struct dataset *d, size_t n, size_t dim);

#endif
