/* Reductions over float vectors that the hot paths share. */
#ifndef DDT_VEC_H
#define DDT_VEC_H

#include <stddef.h>

/* sum of x[i]^2, accumulated in double */
double vec_sum_squares(const float *x, size_t n);

#endif
