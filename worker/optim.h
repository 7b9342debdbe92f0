/* Optimizers over the flat parameter arena. Gradients arrive as SUMS over the
 * global batch; the step multiplies them by grad_scale (1 / global batch). */
#ifndef DDT_OPTIM_H
#define DDT_OPTIM_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"

enum optim_kind { OPT_SGD = 1, OPT_ADAM = 2, OPT_ADAMW = 3, OPT_LARS = 4, OPT_LAMB = 5 };
enum wd_mode { WD_L2 = 1, WD_DECOUPLED = 2 };

struct optim_config {
    enum optim_kind kind;
    bool nesterov;          /* SGD, LARS */
    float beta1, beta2;     /* Adam, AdamW, LAMB (beta1 is replaced by the plan's momentum) */
    float eps;              /* Adam, AdamW, LAMB */
    float weight_decay;
    enum wd_mode wd_mode;   /* AdamW is always decoupled, Adam always L2 */
    bool wd_exempt_vectors; /* no decay on biases and batch-norm parameters */
    float trust_coef;       /* LARS eta (default 0.001) */
    bool trust_exempt_vectors; /* LARS/LAMB: vectors get trust ratio 1 */
};

struct optim {
    struct optim_config cfg;
    size_t n;
    float *m;    /* momentum / first moment (n) */
    float *v;    /* second moment (n), Adam family only, else NULL */
    long t;      /* steps taken, for Adam bias correction */
};

int optim_init(struct optim *o, const struct optim_config *cfg, size_t n);
void optim_free(struct optim *o);

/* One update of every tensor of the arena: each tensor's rate is
 * lr * view.lr_mult; momentum is SGD/LARS momentum or Adam's beta1. */
void optim_step(struct optim *o, struct arena *a, float lr, float momentum, float grad_scale);

#endif
