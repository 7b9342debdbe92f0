/* Loading a model from an ONNX graph (onnx_import.h). */
#include "onnx_import.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "onnx_graph.h"
#include "regfile.h"

/* Bigger than any model we build; keeps a damaged length from asking for
 * all of memory. */
#define ONNX_MAX_FILE ((long)1 << 34)

bool onnx_import_is_onnx(const char *path)
{
    size_t n = strlen(path);
    if (n >= 5 && !strcmp(path + n - 5, ".onnx"))
        return true;
    char err[DDT_ERRLEN];
    FILE *f = regfile_fopen(path, "rb", err, sizeof err); /* a FIFO would block */
    if (!f)
        return false;
    int first = fgetc(f);
    fclose(f);
    return first == 0x08;
}

/* The whole of path, parsed. */
static Onnx__ModelProto *read_model(const char *path, char *err, size_t errlen)
{
    FILE *f = regfile_fopen(path, "rb", err, errlen);
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        len = ftell(f);
    if (len < 0 || len > ONNX_MAX_FILE || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "cannot find its size: %s", len > ONNX_MAX_FILE ? "too large" : strerror(errno));
        fclose(f);
        return NULL;
    }
    buf = malloc(len ? (size_t)len : 1);
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        snprintf(err, errlen, "cannot read %ld bytes: %s", len, buf ? strerror(errno) : "out of memory");
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, (size_t)len, buf);
    free(buf);
    if (!mp) {
        snprintf(err, errlen, "not an ONNX model (it does not parse as one)");
        return NULL;
    }
    if (!mp->graph) {
        snprintf(err, errlen, "an ONNX model without a graph");
        onnx__model_proto__free_unpacked(mp, NULL);
        return NULL;
    }
    return mp;
}

static const Onnx__TensorProto *find_init(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && !strcmp(g->initializer[i]->name, name))
            return g->initializer[i];
    return NULL;
}

static int find_init_index(const struct onnx_graph *g, const char *name)
{
    for (size_t i = 0; i < g->graph.n_initializer; i++)
        if (!strcmp(g->inits[i]->name, name))
            return (int)i;
    return -1;
}

/* "10x64" */
static void dims_text(char *out, size_t outlen, const int64_t *d, size_t n)
{
    size_t used = 0;
    out[0] = 0;
    for (size_t k = 0; k < n && used < outlen; k++)
        used += (size_t)snprintf(out + used, outlen - used, "%s%lld", k ? "x" : "", (long long)d[k]);
    if (n == 0)
        snprintf(out, outlen, "a scalar");
}

/* "[1, 1]" or "0.001" or "3": an attribute's value. */
static void attr_text(char *out, size_t outlen, const Onnx__AttributeProto *a)
{
    if (a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) {
        snprintf(out, outlen, "%g", a->f);
    } else if (a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS) {
        size_t used = (size_t)snprintf(out, outlen, "[");
        for (size_t k = 0; k < a->n_ints && used < outlen; k++)
            used += (size_t)snprintf(out + used, outlen - used, "%s%lld", k ? ", " : "",
                                     (long long)a->ints[k]);
        if (used < outlen)
            snprintf(out + used, outlen - used, "]");
    } else {
        snprintf(out, outlen, "%lld", (long long)a->i);
    }
}

