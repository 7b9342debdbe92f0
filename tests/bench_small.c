/* `make bench`, small batches: the engine's real training step (step_run) on
 * the MLP 784-1024-1024-10 with batch norm and SGD momentum, run under mpirun
 * at N ranks, beside its roofline, and where the step's time goes.
 *
 *   mpirun -np N bench_small B SECONDS
 *
 * Every rank first times, all ranks at once as they train, the GEMMs of its
 * slice's step alone (the median step) and the step's unavoidable memory
 * traffic alone: every rank's part of the gradients of the parameters it
 * updates read once, and those parameters and their momentum read and
 * written once, in one pass at the machine's bandwidth (the median pass).
 * Their sum is the roofline step. Then the ranks train with the defaults of
 * `ddtrain train` (sharded optimizer, shared memory, overlap, 1 MiB buckets)
 * on synthetic uint8 samples of Fashion-MNIST's shape, rank 0 broadcasting
 * each step's plan as the trainer does. Rank 0 prints one row: samples/s,
 * the roofline's, their ratio, the two parts of the roofline, and the mean
 * step's phases averaged over the ranks (step.h), in milliseconds. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "bench_util.h"
#include "engine.h"
#include "simd.h"
#include "step.h"

#define SAMPLES 60000

/* The plan rank 0 broadcasts before every step, as the trainer does. */
struct bench_plan {
    int64_t step;
    int stop;
};

/* One pass of the step's unavoidable traffic over n owned floats: g = the
 * sum of the ranks' parts a (and b); m = mu m + g; w -= lr m. Vectorised as
 * the optimizer is, so that it runs at the bandwidth and not at the adds. */
DDT_HOT static void traffic_pass(float *restrict w, float *restrict m, const float *restrict a,
                                 const float *restrict b, size_t n)
{
    if (b) {
        for (size_t i = 0; i < n; i++) {
            float mi = 0.9f * m[i] + (a[i] + b[i]);
            m[i] = mi;
            w[i] -= 1e-6f * mi;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float mi = 0.9f * m[i] + a[i];
            m[i] = mi;
            w[i] -= 1e-6f * mi;
        }
    }
}

/* Seconds of the median traffic_pass over n owned floats with nsrc (1 or 2)
 * gradient parts, repeated for `seconds`; *bytes: what one pass moves. */
static double traffic_seconds(size_t n, int nsrc, double seconds, double *bytes)
{
    float *w = bench_randn(n, 51), *m = bench_randn(n, 52), *a = bench_randn(n, 60);
    float *b = nsrc > 1 ? bench_randn(n, 61) : NULL;
    size_t cnt = 0, cap = 1024;
    double *times = malloc(cap * sizeof *times), t_end = bench_now() + seconds;
    do {
        double t0 = bench_now();
        traffic_pass(w, m, a, b, n);
        if (cnt == cap)
            times = realloc(times, (cap *= 2) * sizeof *times);
        times[cnt++] = bench_now() - t0;
    } while (bench_now() < t_end);
    qsort(times, cnt, sizeof *times, bench_cmp_double);
    double t = times[cnt / 2];
    *bytes = (double)n * sizeof(float) * (nsrc + 4.0);
    free(w);
    free(m);
    free(a);
    free(b);
    free(times);
    return t;
}

static int build_engine(struct engine *e, struct spec *s, const struct dataset *d, int B, int N)
{
    char err[256];
    if (spec_parse(s, "784-1024-1024-10", true, 0, err, sizeof err)) {
        fprintf(stderr, "bench_small: %s\n", err);
        return -1;
    }
    struct engine_settings es = {
        .spec = s, .max_slice = (B + N - 1) / N,
        .model = { .bn_eps = 1e-5f, .bn_momentum = 0.1f },
        .optim = { .kind = OPTIM_SGD, .wd_mode = WD_L2 },
        .bucket_floats = 1024 * 1024 / sizeof(float),
        .overlap = true, .shard = true, .shared_memory = true,
        .train = d, .comm = MPI_COMM_WORLD,
    };
    if (engine_init(e, &es, err, sizeof err)) {
        fprintf(stderr, "bench_small: %s\n", err);
        return -1;
    }
    model_init_params(engine_model(e), 1);
    dataset_feature_stats(d, engine_model(e)->in_mean, engine_model(e)->in_inv_std);
    return 0;
}

