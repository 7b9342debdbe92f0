/* Model construction from a spec, and forward/backward over a slice. */
#include "model.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batchnorm.h"
#include "dataset.h"
#include "dropout.h"
#include "linear.h"
#include "relu.h"
#include "rng.h"
#include "xent.h"

/* ---- layer adapters: the kernels behind the layer interface ---------------- */

static void linear_fwd(struct layer *l, const struct pass_ctx *ctx, float *out, const float *in,
                       int B)
{
    (void)ctx;
    linear_forward(out, in, arena_w(l->arena, l->w_view), arena_w(l->arena, l->b_view), B,
                   l->in_dim, l->out_dim);
}

static void linear_bwd(struct layer *l, const struct arena *a, float *din, const float *dout,
                       const float *in, const float *out, int B)
{
    (void)out;
    linear_backward(din, arena_g(a, l->w_view), arena_g(a, l->b_view), dout, in,
                    arena_w(a, l->w_view), B, l->in_dim, l->out_dim, 0);
}

static void bn_fwd(struct layer *l, const struct pass_ctx *ctx, float *out, const float *in,
                   int B)
{
    const float *gamma = arena_w(l->arena, l->w_view), *beta = arena_w(l->arena, l->b_view);
    l->last_train = ctx->train;
    if (!ctx->train) {
        bn_forward_eval(out, l->xhat, in, gamma, beta, l->run_mean, l->run_var, B, l->out_dim,
                        l->bn_eps);
        return;
    }
    int G = l->bn_group > 0 ? l->bn_group : B;
    bn_forward_train(out, l->xhat, l->mean, l->rstd, l->batch_mean, l->batch_var, in, gamma,
                     beta, B, l->out_dim, G, l->bn_eps);
    /* sums over groups, so ranks can add their blocks before averaging */
    float groups = (float)bn_group_count(B, G);
    for (int c = 0; c < l->out_dim; c++) {
        l->batch_mean[c] *= groups;
        l->batch_var[c] *= groups;
    }
}

static void bn_bwd(struct layer *l, const struct arena *a, float *din, const float *dout,
                   const float *in, const float *out, int B)
{
    (void)in;
    (void)out;
    if (!l->last_train) {
        bn_backward_eval(din, arena_g(a, l->w_view), arena_g(a, l->b_view), dout, l->xhat,
                         arena_w(a, l->w_view), l->run_var, B, l->out_dim, l->bn_eps);
        return;
    }
    int G = l->bn_group > 0 ? l->bn_group : B;
    bn_backward(din, arena_g(a, l->w_view), arena_g(a, l->b_view), l->scratch, dout, l->xhat,
                l->rstd, arena_w(a, l->w_view), B, l->out_dim, G, 0);
}

static void relu_fwd(struct layer *l, const struct pass_ctx *ctx, float *out, const float *in,
                     int B)
{
    (void)ctx;
    relu_forward(out, in, (size_t)B * (size_t)l->out_dim);
}

static void relu_bwd(struct layer *l, const struct arena *a, float *din, const float *dout,
                     const float *in, const float *out, int B)
{
    (void)a;
    (void)in;
    relu_backward(din, dout, out, (size_t)B * (size_t)l->out_dim);
}

static void dropout_fwd(struct layer *l, const struct pass_ctx *ctx, float *out, const float *in,
                        int B)
{
    float p = ctx->train ? l->p : 0.0f;
    l->p_last = p;
    struct dropout_key key = { .seed = ctx->seed, .layer = (uint64_t)l->index,
                               .step = ctx->step, .first_sample = ctx->first_sample };
    dropout_forward(out, l->mask, in, B, l->out_dim, p, &key);
}

static void dropout_bwd(struct layer *l, const struct arena *a, float *din, const float *dout,
                        const float *in, const float *out, int B)
{
    (void)a;
    (void)in;
    (void)out;
    dropout_backward(din, dout, l->mask, B, l->out_dim, l->p_last);
}

static const struct layer_ops linear_ops = { "fc", linear_fwd, linear_bwd };
static const struct layer_ops bn_ops = { "bn", bn_fwd, bn_bwd };
static const struct layer_ops relu_ops = { "relu", relu_fwd, relu_bwd };
static const struct layer_ops dropout_ops = { "dropout", dropout_fwd, dropout_bwd };

/* ---- construction ----------------------------------------------------------- */