static bool same_attr(const Onnx__AttributeProto *a, const Onnx__AttributeProto *b)
{
    if (a->type != b->type)
        return false;
    if (a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
        return a->f == b->f;
    if (a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return a->n_ints == b->n_ints && !memcmp(a->ints, b->ints, a->n_ints * sizeof *a->ints);
    return a->i == b->i;
}

/* The file node f's attributes against the expected node e's: each of e's
 * present in f with the same value. */
static int match_attrs(const Onnx__NodeProto *e, const Onnx__NodeProto *f, const char *label,
                       char *err, size_t errlen)
{
    for (size_t i = 0; i < e->n_attribute; i++) {
        const Onnx__AttributeProto *want = e->attribute[i], *have = NULL;
        for (size_t j = 0; j < f->n_attribute && !have; j++)
            if (f->attribute[j]->name && !strcmp(f->attribute[j]->name, want->name))
                have = f->attribute[j];
        char a[96], b[96];
        attr_text(b, sizeof b, want);
        if (!have) {
            snprintf(err, errlen, "%s: the graph's %s has no %s, the model needs %s", label,
                     e->op_type, want->name, b);
            return -1;
        }
        if (!same_attr(have, want)) {
            attr_text(a, sizeof a, have);
            snprintf(err, errlen, "%s: the graph has %s with %s %s, the model needs %s", label,
                     e->op_type, want->name, a, b);
            return -1;
        }
    }
    return 0;
}

/* Where one initializer of the file goes: the model's storage the expected
 * graph points at. */
struct onnx_copy {
    float *dst;
    const Onnx__TensorProto *src;
    size_t n;
};

/* The file's tensor t (named as input `what` of e's layer) against the
 * expected want: same dims, float elements held in float_data or raw_data. */
static int match_tensor(const Onnx__TensorProto *t, const Onnx__TensorProto *want,
                        const char *op, const char *label, char *err, size_t errlen)
{
    const char *what = strrchr(want->name, '.') ? strrchr(want->name, '.') + 1 : want->name;
    char a[96], b[96];
    dims_text(b, sizeof b, want->dims, want->n_dims);
    if (t->n_dims != want->n_dims || memcmp(t->dims, want->dims, t->n_dims * sizeof *t->dims)) {
        dims_text(a, sizeof a, t->dims, t->n_dims);
        snprintf(err, errlen, "%s: the graph has %s with %s %s, the model needs %s", label, op,
                 what, a, b);
        return -1;
    }
    if (!t->has_data_type || t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        snprintf(err, errlen, "%s: the graph's %s %s (%s) has data type %d: allowed only 1 (FLOAT)",
                 label, op, what, t->name, t->has_data_type ? t->data_type : 0);
        return -1;
    }
    size_t n = want->n_float_data;
    if (t->n_float_data != n && !(t->n_float_data == 0 && t->has_raw_data &&
                                  t->raw_data.len == n * sizeof(float))) {
        snprintf(err, errlen, "%s: the graph's %s %s (%s) holds %zu values, its shape %s needs %zu",
                 label, op, what, t->name,
                 t->n_float_data ? t->n_float_data : t->raw_data.len / sizeof(float), b, n);
        return -1;
    }
    return 0;
}

/* A match in progress: the expected graph, the file's, and the copies
 * recorded so far. */
struct onnx_match {
    const struct onnx_graph *eg;
    const Onnx__GraphProto *fg;
    const struct model *m;
    bool skip_head; /* the head's tensors may differ: they are not loaded */
    struct onnx_copy *copies;
    size_t ncopies;
};

/* Node k's initializer inputs: each an initializer of the file of the
 * expected shape, recorded as a copy. */
static int match_inputs(struct onnx_match *mt, int k, const char *label, char *err,
                        size_t errlen)
{
    const Onnx__NodeProto *e = mt->eg->nodes[k], *f = mt->fg->node[k];
    for (size_t j = 0; j < e->n_input; j++) {
        int w = find_init_index(mt->eg, e->input[j]);
        if (w < 0 || (mt->skip_head && mt->eg->init_head[w]))
            continue;
        const Onnx__TensorProto *t = find_init(mt->fg, f->input[j]);
        if (!t) {
            snprintf(err, errlen, "%s: the graph's %s takes '%s' as input %zu, which is not an initializer (a constant tensor)",
                     label, e->op_type, f->input[j], j + 1);
            return -1;
        }
        const Onnx__TensorProto *want = mt->eg->inits[w];
        if (match_tensor(t, want, e->op_type, label, err, errlen))
            return -1;
        mt->copies[mt->ncopies++] = (struct onnx_copy){ want->float_data, t, want->n_float_data };
    }
    return 0;
}

/* File node k against the expected one: operator, input count, attributes,
 * then the initializers. */
static int match_node(struct onnx_match *mt, int k, char *err, size_t errlen)
{
    const Onnx__NodeProto *e = mt->eg->nodes[k];
    char label[128];
    onnx_item_label(mt->m, mt->eg->node_item[k], label, sizeof label);
    if ((size_t)k >= mt->fg->n_node) {
        snprintf(err, errlen, "%s: the graph ends before it (%zu nodes), the model needs %s next",
                 label, mt->fg->n_node, e->op_type);
        return -1;
    }
    const Onnx__NodeProto *f = mt->fg->node[k];
    bool other_domain = f->domain && f->domain[0];
    if (!f->op_type || strcmp(f->op_type, e->op_type) || other_domain) {
        snprintf(err, errlen, "%s: the graph has %s%s%s where the model needs %s", label,
                 other_domain ? f->domain : "", other_domain ? "." : "",
                 f->op_type ? f->op_type : "a node without an operator", e->op_type);
        return -1;
    }
    if (f->n_input != e->n_input) {
        snprintf(err, errlen, "%s: the graph has %s with %zu inputs, the model needs %zu%s", label,
                 e->op_type, f->n_input, e->n_input,
                 !strcmp(e->op_type, "Conv") ? " (a bias, or b0 without one)" : "");
        return -1;
    }
    if (match_attrs(e, f, label, err, errlen))
        return -1;
    return match_inputs(mt, k, label, err, errlen);
}

/* The values of t (float_data, or little-endian raw_data) to dst. */
static void copy_values(float *dst, const Onnx__TensorProto *t, size_t n)
{
    if (t->n_float_data) {
        memcpy(dst, t->float_data, n * sizeof *dst);
        return;
    }
    const uint8_t *p = t->raw_data.data;
    for (size_t i = 0; i < n; i++, p += 4) {
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
        memcpy(&dst[i], &u, sizeof u);
    }
}

int onnx_import_model(struct model *m, float bn_eps, const char *path, bool skip_head,
                      char *err, size_t errlen)
{
    char sub[DDT_ERRLEN];
    Onnx__ModelProto *mp = read_model(path, sub, sizeof sub);
    if (!mp) {
        snprintf(err, errlen, "%s", sub);
        return -1;
    }
    struct onnx_graph eg;
    if (onnx_graph_build(&eg, m, bn_eps, err, errlen)) {
        onnx__model_proto__free_unpacked(mp, NULL);
        return -1;
    }
    struct onnx_match mt = { .eg = &eg, .fg = mp->graph, .m = m, .skip_head = skip_head,
                             .copies = calloc(eg.graph.n_initializer + 1, sizeof *mt.copies) };
    int rc = mt.copies ? 0 : -1;
    if (!mt.copies)
        snprintf(err, errlen, "out of memory");
    for (int k = 0; rc == 0 && (size_t)k < eg.graph.n_node; k++)
        rc = match_node(&mt, k, err, errlen);
    if (rc == 0 && mt.fg->n_node > eg.graph.n_node) {
        const Onnx__NodeProto *x = mt.fg->node[eg.graph.n_node];
        snprintf(err, errlen, "the graph goes on after the model's last layer: %zu more nodes, the first %s",
                 mt.fg->n_node - eg.graph.n_node, x->op_type ? x->op_type : "without an operator");
        rc = -1;
    }
    /* only a graph that matched throughout changes the model */
    for (size_t i = 0; rc == 0 && i < mt.ncopies; i++)
        copy_values(mt.copies[i].dst, mt.copies[i].src, mt.copies[i].n);
    free(mt.copies);
    onnx_graph_free(&eg);
    onnx__model_proto__free_unpacked(mp, NULL);
    return rc;
}
