/* Reading a model and a run's configuration back out of a Checkpoint
 * message, for training and the analysis commands alike. */
#include "ckpt_restore.h"

#include <stdio.h>
#include <string.h>

#include "config.h"

/* Copies elements [first, first + len) of a tensor to dst after checking its
 * name and element count. */
int ckpt_restore_tensor_part(Ddtrain__Tensor *const *ts, size_t n, const char *name, float *dst,
                             size_t count, size_t first, size_t len, char *err, int errlen)
{
    const Ddtrain__Tensor *t = ckpt_find(ts, n, name);
    if (!t) {
        snprintf(err, errlen, "the checkpoint has no tensor %s", name);
        return -1;
    }
    if (t->n_data != count) {
        snprintf(err, errlen, "tensor %s has %zu elements in the checkpoint, the model needs %zu",
                 name, t->n_data, count);
        return -1;
    }
    if (len)
        memcpy(dst, t->data + first, len * sizeof *dst);
    return 0;
}

static int restore_tensor(Ddtrain__Tensor *const *ts, size_t n, const char *name, float *dst,
                          size_t count, char *err, int errlen)
{
    return ckpt_restore_tensor_part(ts, n, name, dst, count, 0, count, err, errlen);
}

int ckpt_restore_model(struct model *m, const Ddtrain__Checkpoint *msg, bool skip_head,
                       char *err, int errlen)
{
    struct arena *a = &m->arena;
    if (msg->format_version != CKPT_MESSAGE_VERSION) {
        snprintf(err, errlen, "checkpoint message version %u is not supported (expected %d)",
                 msg->format_version, CKPT_MESSAGE_VERSION);
        return -1;
    }
    /* the head: the last linear layer's tensors */
    int head_layer = a->views[a->nviews - 1].layer;
    for (int v = 0; v < a->nviews; v++) {
        const struct tensor_view *tv = &a->views[v];
        if (skip_head && tv->layer == head_layer && tv->role != ROLE_BN_GAMMA &&
            tv->role != ROLE_BN_BETA)
            continue;
        const Ddtrain__Tensor *ct = ckpt_find(msg->params, msg->n_params, tv->name);
        if (ct && ct->n_shape >= 1 && ct->shape[0] != (uint32_t)tv->rows) {
            snprintf(err, errlen, "tensor %s has shape %ux%u in the checkpoint, the model needs %dx%d",
                     tv->name, ct->shape[0], ct->n_shape > 1 ? ct->shape[1] : 1, tv->rows, tv->cols);
            return -1;
        }
        if (restore_tensor(msg->params, msg->n_params, tv->name, a->w + tv->off, tv->n, err,
                           errlen))
            return -1;
    }
    if (restore_tensor(msg->bn_running, msg->n_bn_running, "bn.running", m->bn_running,
                       m->bn_running_n, err, errlen) ||
        restore_tensor(msg->input_norm, msg->n_input_norm, "input.mean", m->in_mean,
                       (size_t)m->in_dim, err, errlen) ||
        restore_tensor(msg->input_norm, msg->n_input_norm, "input.inv_std", m->in_inv_std,
                       (size_t)m->in_dim, err, errlen))
        return -1;
    return 0;
}

int ckpt_parse_config(const Ddtrain__Checkpoint *msg, struct train_config *cfg, char *err,
                      int errlen)
{
    char sub[CONFIG_ERRLEN];
    train_config_defaults(cfg);
    for (size_t i = 0; msg->config && i < msg->config->n_lines; i++) {
        char line[CONFIG_STRLEN + 64];
        snprintf(line, sizeof line, "%s", msg->config->lines[i]);
        char *eq = strstr(line, " = ");
        if (!eq)
            continue;
        *eq = 0;
        if (config_set(train_options, cfg, line, eq + 3, sub)) {
            snprintf(err, errlen, "its configuration does not parse: %s", sub);
            return -1;
        }
    }
    return 0;
}
