/* The largest Hessian eigenvalues by power iteration with deflation, on
 * Hessian-vector products from central differences of gradients. Pure
 * numerics over callbacks, so that they are tested without MPI. */
#ifndef DDT_HESSIAN_H
#define DDT_HESSIAN_H

#include <stddef.h>
#include <stdint.h>

/* grad (n) = the gradient of the loss at x (n); returns the loss. */
typedef double (*grad_fn)(void *user, const float *x, float *grad);

/* out (n) = H v, the Hessian at x0 times v, by central differences:
 * (grad(x0 + r v) - grad(x0 - r v)) / 2r with r = step / |v|.
 * work holds 3 n floats. */
void hvp_central(grad_fn grad, void *user, const float *x0, const float *v, size_t n,
                 double step, float *out, float *work);

/* The default of `ddtrain hessian --fd-step`: the central difference's radius
 * relative to max(1, |x|). Chosen against a closed-form Hessian at weight
 * norms of 40 and 80 (tests/check_analysis.c): 1e-3 read the top eigenvalue
 * up to 1.6% off (the curvature changes over the radius), 1e-4 within
 * 0.02%, and 1e-5 loses to the float gradients' rounding (0.06% at 40). */
#define HESSIAN_FD_STEP 1e-4

/* The radius r |v| of hvp_central for a relative step: step x max(1, |x|). */
double hessian_fd_radius(double step, const float *x, size_t n);

/* Applies the Hessian: out (n) = H v. */
typedef void (*hvp_fn)(void *user, const float *v, float *out);

struct eigen_result {
    double value;     /* Rayleigh quotient v.Hv at the last iteration */
    int iterations;
    double change;    /* relative change of the value in the last iteration */
    int converged;
};

/* The top k eigenpairs (largest magnitude) of a symmetric operator: power
 * iteration from a seeded random start, Hv deflated by the pairs already
 * found (H - sum lambda_j u_j u_j^T), stopping when the value changes by
 * less than tol relatively or after iters iterations; returned largest
 * magnitude first. vecs holds k n floats (the eigenvectors, unit norm);
 * work holds n floats. */
void power_iteration(hvp_fn hvp, void *user, size_t n, int k, int iters, double tol,
                     uint64_t seed, struct eigen_result *res, float *vecs, float *work);

#endif
