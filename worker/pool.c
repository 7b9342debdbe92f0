/* Max, average and global average pooling, plane by plane: every (sample,
 * channel) pair of an NCHW batch is one H x W plane, pooled on its own. */
#include "pool.h"

#include <string.h>

#include "simd.h"

int pool_out_size(int n, int K, int S)
{
    return (n - K) / S + 1;
}

/* One plane: out, arg (OH, OW) from x (H, W). Each output row starts at its
 * windows' first values, then takes the window's other taps one at a time
 * across the whole row: the same comparisons in the same order per window as
 * a window-by-window loop, but branch-free and vectorised across the row
 * (which value of a window is largest is data: branches on it were
 * mispredicted about once a window, over half of the layer's time). Inlined
 * with constant K and S below, so that the stride is known. */
static inline __attribute__((always_inline)) void
max_plane(float *restrict out, int32_t *restrict arg, const float *restrict x, int W, int K,
          int S, int OH, int OW)
{
    for (int oh = 0; oh < OH; oh++) {
        float *restrict o = out + oh * OW;
        int32_t *restrict a = arg + oh * OW;
        int top = oh * S * W;
        for (int ow = 0; ow < OW; ow++) {
            o[ow] = x[top + ow * S];
            a[ow] = top + ow * S;
        }
        for (int kh = 0; kh < K; kh++)
            for (int kw = kh ? 0 : 1; kw < K; kw++) {
                int at = top + kh * W + kw;
                const float *restrict r = x + at;
                for (int ow = 0; ow < OW; ow++) {
                    float v = r[ow * S], best = o[ow];
                    /* > keeps the first of equal maxima, so backward's choice
                     * does not depend on how the loop is run; a NaN replaces
                     * a number but no other NaN, as > alone would drop it */
                    int take = (v > best) | ((v != v) & (best == best));
                    o[ow] = take ? v : best;
                    a[ow] = take ? at + ow * S : a[ow];
                }
            }
    }
}

/* The planes [0, n), with the usual windows' sizes as constants. */
DDT_HOT static void max_planes(float *out, int32_t *arg, const float *in, size_t n, int H,
                               int W, int K, int S)
{
    int OH = pool_out_size(H, K, S), OW = pool_out_size(W, K, S);
    size_t n_in = (size_t)H * W, n_out = (size_t)OH * OW;
    for (size_t p = 0; p < n; p++) {
        float *o = out + p * n_out;
        int32_t *a = arg + p * n_out;
        const float *x = in + p * n_in;
        if (K == 2 && S == 2)
            max_plane(o, a, x, W, 2, 2, OH, OW);
        else if (K == 3 && S == 2)
            max_plane(o, a, x, W, 3, 2, OH, OW);
        else if (K == 3 && S == 3)
            max_plane(o, a, x, W, 3, 3, OH, OW);
        else
            max_plane(o, a, x, W, K, S, OH, OW);
    }
}

void maxpool_forward(float *out, int32_t *arg, const float *in, int B, int C, int H, int W,
                     int K, int S)
{
    max_planes(out, arg, in, (size_t)B * C, H, W, K, S);
}

void maxpool_backward(float *din, const float *dout, const int32_t *arg, int B, int C, int H,
                      int W, int OH, int OW)
{
    size_t n_in = (size_t)H * W, n_out = (size_t)OH * OW;
    for (size_t p = 0; p < (size_t)B * C; p++) {
        float *dx = din + p * n_in;
        const float *d = dout + p * n_out;
        const int32_t *a = arg + p * n_out;
        /* zeroed plane by plane, so the adds below find it in cache rather
         * than in memory after a pass over the whole batch */
        memset(dx, 0, n_in * sizeof *dx);
        /* overlapping windows can share a max, whose gradients then add */
        for (size_t o = 0; o < n_out; o++)
            dx[a[o]] += d[o];
    }
}

/* One plane: out (OH, OW) from x (H, W). */
static void avg_plane(float *restrict out, const float *restrict x, int W, int K, int S, int OH,
                      int OW, float inv_k2)
{
    for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
            float s = 0.0f;
            for (int kh = 0; kh < K; kh++) {
                const float *row = x + (size_t)(oh * S + kh) * W + (size_t)ow * S;
                for (int kw = 0; kw < K; kw++)
                    s += row[kw];
            }
            out[oh * OW + ow] = s * inv_k2;
        }
}

void avgpool_forward(float *out, const float *in, int B, int C, int H, int W, int K, int S)
{
    int OH = pool_out_size(H, K, S), OW = pool_out_size(W, K, S);
    size_t n_in = (size_t)H * W, n_out = (size_t)OH * OW;
    float inv_k2 = 1.0f / ((float)K * (float)K);
    for (size_t p = 0; p < (size_t)B * C; p++)
        avg_plane(out + p * n_out, in + p * n_in, W, K, S, OH, OW, inv_k2);
}

/* One plane: dx (H, W) += each window's share of d (OH, OW). */
static void avg_plane_back(float *restrict dx, const float *restrict d, int W, int K, int S,
                           int OH, int OW, float inv_k2)
{
    for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
            float g = d[oh * OW + ow] * inv_k2;
            for (int kh = 0; kh < K; kh++) {
                float *row = dx + (size_t)(oh * S + kh) * W + (size_t)ow * S;
                for (int kw = 0; kw < K; kw++)
                    row[kw] += g;
            }
        }
}

void avgpool_backward(float *din, const float *dout, int B, int C, int H, int W, int K, int S)
{
    int OH = pool_out_size(H, K, S), OW = pool_out_size(W, K, S);
    size_t n_in = (size_t)H * W, n_out = (size_t)OH * OW;
    float inv_k2 = 1.0f / ((float)K * (float)K);
    memset(din, 0, (size_t)B * C * n_in * sizeof *din);
    for (size_t p = 0; p < (size_t)B * C; p++)
        avg_plane_back(din + p * n_in, dout + p * n_out, W, K, S, OH, OW, inv_k2);
}

void gap_forward(float *out, const float *in, int B, int C, int HW)
{
    float inv = 1.0f / (float)HW;
    for (size_t p = 0; p < (size_t)B * C; p++) {
        const float *x = in + p * HW;
        float s = 0.0f;
        for (int k = 0; k < HW; k++)
            s += x[k];
        out[p] = s * inv;
    }
}

void gap_backward(float *din, const float *dout, int B, int C, int HW)
{
    float inv = 1.0f / (float)HW;
    for (size_t p = 0; p < (size_t)B * C; p++) {
        float g = dout[p] * inv, *dx = din + p * HW;
        for (int k = 0; k < HW; k++)
            dx[k] = g;
    }
}
