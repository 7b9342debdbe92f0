/* Batch normalisation with ghost groups. Every loop walks rows of the
 * row-major (B, C) arrays with the feature index innermost, so the compiler
 * vectorises across features. */
#include "batchnorm.h"

#include <math.h>
#include <string.h>

#include "simd.h"

/* Evaluation mode takes features in blocks of this many, so that each sqrtf
 * (a library call under C11's errno rules, never vectorised) is paid once per
 * feature rather than once per element, with no heap buffer. */
enum { BN_EVAL_BLOCK = 256 };

int bn_group_count(int B, int G)
{
    if (G <= 0 || G >= B)
        return 1;
    return (B + G - 1) / G;
}

/* The helpers below take restrict pointers: without them GCC gives up on the
 * run-time alias checks for this many arrays and leaves the loops scalar. */

/* Statistics of rows [lo, hi): mean (C), then the biased variance into var (C). */
DDT_HOT static void group_stats(float *restrict mean, float *restrict var,
                                const float *restrict in, int lo, int hi, int C)
{
    memset(mean, 0, (size_t)C * sizeof *mean);
    memset(var, 0, (size_t)C * sizeof *var);
    for (int i = lo; i < hi; i++) {
        const float *x = in + (size_t)i * C;
        for (int c = 0; c < C; c++)
            mean[c] += x[c];
    }
    float inv_n = 1.0f / (float)(hi - lo);
    for (int c = 0; c < C; c++)
        mean[c] *= inv_n;
    /* two passes: summing squares of centred values does not cancel the way
     * E[x^2] - E[x]^2 does when the mean is large next to the spread */
    for (int i = lo; i < hi; i++) {
        const float *x = in + (size_t)i * C;
        for (int c = 0; c < C; c++) {
            float d = x[c] - mean[c];
            var[c] += d * d;
        }
    }
    for (int c = 0; c < C; c++)
        var[c] *= inv_n;
}

DDT_HOT static void normalise_rows(float *restrict out, float *restrict xhat,
                                   const float *restrict in, const float *restrict mean,
                                   const float *restrict rstd, const float *restrict gamma,
                                   const float *restrict beta, int lo, int hi, int C)
{
    for (int i = lo; i < hi; i++) {
        const float *x = in + (size_t)i * C;
        float *xh = xhat + (size_t)i * C, *y = out + (size_t)i * C;
        for (int c = 0; c < C; c++) {
            float v = (x[c] - mean[c]) * rstd[c];
            xh[c] = v;
            y[c] = gamma[c] * v + beta[c];
        }
    }
}

void bn_forward_train(float *out, float *xhat, float *mean, float *rstd, float *batch_mean,
                      float *batch_var, const float *in, const float *gamma, const float *beta,
                      int B, int C, int G, float eps, int part, int parts)
{
    int ng = bn_group_count(B, G);
    int size = ng == 1 ? B : G;
    /* a part's groups add their share of the whole slice's mean of means,
     * in the order one pass over the slice would */
    float stat_groups = (float)(ng * (parts > 1 ? parts : 1));
    if (batch_mean && part == 0) {
        memset(batch_mean, 0, (size_t)C * sizeof *batch_mean);
        memset(batch_var, 0, (size_t)C * sizeof *batch_var);
    }
    for (int g = 0; g < ng; g++) {
        int lo = g * size, hi = lo + size < B ? lo + size : B, n = hi - lo;
        float *mu = mean + (size_t)g * C, *rs = rstd + (size_t)g * C;
        /* rs holds the biased variance until it is turned into 1 / sd below */
        group_stats(mu, rs, in, lo, hi, C);
        if (batch_mean) {
            /* running statistics use the unbiased variance, as PyTorch does; a
             * group of one has no spread to correct, so its 0 stays */
            float unbias = n > 1 ? (float)n / (float)(n - 1) : 1.0f;
            for (int c = 0; c < C; c++) {
                batch_mean[c] += mu[c] / stat_groups;
                batch_var[c] += rs[c] * unbias / stat_groups;
            }
        }
        for (int c = 0; c < C; c++)
            rs[c] = 1.0f / sqrtf(rs[c] + eps);
        normalise_rows(out, xhat, in, mu, rs, gamma, beta, lo, hi, C);
    }
}

