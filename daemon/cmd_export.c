/* `ddtrain export CKPT --onnx FILE`: a checkpoint's model as an ONNX
 * inference graph (onnx_graph.h), for other runtimes. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt.h"
#include "ckpt_restore.h"
#include "commands.h"
#include "config.h"
#include "fsutil.h"
#include "onnx_graph.h"

struct export_config {
    char onnx[CONFIG_STRLEN];
};

const struct option_def export_options[] = {
    { "onnx", OPT_STRING, offsetof(struct export_config, onnx), 0, 0, "", NULL, 0,
      "write the model as an ONNX graph (opset 13) to FILE" },
    { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL },
};

/* The checkpoint's model (batch capacity 1: nothing runs) with its weights,
 * running statistics and input normalisation, and its bn epsilon. */
static int export_load(struct model *m, float *eps, const char *path, char *err, size_t errlen)
{
    Ddtrain__Checkpoint *msg;
    char sub[DDT_ERRLEN];
    if (ckpt_read_file(path, &msg, sub, sizeof sub)) {
        snprintf(err, errlen, "%s", sub);
        return -1;
    }
    struct train_config *cfg = malloc(sizeof *cfg);
    struct spec s;
    int rc = -1;
    memset(m, 0, sizeof *m);
    if (!cfg)
        snprintf(err, errlen, "out of memory");
    else if (ckpt_parse_config(msg, cfg, sub, sizeof sub))
        snprintf(err, errlen, "%s: %s", path, sub);
    else if (spec_parse(&s, msg->model_spec, false, 0, sub, sizeof sub))
        snprintf(err, errlen, "%s: its model spec '%s' does not parse: %s", path, msg->model_spec,
                 sub);
    else if (model_build(m, &s, 1, &cfg->model_opts, sub, sizeof sub) ||
             ckpt_restore_model(m, msg, false, sub, sizeof sub))
        snprintf(err, errlen, "%s: %s", path, sub);
    else
        rc = 0;
    if (rc == 0)
        *eps = (float)cfg->model_opts.bn_eps;
    free(cfg);
    ckpt_free(msg);
    return rc;
}

/* The graph of m packed and written to path atomically; *bytes its size. */
static int export_write(struct model *m, float eps, const char *path, size_t *bytes, int *nodes,
                        char *err, size_t errlen)
{
    struct onnx_graph g;
    char sub[DDT_ERRLEN];
    if (onnx_graph_build(&g, m, eps, sub, sizeof sub)) {
        snprintf(err, errlen, "--onnx %s: %s", path, sub);
        return -1;
    }
    size_t n = onnx__model_proto__get_packed_size(&g.model);
    uint8_t *buf = malloc(n ? n : 1);
    int rc = -1;
    if (!buf) {
        snprintf(err, errlen, "--onnx %s: out of memory for %zu bytes", path, n);
    } else {
        onnx__model_proto__pack(&g.model, buf);
        rc = fs_write_atomic(path, buf, n, err, errlen);
    }
    *bytes = n;
    *nodes = (int)g.graph.n_node;
    free(buf);
    onnx_graph_free(&g);
    return rc;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int export_main(int argc, char **argv, int first)
{
    struct export_config c;
    char err[2 * DDT_ERRLEN], *pos[1];
    int npos;
    config_defaults(export_options, &c);
    int rc = config_parse_args(export_options, &c, argc, argv, first, pos, 1, &npos, err,
                               sizeof err);
    if (rc == 1) {
        printf("usage: ddtrain export CKPT --onnx FILE\n\n"
               "Writes the checkpoint's model as an ONNX inference graph: input \"input\"\n"
               "(batch x features, or batch x C x H x W) of raw sample values as the data\n"
               "set stores them, output \"logits\" (batch x classes).\n\noptions:\n");
        config_help(export_options, stdout);
        return 0;
    }
    if (rc == 0 && npos != 1) {
        snprintf(err, sizeof err, "name one checkpoint file");
        rc = -1;
    }
    if (rc == 0 && !c.onnx[0]) {
        snprintf(err, sizeof err, "--onnx FILE: say where to write the graph");
        rc = -1;
    }
    struct model m;
    float eps;
    double t0 = now_seconds();
    if (rc == 0 && export_load(&m, &eps, pos[0], err, sizeof err))
        rc = -1;
    if (rc != 0) {
        fprintf(stderr, "ddtrain export: %s\n", err);
        return 2;
    }
    size_t bytes;
    int nodes;
    rc = export_write(&m, eps, c.onnx, &bytes, &nodes, err, sizeof err);
    model_free(&m);
    if (rc) {
        fprintf(stderr, "ddtrain export: %s\n", err);
        return 1;
    }
    printf("wrote %s: %d nodes, %zu bytes, ONNX opset %d, in %.3f s\n", c.onnx, nodes, bytes,
           ONNX_OPSET, now_seconds() - t0);
    return 0;
}
