/* Reading a model and a run's configuration back out of a Checkpoint
 * message: shared by training (resume, fine-tuning) and the analysis
 * commands, none of which needs the trainer for it. */
#ifndef DDT_CKPT_RESTORE_H
#define DDT_CKPT_RESTORE_H

#include <stdbool.h>
#include <stddef.h>

#include "ckpt.h"
#include "model.h"
#include "train.h"

/* Copies elements [first, first + len) of the tensor `name` of ts[0..n) to
 * dst after checking that it exists and has count elements. */
int ckpt_restore_tensor_part(Ddtrain__Tensor *const *ts, size_t n, const char *name, float *dst,
                             size_t count, size_t first, size_t len, char *err, int errlen);

/* Restores parameters, batch-norm running statistics and input
 * normalisation into m, checking every name and shape; skip_head leaves the
 * last linear layer as it is. */
int ckpt_restore_model(struct model *m, const Ddtrain__Checkpoint *msg, bool skip_head,
                       char *err, int errlen);

/* The run configuration a checkpoint carries (defaults for what it lacks). */
int ckpt_parse_config(const Ddtrain__Checkpoint *msg, struct train_config *cfg, char *err,
                      int errlen);

#endif