/* Features [c0, c0 + n) of every row, sd (n) = sqrt(run_var + eps) of the block. */
DDT_HOT static void eval_block(float *restrict out, float *restrict xhat,
                               const float *restrict in, const float *restrict gamma,
                               const float *restrict beta, const float *restrict run_mean,
                               const float *restrict sd, int B, int C, int c0, int n)
{
    const float *g = gamma + c0, *b = beta + c0, *m = run_mean + c0;
    for (int i = 0; i < B; i++) {
        size_t row = (size_t)i * C + c0;
        const float *x = in + row;
        float *y = out + row;
        /* two loops rather than a test per element, which would keep it scalar */
        if (xhat) {
            float *xh = xhat + row;
            for (int c = 0; c < n; c++) {
                float v = (x[c] - m[c]) / sd[c];
                xh[c] = v;
                y[c] = g[c] * v + b[c];
            }
        } else {
            for (int c = 0; c < n; c++)
                y[c] = g[c] * ((x[c] - m[c]) / sd[c]) + b[c];
        }
    }
}

void bn_forward_eval(float *out, float *xhat, const float *in, const float *gamma,
                     const float *beta, const float *run_mean, const float *run_var, int B,
                     int C, float eps)
{
    float sd[BN_EVAL_BLOCK];
    for (int c0 = 0; c0 < C; c0 += BN_EVAL_BLOCK) {
        int n = C - c0 < BN_EVAL_BLOCK ? C - c0 : BN_EVAL_BLOCK;
        for (int c = 0; c < n; c++)
            sd[c] = sqrtf(run_var[c0 + c] + eps);
        eval_block(out, xhat, in, gamma, beta, run_mean, sd, B, C, c0, n);
    }
}

/* din, features [c0, c0 + n) of every row: dout gamma / sd. */
DDT_HOT static void eval_din_block(float *restrict din, const float *restrict dout,
                                   const float *restrict gamma, const float *restrict sd, int B,
                                   int C, int c0, int n)
{
    const float *g = gamma + c0;
    for (int i = 0; i < B; i++) {
        size_t row = (size_t)i * C + c0;
        const float *d = dout + row;
        float *o = din + row;
        for (int c = 0; c < n; c++)
            o[c] = d[c] * g[c] / sd[c];
    }
}

DDT_HOT static void eval_param_grads(float *restrict dgamma, float *restrict dbeta,
                                     const float *restrict dout, const float *restrict xhat,
                                     int B, int C)
{
    memset(dgamma, 0, (size_t)C * sizeof *dgamma);
    memset(dbeta, 0, (size_t)C * sizeof *dbeta);
    for (int i = 0; i < B; i++) {
        const float *d = dout + (size_t)i * C, *xh = xhat + (size_t)i * C;
        for (int c = 0; c < C; c++) {
            dgamma[c] += d[c] * xh[c];
            dbeta[c] += d[c];
        }
    }
}

void bn_backward_eval(float *din, float *dgamma, float *dbeta, const float *dout,
                      const float *xhat, const float *gamma, const float *run_var, int B, int C,
                      float eps)
{
    eval_param_grads(dgamma, dbeta, dout, xhat, B, C);
    if (!din)
        return;
    float sd[BN_EVAL_BLOCK];
    for (int c0 = 0; c0 < C; c0 += BN_EVAL_BLOCK) {
        int n = C - c0 < BN_EVAL_BLOCK ? C - c0 : BN_EVAL_BLOCK;
        for (int c = 0; c < n; c++)
            sd[c] = sqrtf(run_var[c0 + c] + eps);
        eval_din_block(din, dout, gamma, sd, B, C, c0, n);
    }
}

void bn_update_running(float *run_mean, float *run_var, const float *batch_mean,
                       const float *batch_var, int C, float momentum)
{
    for (int c = 0; c < C; c++) {
        run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * batch_mean[c];
        run_var[c] = (1.0f - momentum) * run_var[c] + momentum * batch_var[c];
    }
}

/* sd (C) = column sums of dout, sdx (C) = column sums of dout * xhat over rows [lo, hi). */
DDT_HOT static void group_grad_sums(float *restrict sd, float *restrict sdx,
                                    const float *restrict dout, const float *restrict xhat,
                                    int lo, int hi, int C)
{
    memset(sd, 0, (size_t)C * sizeof *sd);
    memset(sdx, 0, (size_t)C * sizeof *sdx);
    for (int i = lo; i < hi; i++) {
        const float *d = dout + (size_t)i * C, *xh = xhat + (size_t)i * C;
        for (int c = 0; c < C; c++) {
            sd[c] += d[c];
            sdx[c] += d[c] * xh[c];
        }
    }
}