/* Declares every tensor and fills in layer shapes; no storage yet. */
static int declare_layers(struct model *m, const struct model_options *opt, char *err,
                          int errlen)
{
    const struct spec *s = &m->spec;
    int width = s->items[0].width, nfc = 0, nbn = 0, trainable = -1;
    m->max_width = width;
    for (int i = 1; i < s->n; i++) {
        const struct spec_item *it = &s->items[i];
        struct layer *l = &m->layers[m->nlayers];
        char name[32];
        memset(l, 0, sizeof *l);
        l->index = m->nlayers;
        l->in_dim = width;
        l->out_dim = width;
        l->w_view = l->b_view = -1;
        l->arena = &m->arena;
        switch (it->kind) {
        case SPEC_LINEAR:
            l->ops = &linear_ops;
            l->out_dim = it->width;
            trainable++;
            nfc++;
            snprintf(name, sizeof name, "fc%d.weight", nfc);
            l->w_view = arena_declare(&m->arena, name, ROLE_WEIGHT, it->width, width, trainable);
            snprintf(name, sizeof name, "fc%d.bias", nfc);
            l->b_view = arena_declare(&m->arena, name, ROLE_BIAS, it->width, 1, trainable);
            break;
        case SPEC_BN:
            l->ops = &bn_ops;
            nbn++;
            l->bn_group = opt->bn_group;
            l->bn_eps = opt->bn_eps;
            l->bn_momentum = opt->bn_momentum;
            snprintf(name, sizeof name, "bn%d.weight", nbn);
            l->w_view = arena_declare(&m->arena, name, ROLE_BN_GAMMA, width, 1,
                                      trainable < 0 ? 0 : trainable);
            snprintf(name, sizeof name, "bn%d.bias", nbn);
            l->b_view = arena_declare(&m->arena, name, ROLE_BN_BETA, width, 1,
                                      trainable < 0 ? 0 : trainable);
            m->bn_running_n += 2 * (size_t)width;
            break;
        case SPEC_RELU:
            l->ops = &relu_ops;
            break;
        case SPEC_DROPOUT:
            l->ops = &dropout_ops;
            l->p = it->p;
            break;
        case SPEC_INPUT:
            snprintf(err, errlen, "in: may only come first");
            return -1;
        }
        if ((l->w_view < 0 || l->b_view < 0) && (it->kind == SPEC_LINEAR || it->kind == SPEC_BN)) {
            snprintf(err, errlen, "out of memory declaring tensors");
            return -1;
        }
        width = l->out_dim;
        if (width > m->max_width)
            m->max_width = width;
        m->nlayers++;
    }
    return 0;
}

static int allocate_buffers(struct model *m)
{
    size_t B = (size_t)m->max_batch;
    if (arena_allocate(&m->arena))
        return -1;
    m->act = calloc((size_t)m->nlayers + 1, sizeof *m->act);
    if (!m->act)
        return -1;
    m->act[0] = arena_buffer(B * (size_t)m->in_dim);
    m->dact[0] = arena_buffer(B * (size_t)m->max_width);
    m->dact[1] = arena_buffer(B * (size_t)m->max_width);
    m->probs = arena_buffer(B * (size_t)m->classes);
    m->labels = calloc(B, sizeof *m->labels);
    m->bn_running = arena_buffer(m->bn_running_n);
    m->bn_batch = arena_buffer(m->bn_running_n + 1);
    m->in_mean = arena_buffer((size_t)m->in_dim);
    m->in_inv_std = arena_buffer((size_t)m->in_dim);
    if (!m->act[0] || !m->dact[0] || !m->dact[1] || !m->probs || !m->labels || !m->bn_running || !m->bn_batch ||
        !m->in_mean || !m->in_inv_std)
        return -1;
    for (int i = 0; i < m->in_dim; i++)
        m->in_inv_std[i] = 1.0f;

    float *run = m->bn_running;
    size_t half = m->bn_running_n / 2;
    for (int i = 0; i < m->nlayers; i++) {
        struct layer *l = &m->layers[i];
        size_t C = (size_t)l->out_dim;
        m->act[i + 1] = arena_buffer(B * C);
        if (!m->act[i + 1])
            return -1;
        if (l->ops == &bn_ops) {
            size_t groups = B; /* enough for any group size */
            l->xhat = arena_buffer(B * C);
            l->mean = arena_buffer(groups * C);
            l->rstd = arena_buffer(groups * C);
            l->scratch = arena_buffer(2 * C);
            /* means in the first half of the blocks, variances in the second */
            l->run_mean = run;
            l->run_var = run + half;
            l->batch_mean = m->bn_batch + (run - m->bn_running);
            l->batch_var = l->batch_mean + half;
            run += C;
            if (!l->xhat || !l->mean || !l->rstd || !l->scratch)
                return -1;
        }
        if (l->ops == &dropout_ops) {
            l->mask = malloc(B * C);
            if (!l->mask)
                return -1;
        }
    }
    return 0;
}

