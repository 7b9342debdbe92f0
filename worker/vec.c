/* Sums in double over VEC_LANES independent accumulators: one running sum
 * is a chain of dependent adds the compiler may not reorder, several times
 * slower than the memory it reads. */
#include "vec.h"

#include "simd.h"

#define VEC_LANES 8

DDT_HOT double vec_sum_squares(const float *restrict x, size_t n)
{
    double lane[VEC_LANES] = { 0 };
    size_t i = 0;
    for (; i + VEC_LANES <= n; i += VEC_LANES)
        for (int j = 0; j < VEC_LANES; j++)
            lane[j] += (double)x[i + (size_t)j] * x[i + (size_t)j];
    double s = 0;
    for (; i < n; i++)
        s += (double)x[i] * x[i];
    for (int j = 0; j < VEC_LANES; j++)
        s += lane[j];
    return s;
}
