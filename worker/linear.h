/* Fully connected layer: every product goes through cblas_sgemm. */
#ifndef DDT_LINEAR_H
#define DDT_LINEAR_H

/* out (B, OUT) = in (B, IN) · w^T (OUT, IN) + b (OUT) */
void linear_forward(float *out, const float *in, const float *w, const float *b, int B, int IN,
                    int OUT);

/* din (B, IN) = dout (B, OUT) · w (OUT, IN)            (skipped when din is NULL)
 * dw (OUT, IN) = dout^T · in, db (OUT) = column sums of dout.
 * When accumulate is 0, dw and db are overwritten (no separate zeroing pass);
 * otherwise they are added to. din is always overwritten. */
void linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, int B, int IN, int OUT, int accumulate);

#endif
