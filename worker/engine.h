/* The engine of one rank: the model, its optimizer and the communication of
 * a step, wired together once (buckets, shards, the optimizer's norm sums,
 * the noise-scale scratch) and driven a step at a time (step.h). */
#ifndef DDT_ENGINE_H
#define DDT_ENGINE_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "augment.h"
#include "average.h"
#include "comm.h"
#include "dataset.h"
#include "model.h"
#include "optim.h"
#include "spec.h"

/* What the engine is built from: plain values, nothing of the caller's. */
struct engine_settings {
    const struct spec *spec;
    int max_slice;                 /* most samples a rank forwards at once (a micro-batch) */
    int accumulate;                /* micro-batches per step (gradient accumulation; 1: none) */
    struct model_options model;
    struct optim_config optim;
    size_t bucket_floats;          /* gradient reduction bucket size */
    bool overlap;                  /* start buckets during backward */
    bool shard;                    /* reduce-scatter + sharded optimizer (ZeRO 1) */
    bool shared_memory;            /* sum the shards in shared memory on one machine */
    bool noise_scale;              /* steps may measure the gradient noise scale */
    bool local_sgd;                /* steps may be local and average the replicas (average.h);
                                      needs shard off: every rank keeps its own copies */
    const struct dataset *train;   /* the training set the steps sample (borrowed) */
    struct augment augment;        /* what training steps do to their images */
    MPI_Comm comm;                 /* the ranks that train together */
    /* the watchdog of every wait on other ranks in a step (comm_wait.h): a
     * wait ends after max(stall_timeout, stall_step_multiple x the median
     * recent step time) seconds and tells on_stall which ranks it lacks */
    double stall_timeout;          /* seconds; 0: waits never end */
    double stall_step_multiple;
    comm_stall_fn on_stall;        /* NULL: nobody is told */
    void *stall_user;
};

/* Lives where it was initialised: the communication points at the model. */
struct engine {
    int rank, nranks;
    MPI_Comm world;                /* the settings' communicator */
    struct model model;
    struct optim opt;
    struct grad_comm comm;
    struct average avg;            /* local SGD's average (settings' local_sgd), else zeroed */
    const struct dataset *train;
    struct augment augment;        /* the settings' */
    int accumulate;                /* the settings' (at least 1) */
    uint32_t *perm;                /* (train->n) the permutation of epoch perm_epoch */
    int64_t perm_epoch;
};

/* Bytes a rank holds for the engine, for the memory report. */
struct engine_memory {
    double params;                 /* parameters and gradients */
    double optimizer;              /* this rank's optimizer state */
    double reduction;              /* the buffer the others' shards arrive in */
    double activations;
};

/* Builds the model (this rank alone), then, if every rank of comm built
 * one, the communication, the optimizer state of the range this rank
 * updates and the step's buffers. Collective. Returns 0, or -1 with err
 * (empty when only another rank failed). The parameters are left for the
 * caller to initialise or restore. */
int engine_init(struct engine *e, const struct engine_settings *s, char *err, size_t errlen);
void engine_free(struct engine *e);

/* The model, for what the engine does not do itself: initialising and
 * restoring parameters, saving them, describing them. */
struct model *engine_model(struct engine *e);
const struct model *engine_model_const(const struct engine *e);

/* Why shared memory was asked for but not used, or "". */
const char *engine_note(const struct engine *e);

/* Loss sum over samples idx[0..count) of d (count <= the model's capacity),
 * and *correct: see model_batch_loss. */
double engine_batch_loss(struct engine *e, const struct dataset *d, const uint32_t *idx,
                         int count, const struct pass_ctx *ctx, int *correct);

/* Mean loss and accuracy over samples [0, n) of d, split across the ranks
 * (collective, guarded; see evaluate_split). */
void engine_evaluate(struct engine *e, const struct dataset *d, size_t n, double *loss,
                     double *acc);

/* The watchdog of the engine's waits, for the caller's own blocking
 * collectives (comm_guard_enter); on a zeroed engine, one without a thread,
 * whose guards do nothing. */
struct comm_watch *engine_watch(struct engine *e);

/* Are the parameters bit-identical on every rank? (collective, watched) */
bool engine_replicas_agree(struct engine *e, unsigned long long *hash);

/* Waits for req, a request the caller started on the engine's ranks (the
 * broadcast of a step's plan, say), under the watchdog of the steps: peer
 * is the rank it waits on, or -1 when that cannot be told; step (from 1)
 * and where name the wait in a report. */
void engine_wait(struct engine *e, MPI_Request *req, int peer, int64_t step, const char *where);

void engine_memory_budget(const struct engine *e, struct engine_memory *out);

/* The whole optimizer state on rank 0: this rank's own arrays, or (sharded)
 * every rank's shard gathered into new ones (*m_all, *v_all, to free; *v
 * is NULL without a second moment). Collective, guarded; returns -1 on
 * every rank when rank 0 is out of memory. */
int engine_gather_optimizer_state(struct engine *e, const float **m, const float **v,
                                  float **m_all, float **v_all);

/* Hands each part of the optimizer state this rank holds to fill: for
 * tensor view tv, elements [first, first + len) of the tensor go to m_dst
 * (and v_dst, NULL without a second moment); len is 0 for a tensor the rank
 * holds nothing of. Stops at fill's first error and returns it. */
typedef int (*engine_state_fill_fn)(void *user, const struct tensor_view *tv, float *m_dst,
                                    float *v_dst, size_t first, size_t len);
int engine_restore_optimizer_state(struct engine *e, engine_state_fill_fn fill, void *user);

/* Optimizer steps taken (Adam's bias correction counts them). */
long engine_optimizer_steps(const struct engine *e);
void engine_set_optimizer_steps(struct engine *e, long steps);

#endif
