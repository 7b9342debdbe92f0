/* A trained model brought back from a checkpoint with the data it was
 * trained on (or other data), for evaluation and the analysis commands. */
#ifndef DDT_CKPT_MODEL_H
#define DDT_CKPT_MODEL_H

#include <stddef.h>

#include "ckpt.h"
#include "dataset.h"
#include "model.h"
#include "train.h"

struct ckpt_model {
    struct train_config cfg; /* the run's configuration */
    struct model model;
    struct dataset train, test;
    struct dataset val;      /* the run's validation set (n = 0: none, or --data given) */
    Ddtrain__Checkpoint *msg;
};

/* Reads path, rebuilds its model with room for batches of max_batch, restores
 * the weights, and loads the data: the run's own (--data, --train-samples as
 * it trained, without the rows --val-fraction held out, its validation set
 * and its --test-data) unless data is non-empty, which brings its own test
 * split; test_data non-empty replaces the test set in either case. Returns
 * 0 or -1 with err. */
int ckpt_model_open(struct ckpt_model *cm, const char *path, const char *data,
                    const char *test_data, int max_batch, char *err, size_t errlen);
void ckpt_model_free(struct ckpt_model *cm);

#endif
