/* Fully connected layer; every product is one cblas_sgemm. */
#include "linear.h"

#include <cblas.h>
#include <string.h>

#include "simd.h"

void linear_forward(float *out, const float *in, const float *w, const float *b, int B, int IN,
                    int OUT)
{
    /* the bias first, then the product accumulates onto it (beta = 1) */
    for (int i = 0; i < B; i++)
        memcpy(out + (size_t)i * OUT, b, (size_t)OUT * sizeof *out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OUT, IN, 1.0f, in, IN, w, IN, 1.0f,
                out, OUT);
}

/* db (OUT) (+)= column sums of dout (B, OUT), rows added in order. */
DDT_HOT static void bias_grad(float *db, const float *dout, int B, int OUT, int accumulate)
{
    if (!accumulate)
        memset(db, 0, (size_t)OUT * sizeof *db);
    for (int i = 0; i < B; i++) {
        const float *row = dout + (size_t)i * OUT;
        for (int o = 0; o < OUT; o++)
            db[o] += row[o];
    }
}

void linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, int B, int IN, int OUT, int accumulate)
{
    if (din)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, IN, OUT, 1.0f, dout, OUT, w, IN,
                    0.0f, din, IN);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, IN, B, 1.0f, dout, OUT, in, IN,
                accumulate ? 1.0f : 0.0f, dw, IN);
    bias_grad(db, dout, B, OUT, accumulate);
}
