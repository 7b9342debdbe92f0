/* Maximising a function over a box: projected sign-gradient ascent with step
 * control, the search behind Keskar et al.'s sharpness. Pure numerics over
 * callbacks, so that it is tested without MPI on functions whose maximum is
 * known. */
#ifndef DDT_ASCENT_H
#define DDT_ASCENT_H

#include <stddef.h>

/* f at y (m floats); with grad non-NULL also its gradient (m floats). */
typedef double (*box_fn)(void *user, const float *y, float *grad);

struct ascent_result {
    double f0;        /* f at y = 0 */
    double best;      /* the largest f found */
    int iterations;
    int evaluations;  /* calls of f (with or without gradient) */
};

/* From y = 0, iters times: step to clip(y + a b sign(grad f(y))) with b the
 * box half-widths (m floats) and a the step fraction, starting at 1 (the
 * corner that maximises the linear model of f); a step that raises f is kept
 * and a grows by half (up to 1), otherwise a halves. y (m floats) ends at the
 * best point; work holds 2 m floats. */
void box_ascent(box_fn f, void *user, const float *bound, size_t m, int iters, float *y,
                float *work, struct ascent_result *res);

#endif
