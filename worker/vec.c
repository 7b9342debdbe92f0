/* Sums in double over VEC_LANES independent accumulators: one running sum
 * is a chain of dependent adds the compiler may not reorder, several times
 * slower than the memory it reads. */
#include "vec.h"

#include <string.h>

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

DDT_HOT static void vec_add_into(float *restrict acc, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        acc[i] += x[i];
}

/* chunks small enough to stay in L1 between the passes */
#define VEC_CHUNK 2048

void vec_sum_in_order(float *dst, const float *const *src, int nsrc, size_t n)
{
    _Alignas(64) float acc[VEC_CHUNK];
    for (size_t i0 = 0; i0 < n; i0 += VEC_CHUNK) {
        size_t len = n - i0 < VEC_CHUNK ? n - i0 : VEC_CHUNK;
        memcpy(acc, src[0] + i0, len * sizeof *acc);
        for (int q = 1; q < nsrc; q++)
            vec_add_into(acc, src[q] + i0, len);
        memcpy(dst + i0, acc, len * sizeof *acc);
    }
}