/* din = gamma rstd / n (n dout - sd - xhat sdx), the gradient through the
 * group's mean and variance as well as through the row itself. */
DDT_HOT static void group_din(float *restrict din, const float *restrict dout,
                              const float *restrict xhat, const float *restrict sd,
                              const float *restrict sdx, const float *restrict rstd,
                              const float *restrict gamma, int lo, int hi, int C)
{
    float n = (float)(hi - lo), inv_n = 1.0f / n;
    for (int i = lo; i < hi; i++) {
        const float *d = dout + (size_t)i * C, *xh = xhat + (size_t)i * C;
        float *o = din + (size_t)i * C;
        for (int c = 0; c < C; c++)
            o[c] = gamma[c] * rstd[c] * inv_n * (n * d[c] - sd[c] - xh[c] * sdx[c]);
    }
}

void bn_backward(float *din, float *dgamma, float *dbeta, float *scratch, const float *dout,
                 const float *xhat, const float *rstd, const float *gamma, int B, int C, int G,
                 int accumulate)
{
    int ng = bn_group_count(B, G);
    int size = ng == 1 ? B : G;
    float *sd = scratch, *sdx = scratch + C;
    if (!accumulate) {
        memset(dgamma, 0, (size_t)C * sizeof *dgamma);
        memset(dbeta, 0, (size_t)C * sizeof *dbeta);
    }
    for (int g = 0; g < ng; g++) {
        int lo = g * size, hi = lo + size < B ? lo + size : B;
        group_grad_sums(sd, sdx, dout, xhat, lo, hi, C);
        /* gamma and beta are shared by all groups, so their gradients add up */
        for (int c = 0; c < C; c++) {
            dgamma[c] += sdx[c];
            dbeta[c] += sd[c];
        }
        if (din)
            group_din(din, dout, xhat, sd, sdx, rstd + (size_t)g * C, gamma, lo, hi, C);
    }
}

/* ---- over channels ------------------------------------------------------------
 *
 * Every sample's channel is a plane of HW values, contiguous: the loops walk
 * planes, with the plane's position innermost. A channel's sum takes each
 * plane's own sum first, then adds the planes in sample order, which keeps
 * the float error of a long sum down to that of the shorter ones.
 *
 * A plane's sum is taken in BN_LANES interleaved partial sums (lane l adds
 * x[l], x[l + BN_LANES], ...), added pairwise in a fixed tree, then the tail
 * in order: a sequential sum would be one chain of dependent additions, which
 * no compiler may reorder; this order is written out, so every ISA clone,
 * rank and run adds the same numbers in the same order. */
enum { BN_LANES = 16 };

/* acc (BN_LANES) added pairwise: ((a0 + a1) + (a2 + a3)) + ... */
static inline float lanes_total(float *acc)
{
    for (int w = BN_LANES / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++)
            acc[l] = acc[2 * l] + acc[2 * l + 1];
    return acc[0];
}

/* The sum of x (n). */
static inline float plane_sum(const float *restrict x, int n)
{
    float acc[BN_LANES] = { 0 };
    int p = 0;
    for (; p + BN_LANES <= n; p += BN_LANES)
        for (int l = 0; l < BN_LANES; l++)
            acc[l] += x[p + l];
    float s = lanes_total(acc);
    for (; p < n; p++)
        s += x[p];
    return s;
}

/* The sum of (x - m)^2 over x (n). */
static inline float plane_sq_dev(const float *restrict x, float m, int n)
{
    float acc[BN_LANES] = { 0 };
    int p = 0;
    for (; p + BN_LANES <= n; p += BN_LANES)
        for (int l = 0; l < BN_LANES; l++) {
            float d = x[p + l] - m;
            acc[l] += d * d;
        }
    float s = lanes_total(acc);
    for (; p < n; p++) {
        float d = x[p] - m;
        s += d * d;
    }
    return s;
}

/* *sd = the sum of d (n), *sdx = the sum of d xh (n). */
static inline void plane_grad_sums(float *sd, float *sdx, const float *restrict d,
                                   const float *restrict xh, int n)
{
    float acc[BN_LANES] = { 0 }, accx[BN_LANES] = { 0 };
    int p = 0;
    for (; p + BN_LANES <= n; p += BN_LANES)
        for (int l = 0; l < BN_LANES; l++) {
            acc[l] += d[p + l];
            accx[l] += d[p + l] * xh[p + l];
        }
    float s = lanes_total(acc), sx = lanes_total(accx);
    for (; p < n; p++) {
        s += d[p];
        sx += d[p] * xh[p];
    }
    *sd = s;
    *sdx = sx;
}

