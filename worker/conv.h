/* 2-D convolution over NCHW batches: im2col and one cblas_sgemm per sample.
 *
 * Why per sample: with one OpenBLAS thread, sgemm already runs at 100-120
 * GFLOP/s on a single sample's shapes (OC x OH·OW x IC·k·k, e.g. 16 x 1024 x
 * 144), and gluing S samples into one GEMM of S times the width gained
 * nothing measurable (tests/bench_conv.c); per sample, the product
 * W (OC, IC·k·k) · col (IC·k·k, OH·OW) is already the sample's NCHW output,
 * so no transposition is needed, and the im2col buffer holds one sample
 * rather than a batch. */
#ifndef DDT_CONV_H
#define DDT_CONV_H

#include <stdbool.h>
#include <stddef.h>

/* One convolution's sizes: input IC x H x W, OC output channels, a square
 * k x k kernel, stride, zero padding on every side, output OC x OH x OW. */
struct conv_geom {
    int ic, h, w;
    int oc, k, stride, pad;
    int oh, ow;
};

/* Fills oh and ow from the rest; -1 when the kernel does not fit the padded
 * input or a size is not positive. */
int conv_geom_init(struct conv_geom *g, int ic, int h, int w, int oc, int k, int stride, int pad);

/* A 1x1 kernel, stride 1, no padding: the input (IC, H·W) is its own im2col
 * matrix, so no column buffer is used. */
bool conv_is_pointwise(const struct conv_geom *g);

/* Floats of the column buffer the kernels below need (IC·k·k · OH·OW), 0 for a
 * pointwise convolution. */
size_t conv_col_floats(const struct conv_geom *g);

/* col (IC·k·k, OH·OW) from one sample in (IC, H, W): row (c, i, j) holds the
 * input pixel under kernel tap (i, j) of channel c for each output position,
 * 0 where the tap lies in the padding. */
void conv_im2col(float *col, const float *in, const struct conv_geom *g);

/* The adjoint: din (IC, H, W) += every column entry at the pixel it was read
 * from. Entries in the padding are dropped, and some of them set to 0 on
 * the way (so that a "same" convolution's rows add as one run). */
void conv_col2im(float *din, float *col, const struct conv_geom *g);

/* out (B, OC, OH, OW) = w (OC, IC·k·k) * in (B, IC, H, W) + b (OC), b NULL for
 * none. col (conv_col_floats) is scratch. */
void conv_forward(float *out, float *col, const float *in, const float *w, const float *b, int B,
                  const struct conv_geom *g);

/* From dout (B, OC, OH, OW):
 *   dw (OC, IC·k·k) = sum over samples of dout_b (OC, OH·OW) · col_b^T,
 *   db (OC) = sums of dout over samples and positions (skipped when NULL),
 *   din (B, IC, H, W) = col2im(w^T · dout_b) (skipped when NULL).
 * din is overwritten; dw and db too (B = 0 gives zero gradients), or added
 * to, sample after sample, when accumulate is non-zero. col
 * (conv_col_floats) is scratch: each sample's columns, then their gradient. */
void conv_backward(float *din, float *dw, float *db, float *col, const float *dout,
                   const float *in, const float *w, int B, const struct conv_geom *g,
                   int accumulate);

/* db (OC) (+)= sums of dout (B, OC, P) over samples and the P positions
 * (overwritten unless accumulate is non-zero). */
void conv_bias_grad(float *db, const float *dout, int B, int OC, int P, int accumulate);

/* Forward multiply-adds x2 of one sample. */
double conv_flops(const struct conv_geom *g);

#endif
