/* The run's validation set, the same for training and for the commands that
 * reopen a run from its checkpoint. */
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

#endif