int model_build(struct model *m, const struct spec *s, int max_batch,
                const struct model_options *opt, char *err, int errlen)
{
    memset(m, 0, sizeof *m);
    m->spec = *s;
    m->in_dim = spec_input_width(s);
    m->classes = spec_output_width(s);
    m->max_batch = max_batch;
    arena_init(&m->arena);
    if (max_batch < 1) {
        snprintf(err, errlen, "batch size %d must be at least 1", max_batch);
        return -1;
    }
    m->layers = calloc((size_t)s->n, sizeof *m->layers);
    if (!m->layers) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (declare_layers(m, opt, err, errlen))
        goto fail;
    if (allocate_buffers(m)) {
        snprintf(err, errlen, "out of memory allocating %zu parameters and activations for batch %d",
                 m->arena.n, max_batch);
        goto fail;
    }
    return 0;
fail:
    model_free(m);
    return -1;
}

void model_free(struct model *m)
{
    for (int i = 0; i < m->nlayers; i++) {
        struct layer *l = &m->layers[i];
        free(l->xhat);
        free(l->mean);
        free(l->rstd);
        free(l->scratch);
        free(l->mask);
    }
    if (m->act)
        for (int i = 0; i <= m->nlayers; i++)
            free(m->act[i]);
    free(m->act);
    free(m->dact[0]);
    free(m->dact[1]);
    free(m->probs);
    free(m->labels);
    free(m->bn_running);
    free(m->bn_batch);
    free(m->half_scratch);
    free(m->in_mean);
    free(m->in_inv_std);
    free(m->layers);
    arena_free(&m->arena);
    memset(m, 0, sizeof *m);
}

/* Does anything between layer i and the next linear layer (or the output)
 * end in a ReLU? Decides He versus LeCun scaling. */
static int feeds_relu(const struct model *m, int i)
{
    for (int j = i + 1; j < m->nlayers; j++) {
        if (m->layers[j].ops == &relu_ops)
            return 1;
        if (m->layers[j].ops == &linear_ops)
            return 0;
    }
    return 0;
}

void model_init_params(struct model *m, uint64_t seed)
{
    memset(m->arena.w, 0, m->arena.n * sizeof(float));
    for (int i = 0; i < m->nlayers; i++) {
        struct layer *l = &m->layers[i];
        if (l->ops == &linear_ops) {
            double gain = feeds_relu(m, i) ? 2.0 : 1.0;
            double std = sqrt(gain / l->in_dim);
            const struct tensor_view *v = &m->arena.views[l->w_view];
            float *w = arena_w(&m->arena, l->w_view);
            for (size_t k = 0; k < v->n; k++)
                w[k] = (float)(std * rng_normal(seed, RNG_INIT, (uint64_t)l->w_view, k, 0));
        } else if (l->ops == &bn_ops) {
            float *gamma = arena_w(&m->arena, l->w_view);
            for (int c = 0; c < l->out_dim; c++) {
                gamma[c] = 1.0f;
                l->run_mean[c] = 0.0f;
                l->run_var[c] = 1.0f;
            }
        }
    }
}

/* ---- passes ------------------------------------------------------------------ */

const float *model_forward(struct model *m, const struct pass_ctx *ctx, int B)
{
    for (int i = 0; i < m->nlayers; i++) {
        struct layer *l = &m->layers[i];
        l->ops->forward(l, ctx, m->act[i + 1], m->act[i], B);
        if (ctx->train && l->ops == &bn_ops)
            m->bn_batch[m->bn_running_n] = (float)bn_group_count(B, l->bn_group > 0 ? l->bn_group : B);
    }
    return m->act[m->nlayers];
}

void model_update_running(struct model *m)
{
    float groups = m->bn_batch[m->bn_running_n];
    if (m->bn_running_n == 0 || groups <= 0)
        return;
    for (int i = 0; i < m->nlayers; i++) {
        struct layer *l = &m->layers[i];
        if (l->ops != &bn_ops)
            continue;
        float *bm = l->batch_mean, *bv = l->batch_var;
        for (int c = 0; c < l->out_dim; c++) {
            float mean = bm[c] / groups, var = bv[c] / groups;
            l->run_mean[c] = (1.0f - l->bn_momentum) * l->run_mean[c] + l->bn_momentum * mean;
            l->run_var[c] = (1.0f - l->bn_momentum) * l->run_var[c] + l->bn_momentum * var;
        }
    }
}

double model_loss(struct model *m, const int32_t *labels, int B, int *correct)
{
    return xent_forward(m->probs, correct, m->act[m->nlayers], labels, B, m->classes);
}

