/* Rebuilding a model and its data from a checkpoint. */
#include "ckpt_model.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ckpt_restore.h"
#include "spec.h"
#include "validation.h"

static bool same_shape(struct shape a, struct shape b)
{
    return a.c == b.c && a.h == b.h && a.w == b.w;
}

int ckpt_model_open(struct ckpt_model *cm, const char *path, const char *data,
                    const char *test_data, int max_batch, char *err, size_t errlen)
{
    memset(cm, 0, sizeof *cm);
    char sub[DDT_ERRLEN];
    if (ckpt_read_file(path, &cm->msg, sub, sizeof sub)) {
        snprintf(err, errlen, "%s", sub);
        return -1;
    }
    if (ckpt_parse_config(cm->msg, &cm->cfg, sub, sizeof sub)) {
        snprintf(err, errlen, "%s: %s", path, sub);
        goto fail;
    }
    struct spec s;
    char spec_err[256];
    if (spec_parse(&s, cm->msg->model_spec, false, 0, spec_err, sizeof spec_err)) {
        snprintf(err, errlen, "%s: its model spec '%s' does not parse: %s", path,
                 cm->msg->model_spec, spec_err);
        goto fail;
    }
    if (model_build(&cm->model, &s, max_batch, &cm->cfg.model_opts, sub, sizeof sub)) {
        snprintf(err, errlen, "%s: %s", path, sub);
        goto fail;
    }
    if (ckpt_restore_model(&cm->model, cm->msg, false, sub, sizeof sub)) {
        snprintf(err, errlen, "%s: %s", path, sub);
        goto fail;
    }
    const char *source = data && data[0] ? data : cm->cfg.data;
    /* the run's own data: the samples it trained on */
    size_t train_samples = data && data[0] ? 0 : (size_t)cm->cfg.train_samples;
    if (dataset_load_labelled(&cm->train, source, "train", cm->cfg.label, cm->cfg.classes,
                              train_samples, sub, sizeof sub)) {
        snprintf(err, errlen, "%s%s", strncmp(sub, "--", 2) ? "--data: " : "", sub);
        goto fail;
    }
    /* other --data replaces the run's test set too, unless --test-data is given */
    const char *test_source = test_data && test_data[0] ? test_data
                              : data && data[0]          ? ""
                                                         : cm->cfg.test_data;
    if (validation_open_test(&cm->cfg, source, test_source, &cm->train, &cm->test, 0, err, errlen))
        goto fail;
    if (!(data && data[0]) && validation_open(&cm->cfg, &cm->train, &cm->val, sub, sizeof sub)) {
        snprintf(err, errlen, "%s", sub);
        goto fail;
    }
    if (cm->train.dim != (size_t)cm->model.in_dim || cm->test.dim != (size_t)cm->model.in_dim) {
        snprintf(err, errlen, "--data %s: %zu features per sample, the model takes %d", source,
                 cm->train.dim, cm->model.in_dim);
        goto fail;
    }
    /* as in training: an image model takes images of exactly its shape, not
     * any samples that happen to have as many values */
    struct shape in = spec_input_shape(&s);
    if (in.h * in.w > 1 && (!same_shape(cm->train.shape, in) || !same_shape(cm->test.shape, in))) {
        struct shape d = same_shape(cm->train.shape, in) ? cm->test.shape : cm->train.shape;
        snprintf(err, errlen, "--data %s: samples of %dx%dx%d, the model takes %dx%dx%d", source,
                 d.c, d.h, d.w, in.c, in.h, in.w);
        goto fail;
    }
    return 0;
fail:
    ckpt_model_free(cm);
    return -1;
}

void ckpt_model_free(struct ckpt_model *cm)
{
    model_free(&cm->model);
    dataset_free(&cm->val);
    dataset_free(&cm->train);
    dataset_free(&cm->test);
    ckpt_free(cm->msg);
    cm->msg = NULL;
}
