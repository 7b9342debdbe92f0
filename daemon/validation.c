#include "validation.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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

int validation_open_test(const struct train_config *c, const char *data, const char *test_data,
                         const struct dataset *train, struct dataset *test, size_t max_samples,
                         char *err, size_t errlen)
{
    char sub[DDT_ERRLEN];
    bool apart = test_data && test_data[0];
    int rc = apart ? dataset_load_test(test, test_data, c->label, c->classes, max_samples, sub,
                                       sizeof sub)
                   : dataset_load_labelled(test, data, "test", c->label, c->classes, max_samples,
                                           sub, sizeof sub);
    if (rc) {
        /* a reader's message that names its own option keeps it */
        const char *opt = !strncmp(sub, "--", 2) ? "" : apart ? "--test-data: " : "--data: ";
        snprintf(err, errlen, "%s%s", opt, sub);
        return -1;
    }
    if (test->dim == train->dim)
        return 0;
    if (apart)
        snprintf(err, errlen, "--test-data: '%s' has %zu features per sample, the training data '%s' %zu: the test set needs the training set's columns",
                 test_data, test->dim, data, train->dim);
    else
        snprintf(err, errlen, "--data: the test split has %zu features per sample, the training split %zu",
                 test->dim, train->dim);
    dataset_free(test);
    return -1;
}
