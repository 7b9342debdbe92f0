/* Building the ONNX graph of a model (onnx_graph.h says what maps to what). */
#include "onnx_graph.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

/* A node has at most this many inputs (BatchNormalization) and attributes
 * (Conv: kernel_shape, strides, pads, group). */
enum { NODE_MAX_INPUTS = 5, NODE_MAX_ATTRS = 4 };

/* ---- allocation: everything the builder makes is freed with the graph -------- */

static void *gb_alloc(struct onnx_graph *g, size_t bytes)
{
    if (g->oom)
        return NULL;
    if (g->nowned == g->cap_owned) {
        size_t cap = g->cap_owned ? 2 * g->cap_owned : 256;
        void **p = realloc(g->owned, cap * sizeof *p);
        if (!p) {
            g->oom = true;
            return NULL;
        }
        g->owned = p;
        g->cap_owned = cap;
    }
    void *p = calloc(1, bytes);
    if (!p) {
        g->oom = true;
        return NULL;
    }
    g->owned[g->nowned++] = p;
    return p;
}

static char *gb_printf(struct onnx_graph *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : gb_alloc(g, (size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Room for one more entry in the array *arr of *cap (grown by doubling). */
static bool gb_grow(struct onnx_graph *g, void **arr, int *cap, size_t n, size_t each)
{
    if (g->oom)
        return false;
    if (n < (size_t)*cap)
        return true;
    int c = *cap ? 2 * *cap : 64;
    void *p = realloc(*arr, (size_t)c * each);
    if (!p) {
        g->oom = true;
        return false;
    }
    *arr = p;
    *cap = c;
    return true;
}

/* ---- the pieces of a graph -------------------------------------------------- */

/* A float initializer named name over data (not copied), of dims[0..nd);
 * returns its name. */
static const char *gb_init(struct onnx_graph *g, const char *name, float *data, bool head,
                           int nd, const int64_t *dims)
{
    Onnx__TensorProto *t = gb_alloc(g, sizeof *t);
    int64_t *d = gb_alloc(g, (size_t)nd * sizeof *d);
    char *nm = gb_printf(g, "%s", name);
    size_t n = g->graph.n_initializer;
    if (!t || !d || !nm || !gb_grow(g, (void **)&g->inits, &g->cap_inits, n, sizeof *g->inits) ||
        !gb_grow(g, (void **)&g->init_head, &g->cap_heads, n, sizeof *g->init_head))
        return NULL;
    onnx__tensor_proto__init(t);
    memcpy(d, dims, (size_t)nd * sizeof *d);
    long long count = 1;
    for (int k = 0; k < nd; k++)
        count *= dims[k];
    t->n_dims = (size_t)nd;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->n_float_data = (size_t)count;
    t->float_data = data;
    t->name = nm;
    g->inits[n] = t;
    g->init_head[n] = head;
    g->graph.n_initializer = n + 1;
    g->graph.initializer = g->inits;
    return nm;
}

static Onnx__AttributeProto *gb_attr(struct onnx_graph *g, Onnx__NodeProto *n, const char *name,
                                     Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = gb_alloc(g, sizeof *a);
    if (!a || !n)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = type;
    n->attribute[n->n_attribute++] = a;
    return a;
}

static void gb_attr_int(struct onnx_graph *g, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = gb_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) {
        a->has_i = 1;
        a->i = v;
    }
}

static void gb_attr_float(struct onnx_graph *g, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = gb_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) {
        a->has_f = 1;
        a->f = v;
    }
}

/* An INTS attribute of the value v repeated count times. */
static void gb_attr_ints(struct onnx_graph *g, Onnx__NodeProto *n, const char *name, int count,
                         int64_t v)
{
    Onnx__AttributeProto *a = gb_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *ints = gb_alloc(g, (size_t)count * sizeof *ints);
    if (!a || !ints)
        return;
    for (int k = 0; k < count; k++)
        ints[k] = v;
    a->n_ints = (size_t)count;
    a->ints = ints;
}

/* A node op named name of spec item `item`, reading in[0..nin) (NULL ends
 * early), writing one output named as the node; the doc string names the
 * layer for a reader of the file. */
static Onnx__NodeProto *gb_node(struct onnx_graph *g, const struct model *m, int item,
                                const char *op, const char *name, const char *const *in, int nin)
{
    Onnx__NodeProto *n = gb_alloc(g, sizeof *n);
    char **ins = gb_alloc(g, NODE_MAX_INPUTS * sizeof *ins);
    char **outs = gb_alloc(g, sizeof *outs);
    Onnx__AttributeProto **attrs = gb_alloc(g, NODE_MAX_ATTRS * sizeof *attrs);
    char label[128];
    onnx_item_label(m, item, label, sizeof label);
    char *doc = gb_printf(g, "%s", label);
    size_t k = g->graph.n_node;
    if (!n || !ins || !outs || !attrs || !doc ||
        !gb_grow(g, (void **)&g->nodes, &g->cap_nodes, k, sizeof *g->nodes) ||
        !gb_grow(g, (void **)&g->node_item, &g->cap_items, k, sizeof *g->node_item))
        return NULL;
    onnx__node_proto__init(n);
    for (int i = 0; i < nin && in[i]; i++)
        ins[n->n_input++] = (char *)in[i];
    n->input = ins;
    outs[0] = gb_printf(g, "%s", name);
    n->n_output = 1;
    n->output = outs;
    n->name = outs[0];
    n->op_type = (char *)op;
    n->attribute = attrs;
    n->doc_string = doc;
    g->nodes[k] = n;
    g->node_item[k] = item;
    g->graph.n_node = k + 1;
    g->graph.node = g->nodes;
    return n;
}

/* ---- layers ------------------------------------------------------------------ */

/* Where the builder is: the tensor the next node reads, its rank (2: batch x
 * features, 4: batch x C x H x W), the offset of the next running means in
 * the model's bn_running, and the trainable layer that is the head. */
struct gb_cursor {
    const char *cur;
    int rank;
    size_t run;
    int head;
};

static int find_view(const struct model *m, const char *name)
{
    for (int v = 0; v < m->arena.nviews; v++)
        if (!strcmp(m->arena.views[v].name, name))
            return v;
    return -1;
}

static bool is_head(const struct model *m, int view, int head)
{
    const struct tensor_view *v = &m->arena.views[view];
    return v->layer == head && (v->role == ROLE_WEIGHT || v->role == ROLE_BIAS);
}

/* An initializer over arena view `view`, of dims[0..nd). */
static const char *gb_view(struct onnx_graph *g, struct model *m, int view, int head, int nd,
                           const int64_t *dims)
{
    return gb_init(g, m->arena.views[view].name, arena_w(&m->arena, view), is_head(m, view, head),
                   nd, dims);
}

/* x - mean, times 1/std: the model's per-feature normalisation, its arrays
 * shaped F or C x H x W, which broadcast over the batch (OpenCV 4.6 refuses
 * the equivalent 1 x C x H x W against a larger batch). */
static void emit_input(struct onnx_graph *g, struct model *m, struct gb_cursor *c)
{
    struct shape in = spec_input_shape(&m->spec);
    int64_t dims[3] = { in.c, in.h, in.w };
    if (c->rank == 2)
        dims[0] = m->in_dim;
    const char *mean = gb_init(g, "input.mean", m->in_mean, false, c->rank - 1, dims);
    const char *inv = gb_init(g, "input.inv_std", m->in_inv_std, false, c->rank - 1, dims);
    const char *sub[] = { "input", mean };
    Onnx__NodeProto *n = gb_node(g, m, 0, "Sub", "input.centred", sub, 2);
    const char *mul[] = { n ? n->output[0] : NULL, inv };
    n = gb_node(g, m, 0, "Mul", "input.normalised", mul, 2);
    c->cur = n ? n->output[0] : NULL;
}

/* BatchNormalization of x with gamma, beta and the running statistics at
 * run_mean and run_var (C each), named after the gamma view ("bn1.weight"
 * -> "bn1.running_mean"). */
static const char *emit_bn(struct onnx_graph *g, struct model *m, int item, const char *name,
                           const char *x, int gamma, int beta, size_t run, float eps,
                           struct gb_cursor *c)
{
    int C = m->arena.views[gamma].rows;
    int64_t dims[1] = { C };
    char base[40], rm[64], rv[64];
    snprintf(base, sizeof base, "%s", m->arena.views[gamma].name);
    char *dot = strrchr(base, '.');
    if (dot)
        *dot = 0;
    snprintf(rm, sizeof rm, "%s.running_mean", base);
    snprintf(rv, sizeof rv, "%s.running_var", base);
    const char *in[] = { x, gb_view(g, m, gamma, c->head, 1, dims),
                         gb_view(g, m, beta, c->head, 1, dims),
                         gb_init(g, rm, m->bn_running + run, false, 1, dims),
                         gb_init(g, rv, m->bn_running + m->bn_running_n / 2 + run, false, 1, dims) };
    Onnx__NodeProto *n = gb_node(g, m, item, "BatchNormalization", name, in, 5);
    gb_attr_float(g, n, "epsilon", eps);
    return n ? n->output[0] : NULL;
}

/* Conv of x with weight view w (OC x IC·k·k) and bias view b (-1: none). */
static const char *emit_conv(struct onnx_graph *g, struct model *m, int item, const char *name,
                             const char *x, int w, int b, int ic, int k, int stride, int pad,
                             struct gb_cursor *c)
{
    int OC = m->arena.views[w].rows;
    int64_t wd[4] = { OC, ic, k, k }, bd[1] = { OC };
    const char *in[] = { x, gb_view(g, m, w, c->head, 4, wd),
                         b >= 0 ? gb_view(g, m, b, c->head, 1, bd) : NULL };
    Onnx__NodeProto *n = gb_node(g, m, item, "Conv", name, in, 3);
    gb_attr_ints(g, n, "kernel_shape", 2, k);
    gb_attr_ints(g, n, "strides", 2, stride);
    gb_attr_ints(g, n, "pads", 4, pad);
    gb_attr_int(g, n, "group", 1);
    return n ? n->output[0] : NULL;
}

/* Flatten (after an image) and Gemm: x (B, in) · W^T (in, out) + b. */
static void emit_fc(struct onnx_graph *g, struct model *m, const struct layer *l,
                    struct gb_cursor *c)
{
    int item = l->index + 1;
    char name[48];
    if (c->rank == 4) {
        snprintf(name, sizeof name, "layer%d.flatten", item);
        Onnx__NodeProto *f = gb_node(g, m, item, "Flatten", name, &c->cur, 1);
        gb_attr_int(g, f, "axis", 1);
        c->cur = f ? f->output[0] : NULL;
        c->rank = 2;
    }
    int64_t wd[2] = { l->out_dim, l->in_dim }, bd[1] = { l->out_dim };
    const char *in[] = { c->cur, gb_view(g, m, l->w_view, c->head, 2, wd),
                         gb_view(g, m, l->b_view, c->head, 1, bd) };
    snprintf(name, sizeof name, "layer%d.fc", item);
    Onnx__NodeProto *n = gb_node(g, m, item, "Gemm", name, in, 3);
    gb_attr_int(g, n, "transB", 1);
    c->cur = n ? n->output[0] : NULL;
}

/* A node of one input and no weights: Relu, GlobalAveragePool, or a pool
 * of window k and stride s (k 0: none). */
static void emit_plain(struct onnx_graph *g, struct model *m, int item, const char *op,
                       const char *what, int k, int s, struct gb_cursor *c)
{
    char name[48];
    snprintf(name, sizeof name, "layer%d.%s", item, what);
    Onnx__NodeProto *n = gb_node(g, m, item, op, name, &c->cur, 1);
    if (k) {
        gb_attr_ints(g, n, "kernel_shape", 2, k);
        gb_attr_ints(g, n, "strides", 2, s);
    }
    c->cur = n ? n->output[0] : NULL;
}

/* The view "<block>.<part>.<what>" of the residual block whose conv1 weight
 * is view w1 ("res2.conv1.weight"). */
static int res_part(const struct model *m, int w1, const char *part, const char *what)
{
    char base[40], name[64];
    snprintf(base, sizeof base, "%s", m->arena.views[w1].name);
    char *dot = strchr(base, '.');
    if (dot)
        *dot = 0;
    snprintf(name, sizeof name, "%s.%s.%s", base, part, what);
    return find_view(m, name);
}

/* relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut), the shortcut x or
 * projbn(proj x); the block's running statistics are bn1's, bn2's, then
 * projbn's, C each (layer_res.c). */
static void emit_res(struct onnx_graph *g, struct model *m, const struct layer *l, float eps,
                     struct gb_cursor *c)
{
    int item = l->index + 1, C = l->out.c, S = m->spec.items[item].arg.stride, w1 = l->w_view;
    bool proj = l->stat_channels == 3 * C;
    char name[64];
    const char *x = c->cur;
#define RES_NAME(what) (snprintf(name, sizeof name, "layer%d.res.%s", item, what), name)
    const char *t = emit_conv(g, m, item, RES_NAME("conv1"), x, w1, -1, l->in.c, 3, S, 1, c);
    t = emit_bn(g, m, item, RES_NAME("bn1"), t, res_part(m, w1, "bn1", "weight"),
                res_part(m, w1, "bn1", "bias"), c->run, eps, c);
    Onnx__NodeProto *n = gb_node(g, m, item, "Relu", RES_NAME("relu1"), &t, 1);
    t = n ? n->output[0] : NULL;
    t = emit_conv(g, m, item, RES_NAME("conv2"), t, res_part(m, w1, "conv2", "weight"), -1, C, 3,
                  1, 1, c);
    t = emit_bn(g, m, item, RES_NAME("bn2"), t, res_part(m, w1, "bn2", "weight"),
                res_part(m, w1, "bn2", "bias"), c->run + (size_t)C, eps, c);
    const char *shortcut = x;
    if (proj) {
        shortcut = emit_conv(g, m, item, RES_NAME("proj"), x, res_part(m, w1, "proj", "weight"),
                             -1, l->in.c, 1, S, 0, c);
        shortcut = emit_bn(g, m, item, RES_NAME("projbn"), shortcut,
                           res_part(m, w1, "projbn", "weight"), res_part(m, w1, "projbn", "bias"),
                           c->run + 2 * (size_t)C, eps, c);
    }
    const char *sum[] = { t, shortcut };
    n = gb_node(g, m, item, "Add", RES_NAME("add"), sum, 2);
    t = n ? n->output[0] : NULL;
    n = gb_node(g, m, item, "Relu", RES_NAME("relu"), &t, 1);
#undef RES_NAME
    c->cur = n ? n->output[0] : NULL;
}

/* Layer l's nodes; -1 with err for a layer the graph cannot hold. */
static int emit_layer(struct onnx_graph *g, struct model *m, const struct layer *l, float eps,
                      struct gb_cursor *c, char *err, size_t errlen)
{
    const char *kind = l->kind->name;
    int item = l->index + 1;
    const struct layer_arg *a = &m->spec.items[item].arg;
    bool image_kind = strcmp(kind, "fc") && strcmp(kind, "bn") && strcmp(kind, "relu") &&
                      strcmp(kind, "dropout");
    if (image_kind && c->rank != 4) {
        char label[128];
        onnx_item_label(m, item, label, sizeof label);
        snprintf(err, errlen, "%s: the graph has no image here to give it (a flat input or an fc came before)",
                 label);
        return -1;
    }
    char name[48];
    snprintf(name, sizeof name, "layer%d.%s", item, kind);
    if (!strcmp(kind, "fc")) {
        emit_fc(g, m, l, c);
    } else if (!strcmp(kind, "bn")) {
        c->cur = emit_bn(g, m, item, name, c->cur, l->w_view, l->b_view, c->run, eps, c);
    } else if (!strcmp(kind, "relu")) {
        emit_plain(g, m, item, "Relu", kind, 0, 0, c);
    } else if (!strcmp(kind, "conv")) {
        c->cur = emit_conv(g, m, item, name, c->cur, l->w_view, l->b_view, l->in.c, a->kernel,
                           a->stride, a->pad, c);
    } else if (!strcmp(kind, "maxpool") || !strcmp(kind, "avgpool")) {
        emit_plain(g, m, item, kind[0] == 'm' ? "MaxPool" : "AveragePool", kind, a->kernel,
                   a->stride, c);
    } else if (!strcmp(kind, "gap")) {
        emit_plain(g, m, item, "GlobalAveragePool", kind, 0, 0, c);
    } else if (!strcmp(kind, "res")) {
        emit_res(g, m, l, eps, c);
    } else if (strcmp(kind, "dropout")) {
        snprintf(err, errlen, "layer %d (%s): no ONNX form for this kind of layer", item, kind);
        return -1;
    }
    c->run += (size_t)l->stat_channels;
    return 0;
}

/* A value of float elements, batch x dims[1..nd). */
static Onnx__ValueInfoProto *gb_value(struct onnx_graph *g, const char *name, int nd,
                                      const int64_t *dims)
{
    Onnx__ValueInfoProto *v = gb_alloc(g, sizeof *v);
    Onnx__TypeProto *t = gb_alloc(g, sizeof *t);
    Onnx__TypeProto__Tensor *tt = gb_alloc(g, sizeof *tt);
    Onnx__TensorShapeProto *s = gb_alloc(g, sizeof *s);
    Onnx__TensorShapeProto__Dimension *d = gb_alloc(g, (size_t)nd * sizeof *d);
    Onnx__TensorShapeProto__Dimension **dp = gb_alloc(g, (size_t)nd * sizeof *dp);
    if (!v || !t || !tt || !s || !d || !dp)
        return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(s);
    for (int k = 0; k < nd; k++) {
        onnx__tensor_shape_proto__dimension__init(&d[k]);
        if (k == 0) {
            d[k].dim_param = "batch";
        } else {
            d[k].has_dim_value = 1;
            d[k].dim_value = dims[k];
        }
        dp[k] = &d[k];
    }
    s->n_dim = (size_t)nd;
    s->dim = dp;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = s;
    t->tensor_type = tt;
    v->name = (char *)name;
    v->type = t;
    return v;
}

/* The model message around the graph: versions, producer, inputs, outputs. */
static void gb_frame(struct onnx_graph *g, struct model *m, int rank)
{
    onnx__model_proto__init(&g->model);
    onnx__graph_proto__init(&g->graph);
    onnx__operator_set_id_proto__init(&g->opset);
    g->opset.domain = "";
    g->opset.has_version = 1;
    g->opset.version = ONNX_OPSET;
    g->opsets[0] = &g->opset;
    g->model.has_ir_version = 1;
    g->model.ir_version = ONNX_IR_VERSION;
    g->model.producer_name = "ddtrain";
    g->model.n_opset_import = 1;
    g->model.opset_import = g->opsets;
    g->model.graph = &g->graph;
    char spec[2048];
    spec_format(&m->spec, spec, sizeof spec);
    g->graph.name = gb_printf(g, "ddtrain");
    g->graph.doc_string = gb_printf(g, "model %s", spec);
    struct shape in = spec_input_shape(&m->spec);
    int64_t idims[4] = { 0, in.c, in.h, in.w }, odims[2] = { 0, m->classes };
    if (rank == 2)
        idims[1] = m->in_dim;
    g->io[0] = gb_value(g, "input", rank, idims);
    g->io[1] = gb_value(g, "logits", 2, odims);
    g->graph.n_input = 1;
    g->graph.input = &g->io[0];
    g->graph.n_output = 1;
    g->graph.output = &g->io[1];
}

int onnx_graph_build(struct onnx_graph *g, struct model *m, float bn_eps, char *err,
                     size_t errlen)
{
    memset(g, 0, sizeof *g);
    struct shape in = spec_input_shape(&m->spec);
    struct gb_cursor c = { .cur = "input", .rank = in.h * in.w > 1 ? 4 : 2,
                           .head = m->arena.nviews ? m->arena.views[m->arena.nviews - 1].layer : -1 };
    gb_frame(g, m, c.rank);
    emit_input(g, m, &c);
    for (int i = 0; i < m->nlayers && !g->oom; i++)
        if (emit_layer(g, m, &m->layers[i], bn_eps, &c, err, errlen)) {
            onnx_graph_free(g);
            return -1;
        }
    /* the last node's output is the graph's */
    if (!g->oom && g->graph.n_node)
        g->nodes[g->graph.n_node - 1]->output[0] = "logits";
    if (g->oom || !c.cur) {
        snprintf(err, errlen, "out of memory building the ONNX graph");
        onnx_graph_free(g);
        return -1;
    }
    return 0;
}

void onnx_graph_free(struct onnx_graph *g)
{
    for (size_t i = 0; i < g->nowned; i++)
        free(g->owned[i]);
    free(g->owned);
    free(g->nodes);
    free(g->inits);
    free(g->node_item);
    free(g->init_head);
    memset(g, 0, sizeof *g);
}

void onnx_item_label(const struct model *m, int item, char *out, size_t outlen)
{
    if (item <= 0 || item >= m->spec.n) {
        snprintf(out, outlen, "the input normalisation");
        return;
    }
    const struct spec_item *it = &m->spec.items[item];
    char arg[64] = "";
    if (it->kind->format_arg)
        it->kind->format_arg(&it->arg, arg, sizeof arg);
    snprintf(out, outlen, "layer %d (%s%s%s)", item, it->kind->name, arg[0] ? ":" : "", arg);
}

long long onnx_tensor_count(const Onnx__TensorProto *t)
{
    long long n = 1;
    for (size_t k = 0; k < t->n_dims; k++) {
        if (t->dims[k] < 0 || (t->dims[k] > 0 && n > (1LL << 40) / t->dims[k]))
            return -1;
        n *= t->dims[k];
    }
    return n;
}
