/* Seeded, normalised random directions over the parameter arena. */
#include "directions.h"

#include <math.h>
#include <string.h>

#include "rng.h"

static double norm_of(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return sqrt(s);
}

/* Scales d (n) to the norm of w (n); a zero direction stays zero. */
static void match_norm(float *d, const float *w, size_t n)
{
    double dn = norm_of(d, n), wn = norm_of(w, n);
    double scale = dn > 0 ? wn / dn : 0.0;
    for (size_t i = 0; i < n; i++)
        d[i] = (float)(d[i] * scale);
}

void direction_random(float *d, const struct arena *a, const float *w, uint64_t seed,
                      int which, bool filter_norm)
{
    memset(d, 0, a->n * sizeof *d);
    for (int v = 0; v < a->nviews; v++) {
        const struct tensor_view *tv = &a->views[v];
        if (tv->role != ROLE_WEIGHT)
            continue; /* biases and batch norm: zero, as Li et al. do */
        float *dv = d + tv->off;
        const float *wv = w + tv->off;
        for (size_t i = 0; i < tv->n; i++)
            dv[i] = (float)rng_normal(seed, RNG_DIRECTION, (uint64_t)which, tv->off + i, 0);
        if (filter_norm) {
            for (int r = 0; r < tv->rows; r++)
                match_norm(dv + (size_t)r * tv->cols, wv + (size_t)r * tv->cols,
                           (size_t)tv->cols);
        } else {
            match_norm(dv, wv, tv->n);
        }
    }
}
