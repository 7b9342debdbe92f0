/* Optimizers over the flat parameter arena. Gradients arrive as SUMS over the
 * global batch; the step multiplies them by grad_scale (1 / global batch). */
#ifndef DDT_OPTIM_H
#define DDT_OPTIM_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"

enum optim_kind { OPTIM_SGD = 1, OPTIM_ADAM = 2, OPTIM_ADAMW = 3, OPTIM_LARS = 4, OPTIM_LAMB = 5 };
enum wd_mode { WD_L2 = 1, WD_DECOUPLED = 2 };

/* The coefficients are doubles as given (the option table writes them, and
 * the run's config prints them back exactly); the update runs with their
 * float values. Adam's beta1 is the step's momentum argument. */
struct optim_config {
    enum optim_kind kind;
    bool nesterov;          /* SGD, LARS */
    double beta2;           /* Adam, AdamW, LAMB */
    double eps;             /* Adam, AdamW, LAMB */
    double weight_decay;
    enum wd_mode wd_mode;   /* AdamW is always decoupled, Adam always L2 */
    bool wd_exempt_bn_bias; /* no decay on biases and batch-norm parameters */
    double trust_coef;      /* LARS eta (default 0.001) */
    bool trust_exempt_vectors; /* LARS/LAMB: vectors get trust ratio 1 */
};

/* Sums per-tensor partial norms (count doubles, in place) over every holder
 * of a part of the state: an allreduce when the state is sharded by rank. */
typedef void (*optim_norm_sum_fn)(void *user, double *norms, int count);

/* A range [lo, hi) of the arena. */
struct optim_range {
    size_t lo, hi;
};

struct optim {
    struct optim_config cfg;
    /* the arena ranges this optimizer owns and updates; their state lies one
     * after another in m and v, in this order */
    struct optim_range *ranges;
    int nranges;
    size_t n;       /* elements owned */
    float *m;       /* momentum / first moment (n) */
    float *v;       /* second moment (n), Adam family only, else NULL */
    long t;         /* steps taken, for Adam bias correction */
    /* LARS/LAMB over a range that cuts tensors: how the parts of a tensor's
     * norms are summed (NULL: the range holds whole tensors) */
    optim_norm_sum_fn sum_norms;
    void *sum_user;
    double *norms;  /* 2 per tensor: the LARS/LAMB norms of the step */
};

/* State for the whole arena (its tensors must all be declared). */
int optim_init(struct optim *o, const struct optim_config *cfg, const struct arena *a);
/* State for some ranges of the arena only: one rank's shard of a sharded
 * optimizer. The ranges must not overlap. */
int optim_init_ranges(struct optim *o, const struct optim_config *cfg, const struct arena *a,
                      const struct optim_range *ranges, int nranges);
void optim_free(struct optim *o);

/* One update of the owned range of every tensor of the arena: each tensor's
 * rate is lr * view.lr_mult; momentum is SGD/LARS momentum or Adam's beta1.
 * Parameters and gradients outside the ranges are neither read nor written. */
void optim_step(struct optim *o, struct arena *a, float lr, float momentum, float grad_scale);

/* optim_step's grad_scale for a gradient summed over B samples whose squared
 * norm (over every parameter) is summed_sq, clipped by global norm (Pascanu
 * et al.; PyTorch's clip_grad_norm_): the mean gradient g = sum / B is
 * scaled by min(1, clip_norm / |g|). clip_norm 0: off, 1 / B exactly as
 * without clipping. */
float optim_clip_grad_scale(double summed_sq, int B, double clip_norm);

#endif