/* Statistics of rows [lo, hi): mean (C), then the biased variance into var (C). */
DDT_HOT static void group_stats_spatial(float *restrict mean, float *restrict var,
                                        const float *restrict in, int lo, int hi, int C, int HW)
{
    memset(mean, 0, (size_t)C * sizeof *mean);
    memset(var, 0, (size_t)C * sizeof *var);
    for (int i = lo; i < hi; i++)
        for (int c = 0; c < C; c++)
            mean[c] += plane_sum(in + ((size_t)i * C + c) * HW, HW);
    float inv_n = 1.0f / (float)((hi - lo) * HW);
    for (int c = 0; c < C; c++)
        mean[c] *= inv_n;
    /* two passes, as group_stats: no cancellation when the mean is large */
    for (int i = lo; i < hi; i++)
        for (int c = 0; c < C; c++)
            var[c] += plane_sq_dev(in + ((size_t)i * C + c) * HW, mean[c], HW);
    for (int c = 0; c < C; c++)
        var[c] *= inv_n;
}

DDT_HOT static void normalise_planes(float *restrict out, float *restrict xhat,
                                     const float *restrict in, const float *restrict mean,
                                     const float *restrict rstd, const float *restrict gamma,
                                     const float *restrict beta, int lo, int hi, int C, int HW)
{
    for (int i = lo; i < hi; i++)
        for (int c = 0; c < C; c++) {
            size_t at = ((size_t)i * C + c) * HW;
            const float *x = in + at;
            float *xh = xhat + at, *y = out + at;
            float m = mean[c], r = rstd[c], g = gamma[c], b = beta[c];
            for (int p = 0; p < HW; p++) {
                float v = (x[p] - m) * r;
                xh[p] = v;
                y[p] = g * v + b;
            }
        }
}

void bn_spatial_forward_train(float *out, float *xhat, float *mean, float *rstd,
                              float *batch_mean, float *batch_var, const float *in,
                              const float *gamma, const float *beta, int B, int C, int HW, int G,
                              float eps, int part, int parts)
{
    int ng = bn_group_count(B, G);
    int size = ng == 1 ? B : G;
    float stat_groups = (float)(ng * (parts > 1 ? parts : 1));
    if (batch_mean && part == 0) {
        memset(batch_mean, 0, (size_t)C * sizeof *batch_mean);
        memset(batch_var, 0, (size_t)C * sizeof *batch_var);
    }
    for (int g = 0; g < ng; g++) {
        int lo = g * size, hi = lo + size < B ? lo + size : B, n = (hi - lo) * HW;
        float *mu = mean + (size_t)g * C, *rs = rstd + (size_t)g * C;
        /* rs holds the biased variance until it is turned into 1 / sd below */
        group_stats_spatial(mu, rs, in, lo, hi, C, HW);
        if (batch_mean) {
            /* n counts values, not samples, as PyTorch's BatchNorm2d does */
            float unbias = n > 1 ? (float)n / (float)(n - 1) : 1.0f;
            for (int c = 0; c < C; c++) {
                batch_mean[c] += mu[c] / stat_groups;
                batch_var[c] += rs[c] * unbias / stat_groups;
            }
        }
        for (int c = 0; c < C; c++)
            rs[c] = 1.0f / sqrtf(rs[c] + eps);
        normalise_planes(out, xhat, in, mu, rs, gamma, beta, lo, hi, C, HW);
    }
}

/* One sqrtf per plane, next to HW elements: no block of them needed here. */
DDT_HOT static void eval_plane(float *restrict y, float *restrict xh, const float *restrict x,
                               float g, float b, float m, float sd, int HW)
{
    /* two loops rather than a test per element, which would keep it scalar */
    if (xh) {
        for (int p = 0; p < HW; p++) {
            float v = (x[p] - m) / sd;
            xh[p] = v;
            y[p] = g * v + b;
        }
    } else {
        for (int p = 0; p < HW; p++)
            y[p] = g * ((x[p] - m) / sd) + b;
    }
}

void bn_spatial_forward_eval(float *out, float *xhat, const float *in, const float *gamma,
                             const float *beta, const float *run_mean, const float *run_var,
                             int B, int C, int HW, float eps)
{
    for (int i = 0; i < B; i++)
        for (int c = 0; c < C; c++) {
            size_t at = ((size_t)i * C + c) * HW;
            eval_plane(out + at, xhat ? xhat + at : NULL, in + at, gamma[c], beta[c],
                       run_mean[c], sqrtf(run_var[c] + eps), HW);
        }
}

