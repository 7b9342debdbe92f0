/* Softmax cross-entropy with integer labels. */
#ifndef DDT_XENT_H
#define DDT_XENT_H

#include <stdint.h>

/* From logits (B, K) and labels (B): probs (B, K) = softmax(logits) (kept for
 * backward), returns the SUM of the B losses (not the mean: ranks add their
 * sums and divide by the global batch); *correct gets the number of rows whose
 * arg-max equals the label. Computed in double for the sum. */
double xent_forward(float *probs, int *correct, const float *logits, const int32_t *labels,
                    int B, int K);

/* dlogits (B, K) = probs - onehot(labels): the gradient of the summed loss. */
void xent_backward(float *dlogits, const float *probs, const int32_t *labels, int B, int K);

#endif
