/* Model construction from a spec, and forward/backward over a slice; every
 * kind-specific step goes through the layer's row of the kind table. */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "dataset.h"
#include "xent.h"

/* ---- construction ----------------------------------------------------------- */

/* 1 for the first layer of kind k before position n, 2 for the second... */
static int nth_of_kind(const struct model *m, const struct layer_kind *k, int n)
{
    int nth = 1;
    for (int i = 0; i < n; i++)
        nth += m->layers[i].kind == k;
    return nth;
}

/* Builds one layer per spec item after the input: its shapes, its kind's
 * state, its tensors (declared in spec order, so the arena layout follows
 * the spec) and the sizes of its buffers; no storage yet. */
static int declare_layers(struct model *m, const struct model_options *opt, char *err,
                          size_t errlen)
{
    const struct spec *s = &m->spec;
    struct shape shapes[SPEC_MAX_ITEMS];
    if (spec_shapes(s, shapes, err, errlen))
        return -1;
    struct layer_decl d = { .arena = &m->arena, .opt = opt, .max_batch = m->max_batch };
    int trainable = -1;
    m->max_width = shape_size(shapes[0]);
    for (int i = 1; i < s->n; i++) {
        const struct spec_item *it = &s->items[i];
        struct layer *l = &m->layers[m->nlayers];
        if (!it->kind->forward) {
            snprintf(err, errlen, "%s: may only come first", it->kind->name);
            return -1;
        }
        *l = (struct layer){ .kind = it->kind, .index = m->nlayers, .in = shapes[i - 1],
                             .out = shapes[i], .in_dim = shape_size(shapes[i - 1]),
                             .out_dim = shape_size(shapes[i]), .w_view = -1, .b_view = -1,
                             .arena = &m->arena };
        m->nlayers++;
        if (it->kind->state_size && !(l->state = calloc(1, it->kind->state_size))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        trainable += it->kind->weighted;
        d.nth = nth_of_kind(m, it->kind, l->index);
        d.group = trainable < 0 ? 0 : trainable;
        if (it->kind->declare && it->kind->declare(l, &it->arg, &d)) {
            snprintf(err, errlen, "out of memory declaring tensors");
            return -1;
        }
        m->bn_running_n += 2 * (size_t)l->stat_channels;
        if (l->out_dim > m->max_width)
            m->max_width = l->out_dim;
    }
    return 0;
}

/* Layer l's output and declared buffers; then its kind binds them, with
 * its share of the running statistics at *run. */
static int allocate_layer(struct model *m, struct layer *l, float **run)
{
    size_t B = (size_t)m->max_batch, half = m->bn_running_n / 2;
    m->act[l->index + 1] = arena_buffer(B * (size_t)l->out_dim);
    if (!m->act[l->index + 1])
        return -1;
    for (int k = 0; k < LAYER_MAX_BUFS; k++)
        if (l->buf[k].bytes && !(l->buf[k].p = arena_buffer((l->buf[k].bytes + 3) / sizeof(float))))
            return -1;
    struct layer_stats stats = { 0 };
    if (l->stat_channels) {
        /* means in the first half of the blocks, variances in the second */
        stats.run_mean = *run;
        stats.run_var = *run + half;
        stats.batch_mean = m->bn_batch + (*run - m->bn_running);
        stats.batch_var = stats.batch_mean + half;
        stats.groups = m->bn_batch + m->bn_running_n;
        *run += l->stat_channels;
    }
    if (l->kind->bind)
        l->kind->bind(l, l->stat_channels ? &stats : NULL);
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
    for (int i = 0; i < m->nlayers; i++)
        if (allocate_layer(m, &m->layers[i], &run))
            return -1;
    return 0;
}

int model_plan(struct model *m, const struct spec *s, int max_batch,
               const struct model_options *opt, char *err, size_t errlen)
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
    if (declare_layers(m, opt, err, errlen)) {
        model_free(m);
        return -1;
    }
    return 0;
}

int model_build(struct model *m, const struct spec *s, int max_batch,
                const struct model_options *opt, char *err, size_t errlen)
{
    if (model_plan(m, s, max_batch, opt, err, errlen))
        return -1;
    if (allocate_buffers(m)) {
        snprintf(err, errlen, "out of memory allocating %zu parameters and activations for batch %d",
                 m->arena.n, max_batch);
        model_free(m);
        return -1;
    }
    return 0;
}

