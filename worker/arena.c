/* The parameter and gradient arenas and their tensor views. */
#include "arena.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

float *arena_buffer(size_t n)
{
    size_t bytes = ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void arena_init(struct arena *a)
{
    memset(a, 0, sizeof *a);
}

int arena_declare(struct arena *a, const char *name, enum tensor_role role, int rows, int cols,
                  int layer)
{
    if (a->nviews == a->cap) {
        int cap = a->cap ? 2 * a->cap : 16;
        struct tensor_view *v = realloc(a->views, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        a->views = v;
        a->cap = cap;
    }
    struct tensor_view *v = &a->views[a->nviews];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->role = role;
    v->rows = rows;
    v->cols = cols;
    v->n = (size_t)rows * (size_t)cols;
    /* keep every tensor 64-byte aligned so vector loops start clean */
    v->off = (a->n + 15) & ~(size_t)15;
    v->layer = layer;
    v->lr_mult = 1.0f;
    a->n = v->off + v->n;
    return a->nviews++;
}

int arena_allocate(struct arena *a)
{
    a->w = arena_buffer(a->n);
    a->g = arena_buffer(a->n);
    if (!a->w || !a->g) {
        free(a->w);
        free(a->g);
        a->w = a->g = NULL;
        return -1;
    }
    return 0;
}

void arena_free(struct arena *a)
{
    free(a->w);
    free(a->g);
    free(a->views);
    memset(a, 0, sizeof *a);
}

void arena_set_layer_rates(struct arena *a, int frozen, double decay)
{
    if (a->nviews == 0)
        return;
    int L = a->views[a->nviews - 1].layer + 1;
    for (int v = 0; v < a->nviews; v++) {
        struct tensor_view *tv = &a->views[v];
        tv->lr_mult = tv->layer < frozen ? 0.0f : (float)pow(decay, (double)(L - 1 - tv->layer));
    }
}
