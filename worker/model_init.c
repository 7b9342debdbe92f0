/* The initial weights of --init lecun and --init torch, tensor by tensor
 * over the arena's views, so every kind with weights (fc, conv, the convs
 * of a residual block) follows without a change of its own. */
#include "model_init.h"

#include <math.h>

#include "rng.h"

/* w (n) ~ N(0, std^2), keyed as the kinds' own He draws are. */
static void fill_normal(float *w, size_t n, double std, uint64_t seed, int view)
{
    for (size_t k = 0; k < n; k++)
        w[k] = (float)(std * rng_normal(seed, RNG_INIT, (uint64_t)view, k, 0));
}

/* w (n) ~ U[-bound, bound): 2u - 1 with u of 24 bits is exact in float. */
static void fill_uniform(float *w, size_t n, double bound, uint64_t seed, int view)
{
    for (size_t k = 0; k < n; k++) {
        float u = rng_uniform(seed, RNG_INIT, (uint64_t)view, k, 0);
        w[k] = (float)(bound * (2.0 * (double)u - 1.0));
    }
}

void model_init_params_as(struct model *m, uint64_t seed, enum model_init how)
{
    model_init_params(m, seed);
    if (how == INIT_HE)
        return;
    struct arena *a = &m->arena;
    /* a kind declares its weight, then its bias: the bias's fan-in is the
     * weight's before it in the same layer */
    int fan_in = 1, fan_layer = -1;
    for (int v = 0; v < a->nviews; v++) {
        const struct tensor_view *tv = &a->views[v];
        float *w = arena_w(a, v);
        if (tv->role == ROLE_WEIGHT) {
            fan_in = tv->cols;
            fan_layer = tv->layer;
            double scale = 1.0 / sqrt((double)fan_in);
            if (how == INIT_LECUN)
                fill_normal(w, tv->n, scale, seed, v);
            else
                fill_uniform(w, tv->n, scale, seed, v);
        } else if (tv->role == ROLE_BIAS && how == INIT_TORCH && fan_layer == tv->layer) {
            fill_uniform(w, tv->n, 1.0 / sqrt((double)fan_in), seed, v);
        }
    }
}
