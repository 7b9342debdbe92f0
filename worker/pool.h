/* Pooling over each channel's H x W plane of an NCHW batch, a row-major
 * (B, C, H, W) array: max and average over K x K windows moved by S (no
 * padding), and global averages. A window's output is (OH, OW) with
 * OH = (H - K) / S + 1, OW = (W - K) / S + 1. Backward passes write din
 * (never add to what is there); overlapping windows (S < K) add their
 * shares within one pass. */
#ifndef DDT_POOL_H
#define DDT_POOL_H

#include <stdint.h>

/* Outputs along one axis of n inputs, windows of K moved by S (K <= n). */
int pool_out_size(int n, int K, int S);

/* out (B, C, OH, OW) = max of each window of in (B, C, H, W)
 * arg (B, C, OH, OW): where in its channel's plane (h W + w) each max was,
 *   for backward. Ties go to the first in row-major window order; a NaN
 *   wins over numbers (the first NaN of the window), so it reaches the loss. */
void maxpool_forward(float *out, int32_t *arg, const float *in, int B, int C, int H, int W,
                     int K, int S);

/* din (B, C, H, W) = 0, plus each dout (B, C, OH, OW) at the place its arg
 * (B, C, OH, OW) names. */
void maxpool_backward(float *din, const float *dout, const int32_t *arg, int B, int C, int H,
                      int W, int OH, int OW);

/* out (B, C, OH, OW) = mean of each K x K window of in (B, C, H, W). */
void avgpool_forward(float *out, const float *in, int B, int C, int H, int W, int K, int S);

/* din (B, C, H, W) = sum over the windows that hold an input of their
 * dout (B, C, OH, OW) / K^2. */
void avgpool_backward(float *din, const float *dout, int B, int C, int H, int W, int K, int S);

/* out (B, C) = mean of each channel's plane of in (B, C, HW). */
void gap_forward(float *out, const float *in, int B, int C, int HW);

/* din (B, C, HW) = dout (B, C) / HW over each plane. */
void gap_backward(float *din, const float *dout, int B, int C, int HW);

#endif
