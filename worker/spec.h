/* The model spec string: what layers a model has, in order.
 *
 *   spec   := mlp | list
 *   mlp    := INT ('-' INT)+            784-1024-1024-10: input, hidden..., classes;
 *                                       expanded with the --bn and --dropout options
 *   list   := item (',' item)*
 *   item   := 'in:' INT | 'in:' INT 'x' INT 'x' INT | 'fc:' INT | 'bn' | 'relu'
 *           | 'dropout:' P | ('maxpool:' | 'avgpool:') INT ['s' INT] | 'gap'
 *           | 'conv:' OC ('k' K | 's' S | 'p' P | 'b0')+   k required, each field once
 *
 * A list starts with in:, ends with an fc: whose width is the class count, and
 * takes layers by name from the table of layer kinds (layer.c), so new kinds
 * (conv:, pool:) slot in without changing what existing specs mean. A
 * model's name (f1, c1, resnet20) is not a spec: models_parse (models.h)
 * expands it into a list for the data's shape before parsing. */
#ifndef DDT_SPEC_H
#define DDT_SPEC_H

#include <stdbool.h>

#include "layer.h"

struct spec_item {
    const struct layer_kind *kind; /* a row of the table; &layer_input for in: */
    struct layer_arg arg;
};

#define SPEC_MAX_ITEMS 64

struct spec {
    int n;
    struct spec_item items[SPEC_MAX_ITEMS];
};

/* Parses text into s. MLP shorthand puts bn (when bn) and relu (and dropout
 * when dropout > 0) after every hidden fc. On error fills err (errlen bytes)
 * with what was wrong and where, returns -1. */
int spec_parse(struct spec *s, const char *text, bool bn, float dropout, char *err,
               size_t errlen);

/* Writes the canonical list form ("in:784,fc:1024,bn,relu,...") of s. */
void spec_format(const struct spec *s, char *out, int outlen);

/* shapes[i] (s->n of them) = the per-sample output shape of item i, shapes[0]
 * the input's. Returns -1 with err filled when a layer refuses its input. */
int spec_shapes(const struct spec *s, struct shape *shapes, char *err, size_t errlen);

/* Input width and class count of a parsed spec. */
int spec_input_width(const struct spec *s);
int spec_output_width(const struct spec *s);

/* The shape of a sample the spec's input takes: C x H x W for in:CxHxW, N x 1
 * x 1 for in:N; {0, 0, 0} for an empty spec. */
struct shape spec_input_shape(const struct spec *s);

#endif
