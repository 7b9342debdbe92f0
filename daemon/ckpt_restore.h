/* Reading a model and a run's configuration back out of a Checkpoint
 * message: shared by training (resume, fine-tuning) and the analysis
 * commands, none of which needs the trainer for it.
 *
 * A checkpoint whose CRCs are right is still untrusted input: every count,
 * shape and counter is checked against the model and the configuration
 * before it is used, and a refusal names the field, its value and what is
 * allowed. */
#ifndef DDT_CKPT_RESTORE_H
#define DDT_CKPT_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "model.h"
#include "schedule.h"
#include "spec.h"
#include "train.h"

/* Copies elements [first, first + len) of the tensor `name` of ts[0..n) to
 * dst after checking that it exists and has the shape rows x cols (and so
 * rows * cols elements). */
int ckpt_restore_tensor_part(Ddtrain__Tensor *const *ts, size_t n, const char *name, float *dst,
                             int rows, int cols, size_t first, size_t len, char *err,
                             size_t errlen);

/* Restores parameters, batch-norm running statistics and input
 * normalisation into m, checking the message version, every tensor count,
 * name and shape; skip_head leaves the last linear layer as it is. */
int ckpt_restore_model(struct model *m, const Ddtrain__Checkpoint *msg, bool skip_head,
                       char *err, size_t errlen);

/* The schedule state of msg against the run it is to continue: its schedule
 * (sched), seed, and a training set of train_n samples. The position
 * (epoch, batch in the epoch) must lie inside the schedule, the step must be
 * the one that position is, the global batch the schedule's at that epoch,
 * the seed the run's, and the counters that follow the step (optimizer
 * steps, the open log interval, noise-scale updates) no larger than it. */
int ckpt_check_schedule(const Ddtrain__Checkpoint *msg, const struct sched_config *sched,
                        uint64_t seed, size_t train_n, char *err, size_t errlen);

/* The optimizer field of msg holds a moment tensor (two with
 * second_moment) for each of the model's nviews parameter tensors, and no
 * other. */
int ckpt_check_optimizer(const Ddtrain__Checkpoint *msg, int nviews, bool second_moment,
                         char *err, size_t errlen);

/* The model spec stored in msg against the spec of the model it is to
 * continue (both in the canonical form spec_format writes). */
int ckpt_check_model_spec(const Ddtrain__Checkpoint *msg, const struct spec *s, char *err,
                          size_t errlen);

/* The run configuration a checkpoint carries (defaults for what it lacks). */
int ckpt_parse_config(const Ddtrain__Checkpoint *msg, struct train_config *cfg, char *err,
                      size_t errlen);

#endif
