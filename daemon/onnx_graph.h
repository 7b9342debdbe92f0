/* A model as an ONNX inference graph: the one description that `ddtrain
 * export --onnx` writes and `ddtrain train --init-from FILE.onnx` matches a
 * file against, so the two cannot drift apart.
 *
 * The graph takes "input" (batch x F, or batch x C x H x W), raw values as
 * the data set stores them (Fashion-MNIST pixels 0..255 as floats); its
 * first nodes are the model's input normalisation, Sub(mean) then
 * Mul(1/std), the same two float operations ddtrain's gather makes. Then a
 * layer at a time: fc -> Gemm (transB = 1, our weight is out x in), bn ->
 * BatchNormalization with the running statistics (not folded), relu ->
 * Relu, dropout -> nothing, conv -> Conv, maxpool/avgpool -> MaxPool /
 * AveragePool, gap -> GlobalAveragePool, res -> its convs, batch norms and
 * ReLUs, the projection when it has one, and Add; a Flatten before the first
 * fc that follows an image. The output is "logits" (batch x classes). */
#ifndef DDT_ONNX_GRAPH_H
#define DDT_ONNX_GRAPH_H

#include <stdbool.h>
#include <stddef.h>

#include "model.h"
#include "onnx.pb-c.h"

#define ONNX_OPSET 13     /* the default domain's operator set the graph uses */
#define ONNX_IR_VERSION 7 /* the IR version of opset 13 (ONNX 1.8) */

struct onnx_graph {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset, *opsets[1];
    Onnx__ValueInfoProto *io[2]; /* "input", "logits" */
    Onnx__NodeProto **nodes;     /* graph.node: every node, in order */
    Onnx__TensorProto **inits;   /* graph.initializer */
    int *node_item;   /* the spec item each node belongs to (0: the input normalisation) */
    bool *init_head;  /* the initializer is the head's weight or bias (--reset-head) */
    int cap_nodes, cap_items, cap_inits, cap_heads;
    void **owned;     /* what the builder allocated; tensor data stays the model's */
    size_t nowned, cap_owned;
    bool oom;
};

/* Describes m (its weights by pointer, not copied: m must outlive g) with
 * batch norms of epsilon bn_eps. Returns 0, or -1 with err filled when a
 * layer cannot be written or memory runs out. */
int onnx_graph_build(struct onnx_graph *g, struct model *m, float bn_eps, char *err,
                     size_t errlen);
void onnx_graph_free(struct onnx_graph *g);

/* "layer 3 (fc:10)" for spec item `item` of m; "the input normalisation" for 0. */
void onnx_item_label(const struct model *m, int item, char *out, size_t outlen);

/* The elements a tensor's dims describe, or -1 when one is negative or the
 * product overflows. */
long long onnx_tensor_count(const Onnx__TensorProto *t);

#endif
