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

/* Label smoothing (Szegedy et al.): the target of row i is
 * q = (1 - s) onehot(labels[i]) + s / K, so each row's loss is
 * -sum_k q_k log p_k = log sum_k exp(z_k) - (1 - s) z_y - (s / K) sum_k z_k.
 * As xent_forward otherwise (probs, the SUM of the losses, *correct); s = 0
 * gives xent_forward's loss, though by other operations. 0 <= s < 1. */
double xent_forward_smoothed(float *probs, int *correct, const float *logits,
                             const int32_t *labels, int B, int K, float s);

/* dlogits (B, K) = probs - q: the gradient of the summed smoothed loss. */
void xent_backward_smoothed(float *dlogits, const float *probs, const int32_t *labels, int B,
                            int K, float s);

#endif
