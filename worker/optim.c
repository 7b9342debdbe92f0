/* Optimizer updates over the parameter arena: SGD, Adam, AdamW, LARS, LAMB.
 *
 * Per tensor, with s = grad_scale, lr = lr * lr_mult, mu = the step's momentum
 * (Adam's beta1), wd = weight decay (0 for vectors with wd_exempt_bn_bias):
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
 * first (over every tensor, so that a sharded optimizer sums the parts of
 * each tensor's norms in one reduction). Norms accumulate in double because a tensor holds up to millions of
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
    return k == OPTIM_ADAM || k == OPTIM_ADAMW || k == OPTIM_LAMB;
}

int optim_init_ranges(struct optim *o, const struct optim_config *cfg, const struct arena *a,
                      const struct optim_range *ranges, int nranges)
{
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->nranges = nranges;
    o->ranges = malloc(((size_t)nranges + 1) * sizeof *o->ranges);
    if (o->ranges)
        for (int j = 0; j < nranges; j++) {
            o->ranges[j] = ranges[j];
            o->n += ranges[j].hi - ranges[j].lo;
        }
    o->m = arena_buffer(o->n);
    /* v stays NULL for SGD and LARS: checkpoints test it to know whether to
     * save a second moment */
    if (optim_has_second_moment(cfg->kind))
        o->v = arena_buffer(o->n);
    o->norms = calloc(2 * (size_t)a->nviews + 1, sizeof *o->norms);
    if (!o->ranges || !o->m || !o->norms || (optim_has_second_moment(cfg->kind) && !o->v)) {
        optim_free(o);
        return -1;
    }
    return 0;
}

int optim_init(struct optim *o, const struct optim_config *cfg, const struct arena *a)
{
    struct optim_range all = { 0, a->n };
    return optim_init_ranges(o, cfg, a, &all, 1);
}