/* Steps for `seconds` (rank 0's clock decides, through the plan): the wall
 * seconds, the steps taken, and the phases summed (phase[STEP_T_N]: waiting
 * for the plan). */
static double run_steps(struct engine *e, int B, double seconds, long *steps, double *phase)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    struct step_input in = { .global_batch = B, .lr = 0.01, .momentum = 0.9, .seed = 1 };
    long per_epoch = SAMPLES / B;
    double t_start = bench_now(), t_end = t_start + seconds;
    memset(phase, 0, (STEP_T_N + 1) * sizeof *phase);
    for (long k = 0;; k++) {
        struct bench_plan p = { .step = k, .stop = rank == 0 && bench_now() >= t_end };
        double t0 = bench_now();
        MPI_Request req;
        MPI_Ibcast(&p, (int)sizeof p, MPI_BYTE, 0, MPI_COMM_WORLD, &req);
        engine_wait(e, &req, rank == 0 ? -1 : 0, k + 1, "the broadcast of the plan");
        phase[STEP_T_N] += bench_now() - t0;
        if (p.stop) {
            *steps = k;
            return bench_now() - t_start;
        }
        in.step = k;
        in.epoch = k / per_epoch;
        in.batch_in_epoch = k % per_epoch;
        struct step_result r;
        step_run(e, &in, &r);
        for (int i = 0; i < STEP_T_N; i++)
            phase[i] += r.seconds[i];
    }
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    openblas_set_num_threads(1);
    int rank, N;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &N);
    if (argc != 3 || atoi(argv[1]) < N || N > 2) {
        if (rank == 0)
            fprintf(stderr, "usage: mpirun -np N bench_small BATCH SECONDS (N 1 or 2, BATCH >= N)\n");
        MPI_Finalize();
        return 2;
    }
    int B = atoi(argv[1]);
    double seconds = atof(argv[2]);
    struct dataset d;
    bench_make_data(&d, SAMPLES, 784);
    struct spec s;
    struct engine e;
    if (build_engine(&e, &s, &d, B, N))
        MPI_Abort(MPI_COMM_WORLD, 1);

    /* the roofline's parts, every rank at once (the slices' sizes differ by
     * at most one sample: rank 0's is the largest) */
    static const int dims[] = { 784, 1024, 1024, 10 };
    double best, median, t_gemm, bytes;
    MPI_Barrier(MPI_COMM_WORLD);
    bench_gemm_rates(dims, 3, (B + N - 1) / N, seconds / 4, &best, &median, &t_gemm);
    MPI_Barrier(MPI_COMM_WORLD);
    size_t n = engine_model(&e)->arena.n;
    double t_mem = traffic_seconds((n + (size_t)N - 1) / (size_t)N, N, seconds / 4, &bytes);

    double phase[STEP_T_N + 1], sum[STEP_T_N + 1];
    long steps;
    run_steps(&e, B, seconds / 8, &steps, phase); /* warm-up: first touches, the window */
    double wall = run_steps(&e, B, seconds * 5 / 8, &steps, phase);
    MPI_Reduce(phase, sum, STEP_T_N + 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        double ms = 1e3 / (double)steps / N, sps = (double)steps * B / wall;
        double roof = B / (t_gemm + t_mem);
        printf("%6d %5d %9.0f %9.0f %5.0f%% %7.3f %6.3f %5.1f %7.3f |", B, N, sps, roof,
               100.0 * sps / roof, 1e3 * t_gemm, 1e3 * t_mem, bytes / t_mem / 1e9,
               1e3 * wall / (double)steps);
        for (int i = 0; i <= STEP_T_N; i++)
            printf(" %6.3f", sum[i] * ms);
        printf("\n");
    }
    engine_free(&e);
    dataset_free(&d);
    MPI_Finalize();
    return 0;
}
