/* `make bench`, one rank: the sgemm rate of a training step's own matrix
 * shapes against the rate the whole step achieves, and the share of the step
 * that is not matrix multiplication, for the MLP 784-1024-1024-10 with batch
 * norm at several batch sizes. Prints one table; run with one BLAS thread. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataset.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "sampler.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The GEMMs of one step of the linear layers (in, out) at batch B: forward,
 * weight gradient, and input gradient for all but the first layer. */
static double gemm_step(const int *dims, int nl, int B, float **a, float **w, float **o,
                        double *flops)
{
    double t0 = now();
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
    return now() - t0;
}

static float *randn(size_t n, uint64_t key)
{
    float *p = aligned_alloc(64, ((n * sizeof(float)) + 63) & ~(size_t)63);
    for (size_t i = 0; i < n; i++)
        p[i] = 0.05f * (float)rng_normal(1, 9, key, i, 0);
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The GEMMs of a step, repeated for `seconds`: GFLOP/s of the fastest step
 * (*best) and of the median one (*median). The median is what a rate
 * averaged over many steps, as training reports it, should be set against;
 * the best is the stricter figure. */
static void gemm_rates(const int *dims, int nl, int B, double seconds, double *best,
                       double *median)
{
    float *a[8], *w[8], *o[8];
    for (int l = 0; l < nl; l++) {
        a[l] = randn((size_t)B * dims[l], 10 + (uint64_t)l);
        w[l] = randn((size_t)dims[l] * dims[l + 1], 20 + (uint64_t)l);
        o[l] = randn((size_t)B * dims[l + 1], 30 + (uint64_t)l);
    }
    size_t n = 0, cap = 1024;
    double *times = malloc(cap * sizeof *times), flops, t_end = now() + seconds;
    do {
        double t = gemm_step(dims, nl, B, a, w, o, &flops);
        if (n == cap)
            times = realloc(times, (cap *= 2) * sizeof *times);
        times[n++] = t;
    } while (now() < t_end);
    qsort(times, n, sizeof *times, cmp_double);
    *best = flops / times[0];
    *median = flops / times[n / 2];
    free(times);
    for (int l = 0; l < nl; l++) {
        free(a[l]);
        free(w[l]);
        free(o[l]);
    }
}

/* Synthetic uint8 data of Fashion-MNIST's shape, so the step includes the
 * gather and normalisation it has in training. */
static void make_data(struct dataset *d, size_t n, size_t dim)
{
    memset(d, 0, sizeof *d);
    d->type = SAMPLE_U8;
    d->n = n;
    d->dim = dim;
    d->classes = 10;
    uint8_t *x = malloc(n * dim);
    d->y = malloc(n * sizeof *d->y);
    for (size_t i = 0; i < n * dim; i++)
        x[i] = (uint8_t)(rng_u64(3, 1, i, 0, 0) & 0xff);
    for (size_t i = 0; i < n; i++)
        d->y[i] = (int32_t)(i % 10);
    d->x = x;
}

static void bench_batch(int B, double seconds)
{
    static const int dims[] = { 784, 1024, 1024, 10 };
    struct spec s;
    char err[256];
    spec_parse(&s, "784-1024-1024-10", true, 0, err, sizeof err);
    struct model_options mo = { .bn_eps = 1e-5f, .bn_momentum = 0.1f };
    struct model m;
    if (model_build(&m, &s, B, &mo, err, sizeof err)) {
        fprintf(stderr, "bench: %s\n", err);
        exit(1);
    }
    model_init_params(&m, 1);
    struct dataset d;
    make_data(&d, 8192, 784);
    dataset_feature_stats(&d, m.in_mean, m.in_inv_std);
    uint32_t *perm = malloc(d.n * sizeof *perm);
    sampler_permutation(perm, d.n, 1, 0);
    struct optim o;
    struct optim_config oc = { .kind = OPTIM_SGD, .weight_decay = 5e-4f, .wd_mode = WD_L2 };
    optim_init(&o, &oc, &m.arena);

    double gemm_rate, gemm_median;
    gemm_rates(dims, 3, B, seconds, &gemm_rate, &gemm_median);
    double step_flops = 0;
    for (int l = 0; l < 3; l++)
        step_flops += (l > 0 ? 6.0 : 4.0) * B * dims[l] * dims[l + 1];

    long steps = 0;
    double best = 1e30, t_end = now() + seconds;
    size_t per_epoch = d.n / (size_t)B;
    do {
        double t0 = now();
        const uint32_t *idx = perm + (size_t)(steps % (long)per_epoch) * (size_t)B;
        struct pass_ctx ctx = { .train = true, .seed = 1, .step = (uint64_t)steps };
        int correct;
        model_batch_loss(&m, &d, idx, B, &ctx, &correct);
        model_backward(&m, m.labels, B, NULL, NULL);
        model_update_running(&m);
        optim_step(&o, &m.arena, 0.01f, 0.9f, 1.0f / (float)B);
        double t = now() - t0;
        best = t < best ? t : best;
        steps++;
    } while (now() < t_end);
    double gemm_time = step_flops / gemm_rate;
    double step_rate = step_flops / best;
    printf("%6d %10.1f %10.1f %8.3f %12.0f %9.3f %12.1f%%\n", B, gemm_rate / 1e9, step_rate / 1e9,
           step_rate / gemm_rate, B / best, best * 1e3, 100.0 * (best - gemm_time) / best);
    free(perm);
    optim_free(&o);
    dataset_free(&d);
    model_free(&m);
}

int main(int argc, char **argv)
{
    static const int dims[] = { 784, 1024, 1024, 10 };
    openblas_set_num_threads(1);
    /* --sgemm-rate B SECONDS: only the GFLOP/s of a step's GEMMs at batch B,
     * best and median */
    if (argc == 4 && !strcmp(argv[1], "--sgemm-rate")) {
        double best, median;
        gemm_rates(dims, 3, atoi(argv[2]), atof(argv[3]), &best, &median);
        printf("%.2f %.2f\n", best / 1e9, median / 1e9);
        return 0;
    }
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    printf("one rank, one OpenBLAS thread (%s); MLP 784-1024-1024-10 + batch norm, SGD momentum\n",
           openblas_get_config());
    printf("%6s %10s %10s %8s %12s %9s %13s\n", "batch", "sgemm", "step", "step/", "samples/s",
           "step ms", "non-GEMM");
    printf("%6s %10s %10s %8s %12s %9s %13s\n", "", "GFLOP/s", "GFLOP/s", "sgemm", "", "(best)",
           "share");
    static const int batches[] = { 32, 256, 1024 };
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++)
        bench_batch(batches[i], seconds);
    return 0;
}
