/* Power iteration with deflation and finite-difference Hessian-vector products. */
#include "hessian.h"

#include <math.h>
#include <string.h>

#include "rng.h"

static double dotf(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

void hvp_central(grad_fn grad, void *user, const float *x0, const float *v, size_t n,
                 double step, float *out, float *work)
{
    float *x = work, *gp = work + n, *gm = work + 2 * n;
    double vn = sqrt(dotf(v, v, n));
    if (vn == 0) {
        memset(out, 0, n * sizeof *out);
        return;
    }
    double r = step / vn;
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(x0[i] + r * v[i]);
    grad(user, x, gp);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(x0[i] - r * v[i]);
    grad(user, x, gm);
    for (size_t i = 0; i < n; i++)
        out[i] = (float)(((double)gp[i] - gm[i]) / (2.0 * r));
}

double hessian_fd_radius(double step, const float *x, size_t n)
{
    return step * fmax(1.0, sqrt(dotf(x, x, n)));
}

static void normalise(float *v, size_t n)
{
    double s = sqrt(dotf(v, v, n));
    if (s > 0)
        for (size_t i = 0; i < n; i++)
            v[i] = (float)(v[i] / s);
}

void power_iteration(hvp_fn hvp, void *user, size_t n, int k, int iters, double tol,
                     uint64_t seed, struct eigen_result *res, float *vecs, float *work)
{
    float *hv = work;
    for (int e = 0; e < k; e++) {
        float *v = vecs + (size_t)e * n;
        for (size_t i = 0; i < n; i++)
            v[i] = (float)rng_normal(seed, RNG_DIRECTION, 1000 + (uint64_t)e, i, 0);
        normalise(v, n);
        double value = 0, change = INFINITY;
        int it = 0, converged = 0;
        while (it < iters) {
            hvp(user, v, hv);
            /* deflation: remove the directions already found */
            for (int j = 0; j < e; j++) {
                const float *u = vecs + (size_t)j * n;
                double c = res[j].value * dotf(u, v, n);
                for (size_t i = 0; i < n; i++)
                    hv[i] = (float)(hv[i] - c * u[i]);
            }
            double next = dotf(v, hv, n);
            it++;
            change = it > 1 ? fabs(next - value) / (fabs(next) > 0 ? fabs(next) : 1.0) : INFINITY;
            value = next;
            memcpy(v, hv, n * sizeof *v);
            normalise(v, n);
            if (change < tol) {
                converged = 1;
                break;
            }
        }
        res[e] = (struct eigen_result){ .value = value, .iterations = it, .change = change,
                                        .converged = converged };
    }
    /* largest first: a later pair can beat an earlier one that converged
     * slowly on a cluster of close eigenvalues */
    for (int i = 1; i < k; i++) {
        for (int j = i; j > 0 && fabs(res[j].value) > fabs(res[j - 1].value); j--) {
            struct eigen_result r = res[j];
            res[j] = res[j - 1];
            res[j - 1] = r;
            float *a = vecs + (size_t)j * n, *b = vecs + (size_t)(j - 1) * n;
            for (size_t q = 0; q < n; q++) {
                float tmp = a[q];
                a[q] = b[q];
                b[q] = tmp;
            }
        }
    }
}
