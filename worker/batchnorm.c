/* Batch normalisation with ghost groups. Every loop walks rows of the
 * row-major (B, C) arrays with the feature index innermost, so the compiler
 * vectorises across features. */
#include "batchnorm.h"

#include <math.h>
#include <string.h>

#include "simd.h"

int bn_group_count(int B, int G)
{
    if (G <= 0 || G >= B)
        return 1;
    return (B + G - 1) / G;
}

/* Statistics of rows [lo, hi): mean (C), then the biased variance into var (C). */
DDT_HOT static void group_stats(float *mean, float *var, const float *in, int lo, int hi, int C)
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
    /* two passes: the variance of centred values does not cancel */
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

DDT_HOT static void normalise_rows(float *out, float *xhat, const float *in, const float *mean,
                                   const float *rstd, const float *gamma, const float *beta,
                                   int lo, int hi, int C)
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
                      int B, int C, int G, float eps)
{
    int ng = bn_group_count(B, G);
    int size = ng == 1 ? B : G;
    if (batch_mean) {
        memset(batch_mean, 0, (size_t)C * sizeof *batch_mean);
        memset(batch_var, 0, (size_t)C * sizeof *batch_var);
    }
    for (int g = 0; g < ng; g++) {
        int lo = g * size, hi = lo + size < B ? lo + size : B, n = hi - lo;
        float *mu = mean + (size_t)g * C, *rs = rstd + (size_t)g * C;
        group_stats(mu, rs, in, lo, hi, C);
        if (batch_mean) {
            /* running statistics use the unbiased variance, as PyTorch does */
            float unbias = n > 1 ? (float)n / (float)(n - 1) : 1.0f;
            for (int c = 0; c < C; c++) {
                batch_mean[c] += mu[c] / (float)ng;
                batch_var[c] += rs[c] * unbias / (float)ng;
            }
        }
        for (int c = 0; c < C; c++)
            rs[c] = 1.0f / sqrtf(rs[c] + eps);
        normalise_rows(out, xhat, in, mu, rs, gamma, beta, lo, hi, C);
    }
}

DDT_HOT void bn_forward_eval(float *out, float *xhat, const float *in, const float *gamma,
                             const float *beta, const float *run_mean, const float *run_var,
                             int B, int C, float eps)
{
    for (int i = 0; i < B; i++) {
        const float *x = in + (size_t)i * C;
        float *y = out + (size_t)i * C;
        for (int c = 0; c < C; c++) {
            float v = (x[c] - run_mean[c]) / sqrtf(run_var[c] + eps);
            if (xhat)
                xhat[(size_t)i * C + c] = v;
            y[c] = gamma[c] * v + beta[c];
        }
    }
}

void bn_backward_eval(float *din, float *dgamma, float *dbeta, const float *dout,
                      const float *xhat, const float *gamma, const float *run_var, int B, int C,
                      float eps)
{
    memset(dgamma, 0, (size_t)C * sizeof *dgamma);
    memset(dbeta, 0, (size_t)C * sizeof *dbeta);
    for (int i = 0; i < B; i++) {
        const float *d = dout + (size_t)i * C, *xh = xhat + (size_t)i * C;
        for (int c = 0; c < C; c++) {
            dgamma[c] += d[c] * xh[c];
            dbeta[c] += d[c];
        }
        if (din)
            for (int c = 0; c < C; c++)
                din[(size_t)i * C + c] = d[c] * gamma[c] / sqrtf(run_var[c] + eps);
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
DDT_HOT static void group_grad_sums(float *sd, float *sdx, const float *dout, const float *xhat,
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
 * group's mean and variance. */
DDT_HOT static void group_din(float *din, const float *dout, const float *xhat, const float *sd,
                              const float *sdx, const float *rstd, const float *gamma, int lo,
                              int hi, int C)
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
        for (int c = 0; c < C; c++) {
            dgamma[c] += sdx[c];
            dbeta[c] += sd[c];
        }
        if (din)
            group_din(din, dout, xhat, sd, sdx, rstd + (size_t)g * C, gamma, lo, hi, C);
    }
}
