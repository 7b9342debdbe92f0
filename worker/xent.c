/* Softmax cross-entropy over integer labels. */
#include "xent.h"

#include <math.h>
#include <string.h>

double xent_forward(float *probs, int *correct, const float *logits, const int32_t *labels,
                    int B, int K)
{
    double loss = 0.0;
    int right = 0;
    for (int i = 0; i < B; i++) {
        const float *z = logits + (size_t)i * K;
        float *p = probs + (size_t)i * K;
        /* strict > keeps the lowest index on ties, numpy's arg-max rule, so a
         * tie counts as correct only for the first of the tied classes */
        int arg = 0;
        float zmax = z[0];
        for (int k = 1; k < K; k++) {
            if (z[k] > zmax) {
                zmax = z[k];
                arg = k;
            }
        }
        /* subtracting the max keeps exp() finite for any logits */
        double sum = 0.0;
        for (int k = 0; k < K; k++) {
            p[k] = expf(z[k] - zmax);
            sum += p[k];
        }
        float inv = (float)(1.0 / sum);
        for (int k = 0; k < K; k++)
            p[k] *= inv;
        /* -log p[label] from the logits, not from the float p: p underflows
         * to 0 for an answer wrong by ~100 logits, and log(0) is -inf */
        loss += log(sum) - ((double)z[labels[i]] - (double)zmax);
        right += arg == labels[i];
    }
    *correct = right;
    return loss;
}

void xent_backward(float *dlogits, const float *probs, const int32_t *labels, int B, int K)
{
    memcpy(dlogits, probs, (size_t)B * (size_t)K * sizeof *dlogits);
    for (int i = 0; i < B; i++)
        dlogits[(size_t)i * K + labels[i]] -= 1.0f;
}

double xent_forward_smoothed(float *probs, int *correct, const float *logits,
                             const int32_t *labels, int B, int K, float s)
{
    /* the softmax and the arg-max as xent_forward computes them (its
     * unsmoothed loss is not needed); the loss is rebuilt in double below */
    xent_forward(probs, correct, logits, labels, B, K);
    double loss = 0.0;
    for (int i = 0; i < B; i++) {
        const float *z = logits + (size_t)i * K;
        double zmax = z[0], zsum = 0.0, sum = 0.0;
        for (int k = 1; k < K; k++)
            zmax = z[k] > zmax ? z[k] : zmax;
        for (int k = 0; k < K; k++) {
            sum += exp((double)z[k] - zmax);
            zsum += (double)z[k] - zmax;
        }
        /* -log p_k = log(sum) - (z_k - zmax), weighted by q_k */
        loss += log(sum) - (1.0 - (double)s) * ((double)z[labels[i]] - zmax) -
                (double)s / K * zsum;
    }
    return loss;
}

void xent_backward_smoothed(float *dlogits, const float *probs, const int32_t *labels, int B,
                            int K, float s)
{
    float off = s / (float)K, on = 1.0f - s + off;
    for (int i = 0; i < B; i++) {
        const float *p = probs + (size_t)i * K;
        float *d = dlogits + (size_t)i * K;
        for (int k = 0; k < K; k++)
            d[k] = p[k] - (k == labels[i] ? on : off);
    }
}
