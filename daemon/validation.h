/* The run's validation and test sets, the same for training and for the
 * commands that reopen a run from its checkpoint. */
#ifndef DDT_VALIDATION_H
#define DDT_VALIDATION_H

#include <stddef.h>

#include "dataset.h"
#include "train.h"

/* --val-fraction: round(F N) training rows, the first of the seed's
 * RNG_HOLDOUT shuffle, moved out of train into val (a view, no copy);
 * --val-data: a separate set with train's features. Every rank draws the
 * same split. Neither given: val stays empty. Returns 0 or -1 with err. */
int validation_open(const struct train_config *c, struct dataset *train, struct dataset *val,
                    char *err, size_t errlen);

/* The test set: test_data's (--test-data: a .csv file as it is, another
 * --data value its test split) when it is non-empty, else the test split of
 * data (the run's --data, or a command's), with c's label and classes and
 * its first max_samples samples (0: all). Refused unless it has train's
 * features per sample. Errors name the option: --test-data, or --data when
 * its test split is at fault. Returns 0 or -1 with err. */
int validation_open_test(const struct train_config *c, const char *data, const char *test_data,
                         const struct dataset *train, struct dataset *test, size_t max_samples,
                         char *err, size_t errlen);

#endif
