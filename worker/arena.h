/* One allocation for every parameter and one, laid out the same, for every
 * gradient; each tensor is a named view (offset, shape) into both. */
#ifndef DDT_ARENA_H
#define DDT_ARENA_H

#include <stdbool.h>
#include <stddef.h>

enum tensor_role { ROLE_WEIGHT = 1, ROLE_BIAS = 2, ROLE_BN_GAMMA = 3, ROLE_BN_BETA = 4 };

struct tensor_view {
    char name[32];     /* "fc1.weight", "bn1.bias", ... */
    enum tensor_role role;
    size_t off;        /* offset into the arena, in floats */
    size_t n;          /* element count */
    int rows, cols;    /* shape; cols == 1 for vectors */
    int layer;         /* index of the trainable layer (fc, conv or res) it belongs to, from 0 */
    float lr_mult;     /* learning-rate multiplier (0 freezes the tensor) */
};

struct arena {
    float *w;          /* parameters */
    float *g;          /* gradients, same layout */
    size_t n;          /* floats in each */
    struct tensor_view *views;
    int nviews;
    int cap;
};

/* A zeroed, 64-byte aligned buffer of n floats (free with free), the kind
 * every per-tensor buffer of the engine is. */
float *arena_buffer(size_t n);

void arena_init(struct arena *a);
/* Reserves a tensor; returns its index. Storage is allocated by
 * arena_allocate once every tensor is declared. */
int arena_declare(struct arena *a, const char *name, enum tensor_role role, int rows, int cols,
                  int layer);
/* Allocates w and g (64-byte aligned, zeroed). Returns 0 or -1. */
int arena_allocate(struct arena *a);
void arena_free(struct arena *a);

static inline float *arena_w(const struct arena *a, int view)
{
    return a->w + a->views[view].off;
}
static inline float *arena_g(const struct arena *a, int view)
{
    return a->g + a->views[view].off;
}

/* Learning-rate multipliers for fine-tuning: tensors of the first `frozen`
 * trainable layers get 0; layer l (from 1) of L gets decay^(L-l), so the
 * last layer learns at the full rate and earlier ones slower. */
void arena_set_layer_rates(struct arena *a, int frozen, double decay);

/* Biases and batch-norm parameters: exempt from weight decay and from LARS/LAMB
 * trust ratios when the user asks. */
static inline bool tensor_is_vector_param(const struct tensor_view *v)
{
    return v->role != ROLE_WEIGHT;
}

#endif