double model_batch_loss(struct model *m, const struct dataset *d, const uint32_t *idx, int count,
                        const struct pass_ctx *ctx, int *correct)
{
    dataset_gather(m->act[0], m->labels, d, idx, count, m->in_mean, m->in_inv_std);
    model_forward(m, ctx, count);
    return model_loss(m, m->labels, count, correct);
}

int model_enable_halves(struct model *m)
{
    size_t most = 0;
    for (int v = 0; v < m->arena.nviews; v++)
        most = m->arena.views[v].n > most ? m->arena.views[v].n : most;
    m->half_scratch = arena_buffer(most);
    return m->half_scratch ? 0 : -1;
}

/* |g_1|^2 and |g - g_1|^2 for one tensor whose full gradient is g and whose
 * first-half gradient is in h; the sums go to half_sq. */
static void add_half_norms(struct model *m, const float *g, const float *h, size_t n)
{
    double a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        double rest = (double)g[i] - h[i];
        a += (double)h[i] * h[i];
        b += rest * rest;
    }
    m->half_sq[0] += a;
    m->half_sq[1] += b;
}

/* The first `rows` rows' share of layer l's parameter gradients. */
static void half_gradients(struct model *m, const struct layer *l, const float *dout,
                           const float *in, int rows)
{
    const struct arena *a = &m->arena;
    float *h = m->half_scratch;
    int C = l->out_dim;
    if (l->ops == &linear_ops) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, l->in_dim, rows, 1.0f, dout, C,
                    in, l->in_dim, 0.0f, h, l->in_dim);
        add_half_norms(m, arena_g(a, l->w_view), h, a->views[l->w_view].n);
        memset(h, 0, (size_t)C * sizeof *h);
        for (int i = 0; i < rows; i++)
            for (int c = 0; c < C; c++)
                h[c] += dout[(size_t)i * C + c];
        add_half_norms(m, arena_g(a, l->b_view), h, (size_t)C);
    } else if (l->ops == &bn_ops && l->last_train) {
        float *hb = h + C;
        memset(h, 0, 2 * (size_t)C * sizeof *h);
        for (int i = 0; i < rows; i++)
            for (int c = 0; c < C; c++) {
                h[c] += dout[(size_t)i * C + c] * l->xhat[(size_t)i * C + c];
                hb[c] += dout[(size_t)i * C + c];
            }
        add_half_norms(m, arena_g(a, l->w_view), h, (size_t)C);
        add_half_norms(m, arena_g(a, l->b_view), hb, (size_t)C);
    }
}

void model_backward(struct model *m, const int32_t *labels, int B, grad_ready_fn ready,
                    void *user)
{
    m->half_sq[0] = m->half_sq[1] = 0;
    int cur = 0;
    xent_backward(m->dact[cur], m->probs, labels, B, m->classes);
    for (int i = m->nlayers - 1; i >= 0; i--) {
        struct layer *l = &m->layers[i];
        /* the first layer's input gradient is never needed */
        float *din = i > 0 ? m->dact[1 - cur] : NULL;
        if (din || l->w_view >= 0)
            l->ops->backward(l, &m->arena, din, m->dact[cur], m->act[i], m->act[i + 1], B);
        if (m->measure_halves && m->half_scratch && l->w_view >= 0)
            half_gradients(m, l, m->dact[cur], m->act[i], B / 2);
        cur = 1 - cur;
        if (ready && l->w_view >= 0)
            ready(user, i);
    }
}

void model_grad_range(const struct model *m, int layer, size_t *lo, size_t *hi)
{
    *hi = m->arena.n;
    *lo = m->arena.n;
    for (int i = layer; i < m->nlayers; i++) {
        if (m->layers[i].w_view >= 0) {
            *lo = m->arena.views[m->layers[i].w_view].off;
            return;
        }
    }
}

size_t model_param_count(const struct model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->arena.nviews; i++)
        n += m->arena.views[i].n;
    return n;
}

size_t model_activation_bytes(const struct model *m)
{
    size_t B = (size_t)m->max_batch, floats = B * (size_t)m->in_dim, bytes = 0;
    floats += 2 * B * (size_t)m->max_width + B * (size_t)m->classes;
    for (int i = 0; i < m->nlayers; i++) {
        const struct layer *l = &m->layers[i];
        floats += B * (size_t)l->out_dim;
        if (l->xhat)
            floats += 3 * B * (size_t)l->out_dim + 2 * (size_t)l->out_dim;
        if (l->mask)
            bytes += B * (size_t)l->out_dim;
    }
    return floats * sizeof(float) + bytes + B * sizeof(int32_t);
}

double model_flops_per_sample(const struct model *m)
{
    double f = 0;
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i].ops == &linear_ops)
            f += 2.0 * m->layers[i].in_dim * m->layers[i].out_dim;
    return f;
}
