/* A model: layers built from a spec through the table of layer kinds, one
 * parameter arena, activation and scratch buffers sized once for the largest
 * slice, forward and backward over a slice. */
#ifndef DDT_MODEL_H
#define DDT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "layer.h"
#include "spec.h"

struct dataset;
struct augment_pass;

/* Kept as given (the option table writes them); the layers hold their float
 * values. */
struct model_options {
    int bn_group;       /* ghost batch-norm group (0: the whole slice) */
    double bn_eps;      /* default 1e-5 */
    double bn_momentum; /* default 0.1 (PyTorch) */
};

struct model {
    struct spec spec;
    int nlayers;
    struct layer *layers;
    struct arena arena;
    int in_dim, classes, max_batch, max_width;
    float **act;        /* act[0]: input (max_batch, in_dim); act[i+1]: layer i's output */
    float *dact[2];     /* ping-pong activation gradients (max_batch, max_width) */
    float *probs;       /* softmax (max_batch, classes) */
    int32_t *labels;    /* (max_batch) */
    /* every running mean then every variance of the layers with running
     * statistics (bn), one block for reductions and checkpoints */
    float *bn_running;
    size_t bn_running_n;
    /* the last training pass's batch statistics, laid out like bn_running, as
     * SUMS over ghost groups, then the group count: ranks add these blocks so
     * that every replica moves its running statistics identically */
    float *bn_batch;    /* (bn_running_n + 1) */
    /* layers whose group (the weighted layer they belong to) is below this
     * keep their running statistics: a frozen layer's batch norm is frozen
     * whole (0: none; set with the learning rates, --freeze-layers) */
    int frozen_groups;
    float *in_mean, *in_inv_std; /* input normalisation (in_dim each) */
    /* squared norms of the gradient of the first half of the slice's rows
     * and of the rest, when measure_halves is set (one rank's noise scale) */
    bool measure_halves;
    /* with measure_halves: half_sq[0] gets the squared norm of the pass's
     * own gradient (all its rows) instead, a micro-batch's under gradient
     * accumulation, where the gradients already hold the earlier ones' */
    bool measure_whole;
    float *half_scratch;  /* the largest weight tensor */
    double half_sq[2];
    /* model_backward adds to the parameter gradients (gradient accumulation:
     * the micro-batches of a step after the first) */
    bool accumulate;
    /* --label-smoothing of training passes (0: off), and what the current
     * pass uses: evaluations report the plain cross-entropy */
    float label_smoothing, pass_smoothing;
};

/* Builds the layers, their shapes and tensor views, and sizes every buffer,
 * without allocating any storage: model_param_count and
 * model_activation_bytes then say what model_build would hold, before a
 * rank commits to it (free with model_free). Returns -1 with err filled. */
int model_plan(struct model *m, const struct spec *s, int max_batch,
               const struct model_options *opt, char *err, size_t errlen);

/* Builds the layers and allocates every buffer once. Returns -1 with err
 * filled on failure (bad sizes, out of memory). */
int model_build(struct model *m, const struct spec *s, int max_batch,
                const struct model_options *opt, char *err, size_t errlen);
void model_free(struct model *m);

/* Zeroes the arena, then each kind's init_params: He-normal weights (std
 * sqrt(2 / fan_in)) for layers that feed a ReLU, LeCun normal (std
 * sqrt(1 / fan_in)) for the output layer, zero biases, batch-norm gamma 1
 * and beta 0, running statistics 0 and 1; keyed by seed alone. */
void model_init_params(struct model *m, uint64_t seed);

/* Forward of B rows of act[0]; returns the logits (B, classes). A training
 * pass fills bn_batch; model_update_running then moves the running statistics. */
const float *model_forward(struct model *m, const struct pass_ctx *ctx, int B);

/* Softmax cross-entropy of the last forward against labels[0..B): returns the
 * loss sum and sets *correct. */
double model_loss(struct model *m, const int32_t *labels, int B, int *correct);

/* Gathers samples idx[0..count) of d into act[0] and labels, normalised with
 * the model's input statistics, forwards them and returns model_loss's sum
 * (count <= max_batch). */
double model_batch_loss(struct model *m, const struct dataset *d, const uint32_t *idx, int count,
                        const struct pass_ctx *ctx, int *correct);

/* model_batch_loss with each sample augmented as aug says (NULL: none); for
 * training steps only, evaluation never augments. */
double model_batch_loss_augmented(struct model *m, const struct dataset *d, const uint32_t *idx,
                                  int count, const struct pass_ctx *ctx,
                                  const struct augment_pass *aug, int *correct);

/* running = (1 - momentum) running + momentum * (bn_batch sums / group count),
 * except in the frozen layers (frozen_groups). */
void model_update_running(struct model *m);

/* Called after backward has written the gradients of layer `layer`, in
 * reverse layer order, so communication can start early. */
typedef void (*grad_ready_fn)(void *user, int layer);

/* Backward of the last model_loss, in the mode of the last forward (so the
 * gradient of the evaluation-mode loss is available to the analysis
 * commands); overwrites every parameter gradient, or adds to it when
 * m->accumulate is set. */
void model_backward(struct model *m, const int32_t *labels, int B, grad_ready_fn ready,
                    void *user);

/* The contiguous arena range [*lo, *hi) of the parameters of layers >= layer;
 * lets a caller reduce gradients as soon as they exist. */
void model_grad_range(const struct model *m, int layer, size_t *lo, size_t *hi);

/* Allocates what model_backward needs to split the gradient's squared norm
 * between the first half of the rows and the rest (then set
 * measure_halves). Each half's gradient is its rows' share of the batch's
 * gradient, the same split ranks make. Returns 0 or -1. */
int model_enable_halves(struct model *m);

size_t model_param_count(const struct model *m);
/* Bytes of the activation, activation-gradient and layer scratch buffers. */
size_t model_activation_bytes(const struct model *m);
/* Forward multiply-adds x2 per sample (training step FLOPs are about 3x this). */
double model_flops_per_sample(const struct model *m);

#endif
