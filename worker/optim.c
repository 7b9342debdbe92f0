/* Optimizer updates over the parameter arena, one fused pass per tensor.
 *
 * SGD (PyTorch's form): g' = s g + wd w (L2), buf = mu buf + g',
 *   w -= lr (g' + mu buf) with Nesterov, else lr buf; decoupled decay is
 *   w -= lr wd w instead of the L2 term. The rate multiplies the buffer, so
 *   a changing rate needs no correction: this is Goyal et al.'s corrected
 *   momentum update (they write the rate inside the buffer and rescale it).
 * Adam (Kingma & Ba) with L2 decay, AdamW (Loshchilov & Hutter) with
 *   decoupled decay w -= lr wd w; bias-corrected moments.
 * LARS (You et al. 2017): per tensor g' = s g + wd w, trust = eta |w| / |g'|
 *   (1 when either norm is 0), buf = mu buf + lr trust g', w -= buf
 *   (Nesterov: w -= lr trust g' + mu buf).
 * LAMB (You et al. 2019): Adam moments, r = mhat / (sqrt(vhat) + eps) + wd w,
 *   trust = |w| / |r| (1 when either is 0), w -= lr trust r.
 * Biases and batch-norm parameters get no decay with wd_exempt_vectors and a
 * trust ratio of 1 with trust_exempt_vectors. A tensor whose lr_mult is 0 is
 * frozen: neither it nor its state moves. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "simd.h"

static float *zalloc(size_t n)
{
    size_t bytes = ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

int optim_init(struct optim *o, const struct optim_config *cfg, size_t n)
{
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->n = n;
    o->m = zalloc(n);
    bool second = cfg->kind == OPT_ADAM || cfg->kind == OPT_ADAMW || cfg->kind == OPT_LAMB;
    if (second)
        o->v = zalloc(n);
    if (!o->m || (second && !o->v)) {
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

DDT_HOT static void sgd_tensor(float *w, const float *g, float *buf, size_t n, float lr,
                               float mu, float s, float l2, float decoupled, bool nesterov)
{
    if (nesterov) {
        for (size_t i = 0; i < n; i++) {
            float gi = s * g[i] + l2 * w[i];
            float b = mu * buf[i] + gi;
            buf[i] = b;
            w[i] = w[i] - lr * decoupled * w[i] - lr * (gi + mu * b);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float gi = s * g[i] + l2 * w[i];
            float b = mu * buf[i] + gi;
            buf[i] = b;
            w[i] = w[i] - lr * decoupled * w[i] - lr * b;
        }
    }
}

/* Moments, then w -= lr (mhat / (sqrt(vhat) + eps) + decoupled w). */
DDT_HOT static void adam_tensor(float *w, const float *g, float *m, float *v, size_t n, float lr,
                                float b1, float b2, float eps, float s, float l2,
                                float decoupled, float c1, float c2)
{
    for (size_t i = 0; i < n; i++) {
        float gi = s * g[i] + l2 * w[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float dir = (mi / c1) / (sqrtf(vi / c2) + eps);
        w[i] = w[i] - lr * (dir + decoupled * w[i]);
    }
}

static double norm2(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return s;
}

/* |s g + wd w|^2 without materialising it. */
static double scaled_grad_norm2(const float *g, const float *w, size_t n, float s, float wd)
{
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) {
        double gi = (double)s * g[i] + (double)wd * w[i];
        acc += gi * gi;
    }
    return acc;
}

static void lars_tensor(float *w, const float *g, float *buf, size_t n, float lr, float mu,
                        float s, float wd, float eta, bool exempt, bool nesterov)
{
    float trust = 1.0f;
    if (!exempt) {
        double wn = sqrt(norm2(w, n)), gn = sqrt(scaled_grad_norm2(g, w, n, s, wd));
        if (wn > 0 && gn > 0)
            trust = (float)(eta * wn / gn);
    }
    float step = lr * trust;
    for (size_t i = 0; i < n; i++) {
        float gi = s * g[i] + wd * w[i];
        float b = mu * buf[i] + step * gi;
        buf[i] = b;
        w[i] -= nesterov ? step * gi + mu * b : b;
    }
}

static void lamb_tensor(float *w, const float *g, float *m, float *v, size_t n, float lr,
                        float b1, float b2, float eps, float s, float wd, bool exempt, float c1,
                        float c2)
{
    /* first pass: moments and the ratio's norm; second: the update */
    double rn = 0.0, wn = 0.0;
    for (size_t i = 0; i < n; i++) {
        float gi = s * g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        double r = (mi / c1) / (sqrtf(vi / c2) + eps) + wd * w[i];
        rn += r * r;
        wn += (double)w[i] * w[i];
    }
    float trust = 1.0f;
    if (!exempt && rn > 0 && wn > 0)
        trust = (float)(sqrt(wn) / sqrt(rn));
    for (size_t i = 0; i < n; i++) {
        float r = (m[i] / c1) / (sqrtf(v[i] / c2) + eps) + wd * w[i];
        w[i] -= lr * trust * r;
    }
}

void optim_step(struct optim *o, struct arena *a, float lr, float momentum, float grad_scale)
{
    const struct optim_config *c = &o->cfg;
    o->t++;
    float c1 = 1.0f - powf(momentum, (float)o->t);
    float c2 = 1.0f - powf(c->beta2, (float)o->t);
    for (int k = 0; k < a->nviews; k++) {
        const struct tensor_view *tv = &a->views[k];
        float rate = lr * tv->lr_mult;
        if (tv->lr_mult == 0.0f)
            continue;
        bool vector = tensor_is_vector_param(tv);
        float wd = c->wd_exempt_vectors && vector ? 0.0f : c->weight_decay;
        float *w = a->w + tv->off, *m = o->m + tv->off, *v = o->v ? o->v + tv->off : NULL;
        const float *g = a->g + tv->off;
        bool exempt = c->trust_exempt_vectors && vector;
        switch (c->kind) {
        case OPT_SGD: {
            bool decoupled = c->wd_mode == WD_DECOUPLED;
            sgd_tensor(w, g, m, tv->n, rate, momentum, grad_scale, decoupled ? 0.0f : wd,
                       decoupled ? wd : 0.0f, c->nesterov);
            break;
        }
        case OPT_ADAM:
            adam_tensor(w, g, m, v, tv->n, rate, momentum, c->beta2, c->eps, grad_scale, wd,
                        0.0f, c1, c2);
            break;
        case OPT_ADAMW:
            adam_tensor(w, g, m, v, tv->n, rate, momentum, c->beta2, c->eps, grad_scale,
                        0.0f, wd, c1, c2);
            break;
        case OPT_LARS:
            lars_tensor(w, g, m, tv->n, rate, momentum, grad_scale, exempt ? 0.0f : wd,
                        c->trust_coef, exempt, c->nesterov);
            break;
        case OPT_LAMB:
            lamb_tensor(w, g, m, v, tv->n, rate, momentum, c->beta2, c->eps, grad_scale,
                        exempt ? 0.0f : wd, exempt, c1, c2);
            break;
        }
    }
}
