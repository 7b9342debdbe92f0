/* The table of named models and their expansion into layer lists (models.h).
 * README.md ("Named models") says for each where it comes from and where it
 * departs from its source on 28x28 inputs. */
#include "models.h"

#include <stdio.h>
#include <string.h>

#include "model.h"

/* Each row's layers are in the canonical form spec_format writes, so that
 * the list a name resolves to reads back unchanged from a checkpoint. */
static const struct model_entry models[] = {
    { "f1",
      /* 784 - 5 x (512, batch norm, ReLU) - 10 */
      "fc:512,bn,relu,fc:512,bn,relu,fc:512,bn,relu,fc:512,bn,relu,fc:512,bn,relu", false,
      "Keskar et al. 2017 (ICLR), F1: Table 1 and the appendix (MNIST)" },
    { "c1",
      /* the authors' shallownet: "same" 5x5 convolutions, 3x3 stride-2 max
       * pooling, then fc 384 and 192 with dropout 0.5 */
      "conv:64k5p2,bn,relu,maxpool:3s2,conv:64k5p2,bn,relu,maxpool:3s2,"
      "fc:384,bn,relu,dropout:0.5,fc:192,bn,relu,dropout:0.5",
      true, "Keskar et al. 2017 (ICLR), C1: Table 1 and the appendix (CIFAR-10, AlexNet-like)" },
    { "c2",
      /* the authors' deepnet (VGG-16-like, 13 convolutions in 5 stages with
       * their dropouts), without the pooling after stage 4 so that 28x28
       * goes 14, 7, 3 and stage 5 ends at 1x1 as it does on CIFAR's 32x32 */
      "conv:64k3p1,bn,relu,dropout:0.3,conv:64k3p1,bn,relu,maxpool:2,"
      "conv:128k3p1,bn,relu,dropout:0.4,conv:128k3p1,bn,relu,maxpool:2,"
      "conv:256k3p1,bn,relu,dropout:0.4,conv:256k3p1,bn,relu,dropout:0.4,"
      "conv:256k3p1,bn,relu,maxpool:2,"
      "conv:512k3p1,bn,relu,dropout:0.4,conv:512k3p1,bn,relu,dropout:0.4,conv:512k3p1,bn,relu,"
      "conv:512k3p1,bn,relu,dropout:0.4,conv:512k3p1,bn,relu,dropout:0.4,"
      "conv:512k3p1,bn,relu,maxpool:2,dropout:0.5,fc:512,bn,relu,dropout:0.5",
      true, "Keskar et al. 2017 (ICLR), C2: Table 1 and the appendix (CIFAR-10, VGG-like)" },
    { "resnet20",
      /* 6n + 2 layers with n = 3: three stages of 16, 32, 64 channels, the
       * first block of stages 2 and 3 halving the plane */
      "conv:16k3p1b0,bn,relu,res:16,res:16,res:16,res:32s2,res:32,res:32,"
      "res:64s2,res:64,res:64,gap",
      true, "He et al. 2016 (CVPR), ResNet-20 for CIFAR-10: section 4.2, n = 3" },
    { "fmnist-cnn",
      /* TensorFlow's "Deep MNIST" network with batch norm, without its dropout */
      "conv:32k5p2,bn,relu,maxpool:2,conv:64k5p2,bn,relu,maxpool:2,fc:1024,bn,relu", true,
      "TensorFlow's Deep MNIST tutorial CNN (PyTorch Fashion-MNIST examples' size), with batch norm" },
};

enum { NMODELS = (int)(sizeof models / sizeof models[0]) };

int models_count(void)
{
    return NMODELS;
}

const struct model_entry *models_at(int i)
{
    return i >= 0 && i < NMODELS ? &models[i] : NULL;
}

const struct model_entry *models_find(const char *name)
{
    for (int i = 0; i < NMODELS; i++)
        if (!strcmp(models[i].name, name))
            return &models[i];
    return NULL;
}

bool models_is_name(const char *text)
{
    return text && text[0] && !(text[0] >= '0' && text[0] <= '9') && !strchr(text, ':');
}

/* "f1, c1, ..." */
static void known_names(char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < NMODELS && used < outlen; i++)
        used += (size_t)snprintf(out + used, outlen - used, "%s%s", i ? ", " : "",
                                 models[i].name);
}

int models_expand(const char *name, struct shape in, int classes, char *out, size_t outlen,
                  char *err, size_t errlen)
{
    const struct model_entry *e = models_find(name);
    if (!e) {
        char known[128];
        known_names(known, sizeof known);
        snprintf(err, errlen, "not a model spec, nor a named model (known: %s; --model list describes them)",
                 known);
        return -1;
    }
    bool flat = in.h * in.w == 1;
    if (e->image && flat) {
        snprintf(err, errlen, "the model %s takes images (C x H x W samples), the data's samples are %d flat features",
                 name, shape_size(in));
        return -1;
    }
    int n;
    if (e->image)
        n = snprintf(out, outlen, "in:%dx%dx%d,%s,fc:%d", in.c, in.h, in.w, e->layers, classes);
    else
        n = snprintf(out, outlen, "in:%d,%s,fc:%d", shape_size(in), e->layers, classes);
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "the spec of the model %s is longer than %zu bytes", name, outlen);
        return -1;
    }
    return 0;
}

int models_parse(struct spec *s, const char *text, struct shape in, int classes, bool bn,
                 float dropout, char *err, size_t errlen)
{
    if (!models_is_name(text))
        return spec_parse(s, text, bn, dropout, err, errlen);
    char expanded[2048];
    if (models_expand(text, in, classes, expanded, sizeof expanded, err, errlen)) {
        memset(s, 0, sizeof *s);
        return -1;
    }
    return spec_parse(s, expanded, bn, dropout, err, errlen);
}

int models_measure(const struct model_entry *e, struct shape in, int classes, size_t *params,
                   double *flops, char *err, size_t errlen)
{
    struct spec s;
    if (models_parse(&s, e->name, in, classes, false, 0, err, errlen))
        return -1;
    /* the option table's defaults; none of them changes a count */
    const struct model_options opt = { .bn_group = 0, .bn_eps = 1e-5, .bn_momentum = 0.1 };
    struct model m;
    if (model_plan(&m, &s, 1, &opt, err, errlen))
        return -1;
    *params = model_param_count(&m);
    *flops = model_flops_per_sample(&m);
    model_free(&m);
    return 0;
}
