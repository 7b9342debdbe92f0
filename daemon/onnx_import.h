/* `ddtrain train --init-from FILE.onnx`: a model's weights, batch-norm
 * statistics and input normalisation from an ONNX graph, matched node by
 * node against the graph the model would export (onnx_graph.h): the same
 * operators in the same order, the same attributes, and initializers of the
 * same shapes. A graph of any other form is refused at its first
 * difference, with the layer it falls in. */
#ifndef DDT_ONNX_IMPORT_H
#define DDT_ONNX_IMPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "model.h"

/* Whether --init-from names an ONNX file rather than a checkpoint: its name
 * ends in .onnx, or its first byte is that of an ONNX model (ir_version,
 * field 1), which a checkpoint's magic "DDTCKPT" never is. */
bool onnx_import_is_onnx(const char *path);

/* Reads path and loads it into m, whose batch norms have epsilon bn_eps;
 * skip_head leaves the last trainable layer's weight and bias as they are
 * (--reset-head). Nothing in m changes unless the whole graph matches.
 * Returns 0, or -1 with err saying what differs or could not be read. */
int onnx_import_model(struct model *m, float bn_eps, const char *path, bool skip_head,
                      char *err, size_t errlen);

#endif
