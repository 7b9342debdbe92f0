/* Optimizer updates over the parameter arena: SGD, Adam, AdamW, LARS, LAMB.
 *
 * Per tensor, with s = grad_scale, lr = lr * lr_mult, mu = the step's momentum
 * (Adam's beta1), wd = weight decay (0 for vectors with wd_exempt_vectors):
 *
 * SGD (PyTorch):  g' = s g (+ wd w in L2 mode); buf = mu buf + g';
 *                 d = g' + mu buf (Nesterov) or buf; w -= lr d
 *                 (decoupled mode: also w -= lr wd w).
 * Adam / AdamW:   g' = s g (+ wd w, Adam only); m = b1 m + (1-b1) g';
 *                 v = b2 v + (1-b2) g'^2; w -= lr mhat / (sqrt(vhat) + eps)
 *                 with mhat = m / (1-b1^t), vhat = v / (1-b2^t)
 *                 (AdamW: also w -= lr wd w).
 * LARS (You et al. 2017): g' = s g + wd w;
 *                 trust = eta |w| / |g'| if both norms > 0, else 1;
 *                 buf = mu buf + lr trust g';
 *                 w -= buf, or with Nesterov w -= lr trust g' + mu buf.
 * LAMB (You et al. 2019): Adam moments of s g; r = mhat / (sqrt(vhat) + eps) + wd w;
 *                 trust = |w| / |r| if both norms > 0, else 1; w -= lr trust r.
 * With trust_exempt_vectors, biases and batch-norm parameters get trust 1 and
 * no decay under LARS and LAMB. A tensor with lr_mult 0 is frozen: neither it
 * nor its optimizer state moves.
 *
 * Each update is one pass over the tensor; LARS and LAMB need a norm pass
 * first. Norms accumulate in double because a tensor holds up to millions of
 * terms. Buffers never alias (parameters, gradients and each moment are
 * separate allocations), hence restrict, so the loops vectorise unversioned;
 * the loops with sqrtf (Adam, LAMB) vectorise only under -fno-math-errno, as
 * otherwise every sqrtf must be able to set errno through a library call. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "simd.h"


static bool optim_has_second_moment(enum optim_kind k)
{
    return k == OPT_ADAM || k == OPT_ADAMW || k == OPT_LAMB;
}

int optim_init(struct optim *o, const struct optim_config *cfg, size_t n)
{
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->n = n;
    o->m = arena_buffer(n);
    /* v stays NULL for SGD and LARS: checkpoints test it to know whether to
     * save a second moment */
    if (optim_has_second_moment(cfg->kind))
        o->v = arena_buffer(n);
    if (!o->m || (optim_has_second_moment(cfg->kind) && !o->v)) {
        optim_free(o);
        return -1;
    }
    return 0;
}