void model_free(struct model *m)
{
    for (int i = 0; i < m->nlayers; i++) {
        struct layer *l = &m->layers[i];
        for (int k = 0; k < LAYER_MAX_BUFS; k++)
            free(l->buf[k].p);
        free(l->state);
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

/* The gain of the activation between layer i and the next weighted layer
 * (or the output): 2 for a ReLU (He), 1 when there is none (LeCun). */
static double init_gain(const struct model *m, int i)
{
    for (int j = i + 1; j < m->nlayers; j++) {
        if (m->layers[j].kind->act_gain > 0)
            return m->layers[j].kind->act_gain;
        if (m->layers[j].kind->weighted)
            return 1.0;
    }
    return 1.0;
}

void model_init_params(struct model *m, uint64_t seed)
{
    memset(m->arena.w, 0, m->arena.n * sizeof(float));
    for (int i = 0; i < m->nlayers; i++) {
        struct layer *l = &m->layers[i];
        if (l->kind->init_params)
            l->kind->init_params(l, seed, init_gain(m, i));
    }
}

/* ---- passes ------------------------------------------------------------------ */

const float *model_forward(struct model *m, const struct pass_ctx *ctx, int B)
{
    for (int i = 0; i < m->nlayers; i++) {
        struct layer *l = &m->layers[i];
        l->kind->forward(l, ctx, m->act[i + 1], m->act[i], B);
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
        /* a layer with statistics has parameters (bn's gamma, a block's
         * conv1), whose view names the weighted layer it belongs to */
        bool frozen = l->w_view >= 0 && m->arena.views[l->w_view].layer < m->frozen_groups;
        if (l->kind->update_running && !frozen)
            l->kind->update_running(l, groups);
    }
}

double model_loss(struct model *m, const int32_t *labels, int B, int *correct)
{
    if (m->pass_smoothing > 0)
        return xent_forward_smoothed(m->probs, correct, m->act[m->nlayers], labels, B,
                                     m->classes, m->pass_smoothing);
    return xent_forward(m->probs, correct, m->act[m->nlayers], labels, B, m->classes);
}

double model_batch_loss(struct model *m, const struct dataset *d, const uint32_t *idx, int count,
                        const struct pass_ctx *ctx, int *correct)
{
    return model_batch_loss_augmented(m, d, idx, count, ctx, NULL, correct);
}

double model_batch_loss_augmented(struct model *m, const struct dataset *d, const uint32_t *idx,
                                  int count, const struct pass_ctx *ctx,
                                  const struct augment_pass *aug, int *correct)
{
    if (aug && augment_active(&aug->how))
        augment_gather(m->act[0], m->labels, d, idx, count, m->in_mean, m->in_inv_std, aug);
    else
        dataset_gather(m->act[0], m->labels, d, idx, count, m->in_mean, m->in_inv_std);
    m->pass_smoothing = ctx->train ? m->label_smoothing : 0.0f;
    model_forward(m, ctx, count);
    return model_loss(m, m->labels, count, correct);
}

int model_enable_halves(struct model *m)
{
    size_t most = 0;
    for (int v = 0; v < m->arena.nviews; v++)
        most = m->arena.views[v].n > most ? m->arena.views[v].n : most;
    /* batch norm writes its gamma and beta parts side by side */
    for (int i = 0; i < m->nlayers; i++)
        if (2 * (size_t)m->layers[i].stat_channels > most)
            most = 2 * (size_t)m->layers[i].stat_channels;
    m->half_scratch = arena_buffer(most);
    return m->half_scratch ? 0 : -1;
}

void model_backward(struct model *m, const int32_t *labels, int B, grad_ready_fn ready,
                    void *user)
{
    m->half_sq[0] = m->half_sq[1] = 0;
    int cur = 0;
    if (m->pass_smoothing > 0)
        xent_backward_smoothed(m->dact[cur], m->probs, labels, B, m->classes, m->pass_smoothing);
    else
        xent_backward(m->dact[cur], m->probs, labels, B, m->classes);
    for (int i = m->nlayers - 1; i >= 0; i--) {
        struct layer *l = &m->layers[i];
        /* the first layer's input gradient is never needed */
        float *din = i > 0 ? m->dact[1 - cur] : NULL;
        l->accumulate = m->accumulate;
        if (din || l->w_view >= 0)
            l->kind->backward(l, &m->arena, din, m->dact[cur], m->act[i], m->act[i + 1], B);
        if (m->measure_halves && m->half_scratch && l->w_view >= 0 && l->kind->half_norms)
            l->kind->half_norms(l, m->half_scratch, m->dact[cur], m->act[i],
                                m->measure_whole ? B : B / 2, m->half_sq);
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
        for (int k = 0; k < LAYER_MAX_BUFS; k++)
            bytes += l->buf[k].bytes;
    }
    return floats * sizeof(float) + bytes + B * sizeof(int32_t);
}

double model_flops_per_sample(const struct model *m)
{
    double f = 0;
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i].kind->flops)
            f += m->layers[i].kind->flops(&m->layers[i]);
    return f;
}
