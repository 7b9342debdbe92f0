/* Fuzz target "onnx": ONNX files through onnx_import_model, the reader
 * behind `ddtrain train --init-from FILE.onnx`, against the two models its
 * seeds were exported from (an MLP with batch norm, a small CNN). An input
 * that parses reaches the node-by-node match; one that matches is loaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "model.h"
#include "onnx_graph.h"
#include "onnx_import.h"
#include "spec.h"

enum { NMODELS = 2 };
static const char *const specs[NMODELS] = {
    "in:20,fc:8,bn,relu,dropout:0.5,fc:3",
    "in:1x6x6,conv:2k3p1,bn,relu,maxpool:2,fc:4,bn,relu,fc:3",
};
static struct model models[NMODELS];
static char in_path[4200];

static const char *const onnx_dict[] = { "Gemm", "Conv", "BatchNormalization", "Relu", "MaxPool",
                                         "Flatten", "kernel_shape", "strides", "pads", "epsilon",
                                         "transB", "input", "logits", NULL };

/* Each model built, initialised and exported as a seed. */
static int onnx_setup(struct fuzz_corpus *seeds, const char *dir)
{
    seeds->dict = onnx_dict;
    snprintf(in_path, sizeof in_path, "%s/in.onnx", dir);
    struct model_options opt = { .bn_eps = 1e-5, .bn_momentum = 0.1 };
    char err[512];
    for (int k = 0; k < NMODELS; k++) {
        struct spec s;
        struct onnx_graph g;
        if (spec_parse(&s, specs[k], false, 0, err, sizeof err) ||
            model_build(&models[k], &s, 1, &opt, err, sizeof err)) {
            fprintf(stderr, "fuzz: onnx: %s: %s\n", specs[k], err);
            return -1;
        }
        model_init_params(&models[k], 11 + (uint64_t)k);
        if (onnx_graph_build(&g, &models[k], 1e-5f, err, sizeof err)) {
            fprintf(stderr, "fuzz: onnx: %s: %s\n", specs[k], err);
            return -1;
        }
        size_t n = onnx__model_proto__get_packed_size(&g.model);
        uint8_t *buf = malloc(n);
        if (buf) {
            onnx__model_proto__pack(&g.model, buf);
            fuzz_corpus_add(seeds, buf, n);
        }
        free(buf);
        onnx_graph_free(&g);
    }
    return 0;
}

static void onnx_teardown(void)
{
    for (int k = 0; k < NMODELS; k++)
        model_free(&models[k]);
}

static int onnx_run(const uint8_t *p, size_t n)
{
    if (fuzz_write_file(in_path, p, n))
        return -1;
    int accepted = 0;
    for (int k = 0; k < NMODELS; k++) {
        char err[1024];
        err[0] = 0;
        if (onnx_import_model(&models[k], 1e-5f, in_path, false, err, sizeof err) == 0)
            accepted = 1;
        else if (!err[0]) {
            fprintf(stderr, "fuzz: onnx: refused without saying why\n");
            return -1;
        }
    }
    return accepted;
}

const struct fuzz_target fuzz_onnx_target = {
    .name = "onnx",
    .iters = 2000,
    .setup = onnx_setup,
    .run = onnx_run,
    .teardown = onnx_teardown,
};
