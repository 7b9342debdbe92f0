/* Not in `make check`: the speed of the convolution kernels (conv.c) at
 * batch 128, one rank, one BLAS thread, for the layers of a small
 * Fashion-MNIST CNN and of CIFAR ResNet-20, beside plain sgemm of the very
 * GEMMs the kernels make (so the gap is im2col, col2im and the bias), and
 * beside sgemm over 8 samples glued into one GEMM (what batching the GEMMs
 * would gain). Prints one table; rates are GFLOP/s of the best repetition.
 *
 *   tests/bench_conv [SECONDS per measurement, default 0.3] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conv.h"
#include "rng.h"

void openblas_set_num_threads(int n);

enum { BATCH = 128, GLUE = 8 };

struct bench_layer {
    const char *name;
    int ic, h, w, oc, k, stride, pad;
    int first; /* the network's first layer: no input gradient */
};

static const struct bench_layer layers[] = {
    { "fmnist conv1 1x28x28 32k5p2", 1, 28, 28, 32, 5, 1, 2, 1 },
    { "fmnist conv2 32x14x14 64k5p2", 32, 14, 14, 64, 5, 1, 2, 0 },
    { "resnet stem 3x32x32 16k3p1", 3, 32, 32, 16, 3, 1, 1, 1 },
    { "resnet 16x32x32 16k3p1", 16, 32, 32, 16, 3, 1, 1, 0 },
    { "resnet 16x32x32 32k3s2p1", 16, 32, 32, 32, 3, 2, 1, 0 },
    { "resnet 16x32x32 32k1s2 (proj)", 16, 32, 32, 32, 1, 2, 0, 0 },
    { "resnet 32x16x16 32k3p1", 32, 16, 16, 32, 3, 1, 1, 0 },
    { "resnet 32x16x16 64k3s2p1", 32, 16, 16, 64, 3, 2, 1, 0 },
    { "resnet 64x8x8 64k3p1", 64, 8, 8, 64, 3, 1, 1, 0 },
    { "pointwise 64x8x8 64k1", 64, 8, 8, 64, 1, 1, 0, 0 },
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *randn(size_t n, uint64_t key)
{
    float *p = aligned_alloc(64, ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = 0.1f * (float)rng_normal(1, 9, key, i, 0);
    return p;
}

struct bufs {
    struct conv_geom g;
    int first;
    float *in, *w, *b, *out, *col, *din, *dw, *db, *dout, *wide;
};

enum what { CONV_FWD, CONV_BWD, GEMM_FWD, GEMM_BWD, GEMM_FWD_GLUED };

/* One pass of `what` over the batch. */
static void run(struct bufs *x, enum what what)
{
    const struct conv_geom *g = &x->g;
    int K = g->ic * g->k * g->k, P = g->oh * g->ow;
    switch (what) {
    case CONV_FWD:
        conv_forward(x->out, x->col, x->in, x->w, x->b, BATCH, g);
        return;
    case CONV_BWD:
        conv_backward(x->first ? NULL : x->din, x->dw, x->db, x->col, x->dout, x->in, x->w, BATCH,
                      g, 0);
        return;
    case GEMM_FWD:
        for (int n = 0; n < BATCH; n++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->oc, P, K, 1.0f, x->w, K,
                        x->col, P, 0.0f, x->out + (size_t)n * g->oc * P, P);
        return;
    case GEMM_BWD:
        for (int n = 0; n < BATCH; n++) {
            const float *dy = x->dout + (size_t)n * g->oc * P;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->oc, K, P, 1.0f, dy, P, x->col,
                        P, n ? 1.0f : 0.0f, x->dw, K);
            if (!x->first)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, g->oc, 1.0f, x->w, K, dy,
                            P, 0.0f, x->col, P);
        }
        return;
    case GEMM_FWD_GLUED:
        for (int n = 0; n < BATCH; n += GLUE)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->oc, GLUE * P, K, 1.0f, x->w,
                        K, x->wide, GLUE * P, 0.0f, x->out + (size_t)n * g->oc * P, GLUE * P);
        return;
    }
}

/* Seconds of the fastest of the passes run for `seconds` (at least 3). */
static double best_time(struct bufs *x, enum what what, double seconds)
{
    double best = 1e30, end = now() + seconds;
    for (int rep = 0; rep < 3 || now() < end; rep++) {
        double t = now();
        run(x, what);
        t = now() - t;
        if (t < best)
            best = t;
    }
    return best;
}

static void bench_one(const struct bench_layer *L, double seconds)
{
    struct bufs x = { .first = L->first };
    if (conv_geom_init(&x.g, L->ic, L->h, L->w, L->oc, L->k, L->stride, L->pad)) {
        fprintf(stderr, "bench_conv: %s does not fit\n", L->name);
        exit(1);
    }
    const struct conv_geom *g = &x.g;
    size_t K = (size_t)g->ic * g->k * g->k, P = (size_t)g->oh * g->ow;
    size_t nin = (size_t)BATCH * g->ic * g->h * g->w, nout = (size_t)BATCH * g->oc * P;
    x.in = randn(nin, 1);
    x.w = randn((size_t)g->oc * K, 2);
    x.b = randn((size_t)g->oc, 3);
    x.out = randn(nout, 4);
    x.dout = randn(nout, 5);
    x.din = randn(nin, 6);
    x.dw = randn((size_t)g->oc * K, 7);
    x.db = randn((size_t)g->oc, 8);
    x.col = randn(K * P, 9); /* the plain GEMMs read it even when conv does not */
    x.wide = randn(K * P * GLUE, 10);

    double f = BATCH * conv_flops(g), fb = f * (L->first ? 1 : 2);
    double cf = best_time(&x, CONV_FWD, seconds), cb = best_time(&x, CONV_BWD, seconds);
    double gf = best_time(&x, GEMM_FWD, seconds), gb = best_time(&x, GEMM_BWD, seconds);
    double gg = best_time(&x, GEMM_FWD_GLUED, seconds);
    printf("%-32s %7.2f %6.1f %6.1f  %7.2f %6.1f %6.1f  %6.1f  %6.0f%%\n", L->name, 1e3 * cf,
           f / cf / 1e9, f / gf / 1e9, 1e3 * cb, fb / cb / 1e9, fb / gb / 1e9, f / gg / 1e9,
           100.0 * (gf + gb) / (cf + cb));
    free(x.in);
    free(x.w);
    free(x.b);
    free(x.out);
    free(x.dout);
    free(x.din);
    free(x.dw);
    free(x.db);
    free(x.col);
    free(x.wide);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0.3;
    openblas_set_num_threads(1);
    printf("batch %d, 1 BLAS thread; GFLOP/s of the best pass (forward FLOPs = 2 OC IC k k OH OW"
           " per sample, backward twice that, once for a first layer)\n", BATCH);
    printf("%-32s %7s %6s %6s  %7s %6s %6s  %6s  %7s\n", "layer", "fwd ms", "conv", "sgemm",
           "bwd ms", "conv", "sgemm", "glued8", "gemm/all");
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        bench_one(&layers[i], seconds);
    printf("conv: the kernels of conv.c; sgemm: their GEMMs alone; glued8: the forward GEMM over"
           " 8 samples at once;\ngemm/all: the share of forward + backward time spent in sgemm\n");
    return 0;
}
