/* The benchmark programs' shared helpers (bench_util.h). */
#include "bench_util.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

float *bench_randn(size_t n, uint64_t key)
{
    float *p = aligned_alloc(64, ((n * sizeof(float)) + 63) & ~(size_t)63);
    for (size_t i = 0; i < n; i++)
        p[i] = 0.05f * (float)rng_normal(1, 9, key, i, 0);
    return p;
}

int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One step's GEMMs: returns seconds and their FLOPs in *flops. */
static double gemm_step(const int *dims, int nl, int B, float **a, float **w, float **o,
                        double *flops)
{
    double t0 = bench_now();
    *flops = 0;
    for (int l = 0; l < nl; l++) {
        int in = dims[l], out = dims[l + 1];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, out, in, 1.0f, a[l], in, w[l], in,
                    0.0f, o[l], out);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, B, 1.0f, o[l], out, a[l], in,
                    0.0f, w[l], in);
        *flops += 4.0 * B * in * out;
        if (l > 0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, in, out, 1.0f, o[l], out,
                        w[l], in, 0.0f, a[l], in);
            *flops += 2.0 * B * in * out;
        }
    }
    return bench_now() - t0;
}

void bench_gemm_rates(const int *dims, int nl, int B, double seconds, double *best,
                      double *median, double *median_seconds)
{
    float *a[8], *w[8], *o[8];
    for (int l = 0; l < nl; l++) {
        a[l] = bench_randn((size_t)B * dims[l], 10 + (uint64_t)l);
        w[l] = bench_randn((size_t)dims[l] * dims[l + 1], 20 + (uint64_t)l);
        o[l] = bench_randn((size_t)B * dims[l + 1], 30 + (uint64_t)l);
    }
    size_t n = 0, cap = 1024;
    double *times = malloc(cap * sizeof *times), flops, t_end = bench_now() + seconds;
    do {
        double t = gemm_step(dims, nl, B, a, w, o, &flops);
        if (n == cap)
            times = realloc(times, (cap *= 2) * sizeof *times);
        times[n++] = t;
    } while (bench_now() < t_end);
    qsort(times, n, sizeof *times, bench_cmp_double);
    *best = flops / times[0];
    *median = flops / times[n / 2];
    if (median_seconds)
        *median_seconds = times[n / 2];
    free(times);
    for (int l = 0; l < nl; l++) {
        free(a[l]);
        free(w[l]);
        free(o[l]);
    }
}

void bench_make_data(struct dataset *d, size_t n, size_t dim)
{
    memset(d, 0, sizeof *d);
    d->type = SAMPLE_U8;
    d->n = n;
    d->dim = dim;
    d->shape = (struct shape){ (int)dim, 1, 1 };
    d->classes = 10;
    uint8_t *x = malloc(n * dim);
    d->y = malloc(n * sizeof *d->y);
    for (size_t i = 0; i < n * dim; i++)
        x[i] = (uint8_t)(rng_u64(3, 1, i, 0, 0) & 0xff);
    for (size_t i = 0; i < n; i++)
        d->y[i] = (int32_t)(i % 10);
    d->x = x;
}
