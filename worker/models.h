/* Named models: networks from the literature that --model takes by name
 * ("c1", "resnet20"), each a spec template whose input and class count come
 * from the data it trains on.
 *
 * A name resolves to a layer list before parsing: "in:" the data's sample
 * shape (in:CxHxW, or in:N for a model of fully connected layers), the
 * model's layers, then "fc:K" with K the class count. What a run stores is
 * therefore plain: config.txt keeps the name the user wrote, a checkpoint's
 * model_spec the list it resolved to (spec_format's canonical form), so
 * eval, inspect and the analysis commands rebuild the model without knowing
 * about names, and a resumed run resolves the name on the same data again. */
#ifndef DDT_MODELS_H
#define DDT_MODELS_H

#include <stdbool.h>
#include <stddef.h>

#include "layer.h"
#include "spec.h"

struct model_entry {
    const char *name;   /* as given to --model */
    /* the items between in: and the last fc:K, in canonical form */
    const char *layers;
    bool image;         /* takes C x H x W samples (in:CxHxW); else flat (in:N) */
    const char *source; /* the paper, and where in it the network is given */
};

/* What a named model is written for when no data set says otherwise:
 * Fashion-MNIST's samples and classes. */
#define MODELS_DEFAULT_SHAPE ((struct shape){ 1, 28, 28 })
#define MODELS_DEFAULT_CLASSES 10

/* The table, in the order --model list prints it: models_at(0) to
 * models_at(models_count() - 1). */
int models_count(void);
const struct model_entry *models_at(int i);

/* The entry named name, or NULL. */
const struct model_entry *models_find(const char *name);

/* Does text mean a name rather than spell a spec? A spec either starts with
 * a digit (the MLP shorthand 784-10) or has a ':' (a list starts with in:),
 * so anything else can only be a name, known or not. */
bool models_is_name(const char *text);

/* Writes into out the layer list of the model named name for samples of
 * shape in and classes classes. Returns -1 with err filled for an unknown
 * name (listing the known ones), for flat samples given to an image model,
 * or when out is too short. */
int models_expand(const char *name, struct shape in, int classes, char *out, size_t outlen,
                  char *err, size_t errlen);

/* spec_parse of text, a name being expanded first (with in and classes;
 * bn and dropout only shape the MLP shorthand, as in spec_parse). */
int models_parse(struct spec *s, const char *text, struct shape in, int classes, bool bn,
                 float dropout, char *err, size_t errlen);

/* Parameters and forward FLOPs per sample (model_flops_per_sample) of the
 * entry e built, without storage, for samples of shape in and classes
 * classes. Returns -1 with err filled when it does not build (a layer kind
 * this build lacks, a shape a layer refuses). */
int models_measure(const struct model_entry *e, struct shape in, int classes, size_t *params,
                   double *flops, char *err, size_t errlen);

#endif