void optim_free(struct optim *o)
{
    free(o->m);
    free(o->v);
    free(o->norms);
    free(o->ranges);
    o->m = o->v = NULL;
    o->norms = NULL;
    o->ranges = NULL;
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

/* The part of one tensor this optimizer owns, with its hyper-parameters. */
struct optim_part {
    float *w, *m, *v;
    const float *g;
    size_t n;
    float rate, wd;
    bool trust_exempt;
};

/* Tensor k clipped to the owned range at state offset `state` (its first
 * element's place in m and v); false when none of it is there or it is frozen. */
static bool optim_part_of(const struct optim *o, const struct arena *a, int k,
                          const struct optim_range *r, size_t state, float lr,
                          struct optim_part *p)
{
    const struct optim_config *c = &o->cfg;
    const struct tensor_view *tv = &a->views[k];
    size_t b = tv->off > r->lo ? tv->off : r->lo;
    size_t e = tv->off + tv->n < r->hi ? tv->off + tv->n : r->hi;
    if (b >= e || tv->lr_mult == 0.0f)
        return false;
    bool vector = tensor_is_vector_param(tv);
    p->w = a->w + b;
    p->g = a->g + b;
    p->m = o->m + state + (b - r->lo);
    p->v = o->v ? o->v + state + (b - r->lo) : NULL;
    p->n = e - b;
    p->rate = lr * tv->lr_mult;
    p->trust_exempt = c->trust_exempt_vectors && vector;
    p->wd = c->wd_exempt_bn_bias && vector ? 0.0f : (float)c->weight_decay;
    return true;
}

/* LARS/LAMB, first pass over every owned part: the norms (and LAMB's moments),
 * then summed over the holders of the other parts of each tensor. */
static void optim_trust_norms(struct optim *o, struct arena *a, float lr, float momentum,
                              float grad_scale, float k1, float k2)
{
    const struct optim_config *c = &o->cfg;
    memset(o->norms, 0, 2 * (size_t)a->nviews * sizeof *o->norms);
    size_t state = 0;
    for (int j = 0; j < o->nranges; j++) {
        const struct optim_range *r = &o->ranges[j];
        for (int k = 0; k < a->nviews; k++) {
            struct optim_part p;
            if (!optim_part_of(o, a, k, r, state, lr, &p) || p.trust_exempt)
                continue;
            double x, y;
            if (c->kind == OPTIM_LARS)
                optim_lars_norms(p.w, p.g, p.n, grad_scale, p.wd, &x, &y);
            else
                optim_lamb_moments(p.w, p.g, p.m, p.v, p.n, momentum, c->beta2, c->eps,
                                   grad_scale, p.wd, k1, k2, &x, &y);
            o->norms[2 * k] += x;
            o->norms[2 * k + 1] += y;
        }
        state += r->hi - r->lo;
    }
    if (o->sum_norms)
        o->sum_norms(o->sum_user, o->norms, 2 * a->nviews);
}

/* The update of tensor k's part in range r (after the norms, for LARS/LAMB). */
static void optim_update_part(struct optim *o, struct arena *a, int k,
                              const struct optim_range *r, size_t state, float lr,
                              float momentum, float grad_scale, float k1, float k2)
{
    const struct optim_config *c = &o->cfg;
    bool trust = c->kind == OPTIM_LARS || c->kind == OPTIM_LAMB;
    struct optim_part p;
    if (!optim_part_of(o, a, k, r, state, lr, &p))
        return;
    const double *nk = trust ? &o->norms[2 * k] : NULL;
    switch (c->kind) {
    case OPTIM_SGD:
        if (c->wd_mode == WD_DECOUPLED)
            optim_sgd_tensor(p.w, p.g, p.m, p.n, p.rate, momentum, grad_scale, 0.0f,
                             1.0f - p.rate * p.wd, c->nesterov);
        else
            optim_sgd_tensor(p.w, p.g, p.m, p.n, p.rate, momentum, grad_scale, p.wd, 1.0f,
                             c->nesterov);
        break;
    case OPTIM_ADAM:
        optim_adam_tensor(p.w, p.g, p.m, p.v, p.n, p.rate, momentum, c->beta2, c->eps,
                          grad_scale, p.wd, 1.0f, k1, k2);
        break;
    case OPTIM_ADAMW:
        optim_adam_tensor(p.w, p.g, p.m, p.v, p.n, p.rate, momentum, c->beta2, c->eps,
                          grad_scale, 0.0f, 1.0f - p.rate * p.wd, k1, k2);
        break;
    case OPTIM_LARS: {
        if (p.trust_exempt) {
            optim_lars_tensor(p.w, p.g, p.m, p.n, p.rate, momentum, grad_scale, 0.0f,
                              c->nesterov);
            break;
        }
        float t = optim_trust((double)(float)c->trust_coef * sqrt(nk[0]), sqrt(nk[1]), nk[0],
                              nk[1]);
        optim_lars_tensor(p.w, p.g, p.m, p.n, p.rate * t, momentum, grad_scale, p.wd,
                          c->nesterov);
        break;
    }
    case OPTIM_LAMB: {
        if (p.trust_exempt) {
            /* trust 1 and no decay: exactly Adam, in one pass */
            optim_adam_tensor(p.w, p.g, p.m, p.v, p.n, p.rate, momentum, c->beta2, c->eps,
                              grad_scale, 0.0f, 1.0f, k1, k2);
            break;
        }
        float t = optim_trust(sqrt(nk[0]), sqrt(nk[1]), nk[0], nk[1]);
        optim_lamb_write(p.w, p.m, p.v, p.n, p.rate * t, c->eps, p.wd, k1, k2);
        break;
    }
    }
}

void optim_step(struct optim *o, struct arena *a, float lr, float momentum, float grad_scale)
{
    const struct optim_config *c = &o->cfg;
    o->t++;
    /* in double: 1 - b2^t loses most of its digits in float for b2 near 1;
     * b2 itself is the float the moment update uses */
    float k1 = (float)(1.0 / (1.0 - pow((double)momentum, (double)o->t)));
    float k2 = (float)(1.0 / (1.0 - pow((double)(float)c->beta2, (double)o->t)));
    bool trust = c->kind == OPTIM_LARS || c->kind == OPTIM_LAMB;
    if (trust)
        optim_trust_norms(o, a, lr, momentum, grad_scale, k1, k2);
    size_t state = 0;
    for (int j = 0; j < o->nranges; j++) {
        const struct optim_range *r = &o->ranges[j];
        for (int k = 0; k < a->nviews; k++)
            optim_update_part(o, a, k, r, state, lr, momentum, grad_scale, k1, k2);
        state += r->hi - r->lo;
    }
}

float optim_clip_grad_scale(double summed_sq, int B, double clip_norm)
{
    double norm = sqrt(summed_sq) / (double)B;
    if (clip_norm <= 0 || !(norm > clip_norm))
        return 1.0f / (float)B;
    return (float)(clip_norm / norm / (double)B);
}
