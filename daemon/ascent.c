/* Projected sign-gradient ascent over a box. */
#include "ascent.h"

#include <string.h>

void box_ascent(box_fn f, void *user, const float *bound, size_t m, int iters, float *y,
                float *work, struct ascent_result *res)
{
    float *grad = work, *cand = work + m;
    memset(y, 0, m * sizeof *y);
    double fy = f(user, y, grad), step = 1.0;
    res->f0 = fy;
    res->evaluations = 1;
    int fresh = 1; /* grad belongs to y */
    for (res->iterations = 0; res->iterations < iters; res->iterations++) {
        if (!fresh) {
            fy = f(user, y, grad);
            res->evaluations++;
            fresh = 1;
        }
        for (size_t i = 0; i < m; i++) {
            float dir = grad[i] > 0 ? 1.0f : grad[i] < 0 ? -1.0f : 0.0f;
            float moved = y[i] + (float)step * bound[i] * dir;
            cand[i] = moved > bound[i] ? bound[i] : moved < -bound[i] ? -bound[i] : moved;
        }
        double fc = f(user, cand, NULL);
        res->evaluations++;
        if (fc > fy) {
            memcpy(y, cand, m * sizeof *y);
            fy = fc;
            step = step * 1.5 > 1.0 ? 1.0 : step * 1.5;
            fresh = 0;
        } else {
            step *= 0.5;
        }
    }
    res->best = fy;
}
