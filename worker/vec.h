/* Reductions over float vectors that the hot paths share. */
#ifndef DDT_VEC_H
#define DDT_VEC_H

#include <stddef.h>

/* sum of x[i]^2, accumulated in double */
double vec_sum_squares(const float *x, size_t n);

/* dst[i] = ((src[0][i] + src[1][i]) + src[2][i]) + ..., always in that order
 * so that the sum does not depend on where it is taken; dst may be one of
 * the sources. */
void vec_sum_in_order(float *dst, const float *const *src, int nsrc, size_t n);

#endif