/* sd (C) = sums of dout, sdx (C) = sums of dout * xhat over rows [lo, hi),
 * added to what they hold. */
DDT_HOT static void add_plane_sums(float *restrict sd, float *restrict sdx,
                                   const float *restrict dout, const float *restrict xhat,
                                   int lo, int hi, int C, int HW)
{
    for (int i = lo; i < hi; i++)
        for (int c = 0; c < C; c++) {
            size_t at = ((size_t)i * C + c) * HW;
            float s, sx;
            plane_grad_sums(&s, &sx, dout + at, xhat + at, HW);
            sd[c] += s;
            sdx[c] += sx;
        }
}

void bn_spatial_backward_eval(float *din, float *dgamma, float *dbeta, const float *dout,
                              const float *xhat, const float *gamma, const float *run_var, int B,
                              int C, int HW, float eps)
{
    memset(dgamma, 0, (size_t)C * sizeof *dgamma);
    memset(dbeta, 0, (size_t)C * sizeof *dbeta);
    add_plane_sums(dbeta, dgamma, dout, xhat, 0, B, C, HW);
    if (!din)
        return;
    for (int i = 0; i < B; i++)
        for (int c = 0; c < C; c++) {
            size_t at = ((size_t)i * C + c) * HW;
            float g = gamma[c], sd = sqrtf(run_var[c] + eps);
            for (int p = 0; p < HW; p++)
                din[at + p] = dout[at + p] * g / sd;
        }
}

/* din = gamma rstd / n (n dout - sd - xhat sdx) over rows [lo, hi), n = (hi - lo) HW. */
DDT_HOT static void group_din_spatial(float *restrict din, const float *restrict dout,
                                      const float *restrict xhat, const float *restrict sd,
                                      const float *restrict sdx, const float *restrict rstd,
                                      const float *restrict gamma, int lo, int hi, int C, int HW)
{
    float n = (float)((hi - lo) * HW), inv_n = 1.0f / n;
    for (int i = lo; i < hi; i++)
        for (int c = 0; c < C; c++) {
            size_t at = ((size_t)i * C + c) * HW;
            const float *d = dout + at, *xh = xhat + at;
            float *o = din + at;
            float k = gamma[c] * rstd[c] * inv_n, s = sd[c], sx = sdx[c];
            for (int p = 0; p < HW; p++)
                o[p] = k * (n * d[p] - s - xh[p] * sx);
        }
}

void bn_spatial_backward(float *din, float *dgamma, float *dbeta, float *scratch,
                         const float *dout, const float *xhat, const float *rstd,
                         const float *gamma, int B, int C, int HW, int G, int accumulate)
{
    int ng = bn_group_count(B, G);
    int size = ng == 1 ? B : G;
    float *sd = scratch, *sdx = scratch + C;
    if (!accumulate) {
        memset(dgamma, 0, (size_t)C * sizeof *dgamma);
        memset(dbeta, 0, (size_t)C * sizeof *dbeta);
    }
    for (int g = 0; g < ng; g++) {
        int lo = g * size, hi = lo + size < B ? lo + size : B;
        memset(sd, 0, 2 * (size_t)C * sizeof *sd);
        add_plane_sums(sd, sdx, dout, xhat, lo, hi, C, HW);
        /* gamma and beta are shared by all groups, so their gradients add up */
        for (int c = 0; c < C; c++) {
            dgamma[c] += sdx[c];
            dbeta[c] += sd[c];
        }
        if (din)
            group_din_spatial(din, dout, xhat, sd, sdx, rstd + (size_t)g * C, gamma, lo, hi, C,
                              HW);
    }
}

void bn_param_grad_rows(float *h, float *hb, const float *dout, const float *xhat, int rows,
                        int C, int HW)
{
    memset(h, 0, (size_t)C * sizeof *h);
    memset(hb, 0, (size_t)C * sizeof *hb);
    if (HW > 1) {
        add_plane_sums(hb, h, dout, xhat, 0, rows, C, HW);
        return;
    }
    /* features: the loop layer_bn.c has always run, so its bits stay */
    for (int i = 0; i < rows; i++)
        for (int c = 0; c < C; c++) {
            h[c] += dout[(size_t)i * C + c] * xhat[(size_t)i * C + c];
            hb[c] += dout[(size_t)i * C + c];
        }
}