void optim_free(struct optim *o)
{
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

/* keep = 1 - lr wd for decoupled decay, 1 otherwise (PyTorch scales w first). */
DDT_HOT static void optim_sgd_tensor(float *restrict w, const float *restrict g,
                                     float *restrict buf, size_t n, float lr, float mu, float s,
                                     float l2, float keep, bool nesterov)
{
    if (nesterov) {
        for (size_t i = 0; i < n; i++) {
            float gi = s * g[i] + l2 * w[i];
            float b = mu * buf[i] + gi;
            buf[i] = b;
            w[i] = keep * w[i] - lr * (gi + mu * b);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float gi = s * g[i] + l2 * w[i];
            float b = mu * buf[i] + gi;
            buf[i] = b;
            w[i] = keep * w[i] - lr * b;
        }
    }
}

/* k1 = 1 / (1 - b1^t) and k2 = 1 / (1 - b2^t) are the bias corrections. */
DDT_HOT static void optim_adam_tensor(float *restrict w, const float *restrict g,
                                      float *restrict m, float *restrict v, size_t n, float lr,
                                      float b1, float b2, float eps, float s, float l2,
                                      float keep, float k1, float k2)
{
    float c1 = 1.0f - b1, c2 = 1.0f - b2;
    for (size_t i = 0; i < n; i++) {
        float gi = s * g[i] + l2 * w[i];
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = keep * w[i] - lr * (mi * k1) / (sqrtf(vi * k2) + eps);
    }
}

/* Norm sums go in OPTIM_LANES independent double accumulators: a single
 * running sum is a chain of dependent adds that the compiler may not reorder,
 * which runs several times slower than the update pass itself. */
#define OPTIM_LANES 8

static double optim_lanes_sum(const double *x)
{
    double s = 0.0;
    for (int j = 0; j < OPTIM_LANES; j++)
        s += x[j];
    return s;
}

/* |w|^2 and |s g + wd w|^2, the latter rounded exactly as the update uses it. */
DDT_HOT static void optim_lars_norms(const float *restrict w, const float *restrict g, size_t n,
                                     float s, float wd, double *w2, double *g2)
{
    double ws[OPTIM_LANES] = { 0 }, gs[OPTIM_LANES] = { 0 };
    for (size_t i0 = 0; i0 < n; i0 += OPTIM_LANES) {
        int lanes = n - i0 < OPTIM_LANES ? (int)(n - i0) : OPTIM_LANES;
        for (int j = 0; j < lanes; j++) {
            size_t i = i0 + (size_t)j;
            float gi = s * g[i] + wd * w[i];
            ws[j] += (double)w[i] * w[i];
            gs[j] += (double)gi * gi;
        }
    }
    *w2 = optim_lanes_sum(ws);
    *g2 = optim_lanes_sum(gs);
}

/* step = lr * trust. */
DDT_HOT static void optim_lars_tensor(float *restrict w, const float *restrict g,
                                      float *restrict buf, size_t n, float step, float mu,
                                      float s, float wd, bool nesterov)
{
    if (nesterov) {
        for (size_t i = 0; i < n; i++) {
            float u = step * (s * g[i] + wd * w[i]);
            float b = mu * buf[i] + u;
            buf[i] = b;
            w[i] -= u + mu * b;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float b = mu * buf[i] + step * (s * g[i] + wd * w[i]);
            buf[i] = b;
            w[i] -= b;
        }
    }
}

/* The moment update of LAMB, accumulating |w|^2 and |r|^2 on the way; the
 * ratio is recomputed in the write pass rather than stored, since storing it
 * would need a scratch buffer as large as the model. */
DDT_HOT static void optim_lamb_moments(const float *restrict w, const float *restrict g,
                                       float *restrict m, float *restrict v, size_t n, float b1,
                                       float b2, float eps, float s, float wd, float k1,
                                       float k2, double *w2, double *r2)
{
    float c1 = 1.0f - b1, c2 = 1.0f - b2;
    double ws[OPTIM_LANES] = { 0 }, rs[OPTIM_LANES] = { 0 };
    for (size_t i0 = 0; i0 < n; i0 += OPTIM_LANES) {
        int lanes = n - i0 < OPTIM_LANES ? (int)(n - i0) : OPTIM_LANES;
        for (int j = 0; j < lanes; j++) {
            size_t i = i0 + (size_t)j;
            float gi = s * g[i];
            float mi = b1 * m[i] + c1 * gi;
            float vi = b2 * v[i] + c2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            float r = (mi * k1) / (sqrtf(vi * k2) + eps) + wd * w[i];
            ws[j] += (double)w[i] * w[i];
            rs[j] += (double)r * r;
        }
    }
    *w2 = optim_lanes_sum(ws);
    *r2 = optim_lanes_sum(rs);
}

/* step = lr * trust. */
DDT_HOT static void optim_lamb_write(float *restrict w, const float *restrict m,
                                     const float *restrict v, size_t n, float step, float eps,
                                     float wd, float k1, float k2)
{
    for (size_t i = 0; i < n; i++) {
        float r = (m[i] * k1) / (sqrtf(v[i] * k2) + eps) + wd * w[i];
        w[i] -= step * r;
    }
}

/* ratio = num / den when both norms are positive, else 1 (a fresh zero tensor
 * or a zero gradient must not stall or blow up the step). */
static float optim_trust(double num, double den, double wn2, double dn2)
{
    if (wn2 > 0.0 && dn2 > 0.0)
        return (float)(num / den);
    return 1.0f;
}

void optim_step(struct optim *o, struct arena *a, float lr, float momentum, float grad_scale)
{
    const struct optim_config *c = &o->cfg;
    o->t++;
    /* in double: 1 - b2^t loses most of its digits in float for b2 near 1 */
    float k1 = (float)(1.0 / (1.0 - pow((double)momentum, (double)o->t)));
    float k2 = (float)(1.0 / (1.0 - pow((double)c->beta2, (double)o->t)));
    for (int k = 0; k < a->nviews; k++) {
        const struct tensor_view *tv = &a->views[k];
        if (tv->lr_mult == 0.0f)
            continue;
        float rate = lr * tv->lr_mult;
        bool vector = tensor_is_vector_param(tv);
        bool trust_exempt = c->trust_exempt_vectors && vector;
        float wd = c->wd_exempt_vectors && vector ? 0.0f : c->weight_decay;
        float *w = a->w + tv->off, *m = o->m + tv->off, *v = o->v ? o->v + tv->off : NULL;
        const float *g = a->g + tv->off;
        size_t n = tv->n;
        switch (c->kind) {
        case OPT_SGD:
            if (c->wd_mode == WD_DECOUPLED)
                optim_sgd_tensor(w, g, m, n, rate, momentum, grad_scale, 0.0f, 1.0f - rate * wd,
                                 c->nesterov);
            else
                optim_sgd_tensor(w, g, m, n, rate, momentum, grad_scale, wd, 1.0f, c->nesterov);
            break;
        case OPT_ADAM:
            optim_adam_tensor(w, g, m, v, n, rate, momentum, c->beta2, c->eps, grad_scale, wd,
                              1.0f, k1, k2);
            break;
        case OPT_ADAMW:
            optim_adam_tensor(w, g, m, v, n, rate, momentum, c->beta2, c->eps, grad_scale, 0.0f,
                              1.0f - rate * wd, k1, k2);
            break;
        case OPT_LARS: {
            if (trust_exempt) {
                optim_lars_tensor(w, g, m, n, rate, momentum, grad_scale, 0.0f, c->nesterov);
                break;
            }
            double w2, g2;
            optim_lars_norms(w, g, n, grad_scale, wd, &w2, &g2);
            float trust = optim_trust((double)c->trust_coef * sqrt(w2), sqrt(g2), w2, g2);
            optim_lars_tensor(w, g, m, n, rate * trust, momentum, grad_scale, wd, c->nesterov);
            break;
        }
        case OPT_LAMB: {
            if (trust_exempt) {
                /* trust 1 and no decay: exactly Adam, in one pass */
                optim_adam_tensor(w, g, m, v, n, rate, momentum, c->beta2, c->eps, grad_scale,
                                  0.0f, 1.0f, k1, k2);
                break;
            }
            double w2, r2;
            optim_lamb_moments(w, g, m, v, n, momentum, c->beta2, c->eps, grad_scale, wd, k1, k2,
                               &w2, &r2);
            float trust = optim_trust(sqrt(w2), sqrt(r2), w2, r2);
            optim_lamb_write(w, m, v, n, rate * trust, c->eps, wd, k1, k2);
            break;
        }
        }
    }
}
