/* Batch normalisation over the feature axis of a (B, C) activation, or over
 * the channels of an NCHW (B, C, HW) one, with ghost groups: statistics are
 * taken over consecutive groups of G samples (the last group may be smaller);
 * G >= B means one group. */
#ifndef DDT_BATCHNORM_H
#define DDT_BATCHNORM_H

/* Number of ghost groups a batch of B samples splits into. */
int bn_group_count(int B, int G);

/* Training mode.
 * out (B, C) = gamma * (in - mean_g) * rstd_g + beta for the group g of each row
 * xhat (B, C): the normalised input, kept for backward
 * mean, rstd (ngroups, C): the group statistics, kept for backward
 * batch_mean, batch_var (C): mean over groups of the group means and of the
 *   unbiased group variances, for the running statistics (may be NULL).
 * The B rows are part `part` of `parts` equal parts of a slice forwarded one
 * after the other (gradient accumulation; 0 of 1 otherwise): part 0 zeroes
 * batch_mean and batch_var, every part adds its groups' share of the mean over
 * all parts' groups, so the last part leaves what one pass over the slice in
 * ghost groups of G would, bit for bit. */
void bn_forward_train(float *out, float *xhat, float *mean, float *rstd, float *batch_mean,
                      float *batch_var, const float *in, const float *gamma, const float *beta,
                      int B, int C, int G, float eps, int part, int parts);

/* Evaluation mode: out (B, C) from the running statistics; xhat (B, C), the
 * normalised input, is kept for bn_backward_eval unless NULL. */
void bn_forward_eval(float *out, float *xhat, const float *in, const float *gamma,
                     const float *beta, const float *run_mean, const float *run_var, int B,
                     int C, float eps);

/* Backward of the evaluation mode, an affine map: din = dout gamma /
 * sqrt(run_var + eps) (skipped when NULL); dgamma, dbeta (C) overwritten. */
void bn_backward_eval(float *din, float *dgamma, float *dbeta, const float *dout,
                      const float *xhat, const float *gamma, const float *run_var, int B, int C,
                      float eps);

/* running = (1 - momentum) * running + momentum * batch, PyTorch's convention. */
void bn_update_running(float *run_mean, float *run_var, const float *batch_mean,
                       const float *batch_var, int C, float momentum);

/* din (B, C) from dout (B, C); dgamma, dbeta (C) are overwritten, or added to
 * when accumulate is non-zero. scratch holds 2 C floats (the group sums). */
void bn_backward(float *din, float *dgamma, float *dbeta, float *scratch, const float *dout,
                 const float *xhat, const float *rstd, const float *gamma, int B, int C, int G,
                 int accumulate);

/* ---- over channels: (B, C, HW), each channel's statistics over the HW values
 * of each of its group's samples (n = group size x HW of them). The same
 * quantities as above with a plane where a feature was; the per-feature
 * kernels stay the path of C x 1 x 1 activations (these give the same values
 * for HW = 1 up to rounding, not bit for bit). Parameter gradients are
 * overwritten unless accumulate is given. */

/* out, xhat (B, C, HW); mean, rstd (ngroups, C); batch_mean, batch_var (C),
 * the variance unbiased with n / (n - 1) (may be NULL); part of parts as
 * bn_forward_train. */
void bn_spatial_forward_train(float *out, float *xhat, float *mean, float *rstd,
                              float *batch_mean, float *batch_var, const float *in,
                              const float *gamma, const float *beta, int B, int C, int HW, int G,
                              float eps, int part, int parts);

/* out (B, C, HW) from the running statistics (C each); xhat (B, C, HW) kept
 * unless NULL. */
void bn_spatial_forward_eval(float *out, float *xhat, const float *in, const float *gamma,
                             const float *beta, const float *run_mean, const float *run_var,
                             int B, int C, int HW, float eps);

/* din (B, C, HW) = dout gamma / sqrt(run_var + eps) (skipped when NULL);
 * dgamma, dbeta (C). */
void bn_spatial_backward_eval(float *din, float *dgamma, float *dbeta, const float *dout,
                              const float *xhat, const float *gamma, const float *run_var, int B,
                              int C, int HW, float eps);

/* din (B, C, HW) from dout (B, C, HW) (skipped when NULL); dgamma, dbeta (C)
 * overwritten, or added to when accumulate is non-zero; scratch holds 2 C
 * floats. */
void bn_spatial_backward(float *din, float *dgamma, float *dbeta, float *scratch,
                         const float *dout, const float *xhat, const float *rstd,
                         const float *gamma, int B, int C, int HW, int G, int accumulate);

/* h, hb (C) = sums of dout xhat and of dout over rows [0, rows) of (B, C, HW)
 * arrays: the first rows' share of dgamma and dbeta (any HW; overwritten). */
void bn_param_grad_rows(float *h, float *hb, const float *dout, const float *xhat, int rows,
                        int C, int HW);

#endif
