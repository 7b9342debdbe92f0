#include "validation.h"

#include <stdio.h>

int validation_open(const struct train_config *c, struct dataset *train, struct dataset *val,
                    char *err, size_t errlen)
{
    if (c->val_fraction > 0 && c->val_data[0]) {
        snprintf(err, errlen, "--val-fraction and --val-data: give one validation set, not both");
        return -1;
    }
    char sub[DDT_ERRLEN];
    if (c->val_data[0]) {
        if (dataset_load_labelled(val, c->val_data, "train", c->label, c->classes, 0, sub,
                                  sizeof sub)) {
            snprintf(err, errlen, "--val-data: %s", sub);
            return -1;
        }
        if (val->dim != train->dim) {
            snprintf(err, errlen, "--val-data: '%s' has %zu features per sample, the training split %zu",
                     c->val_data, val->dim, train->dim);
            return -1;
        }
        return 0;
    }
    if (c->val_fraction > 0 &&
        dataset_hold_out_fraction(train, val, c->val_fraction, c->seed, sub, sizeof sub)) {
        snprintf(err, errlen, "--val-fraction: %s", sub);
        return -1;
    }
    return 0;
}
