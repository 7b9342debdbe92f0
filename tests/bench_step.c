/* `make bench`, one rank: the sgemm rate of a training step's own matrix
 * shapes against the rate the whole step achieves, and the share of the step
 * that is not matrix multiplication, for the MLP 784-1024-1024-10 with batch
 * norm at several batch sizes. Prints one table; run with one BLAS thread.
 *
 *   bench_step [SECONDS]                     the MLP table
 *   bench_step --sgemm-rate B SECONDS        the MLP's GEMMs alone: best, median GFLOP/s
 *   bench_step --model NAME SPEC B SECONDS   one row of the layer-list table, and
 *                                            where its step's time goes by layer kind
 *   bench_step --model-sgemm SPEC B SECONDS  that model's GEMMs alone: best, median
 *                                            GFLOP/s, and training FLOPs per sample */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "conv.h"
#include "dataset.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "sampler.h"
#include "xent.h"

/* This thread's CPU seconds: on a shared machine, a phase's own cost
 * without the time other processes held the core. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
    bench_make_data(&d, 8192, 784);
    dataset_feature_stats(&d, m.in_mean, m.in_inv_std);
    uint32_t *perm = malloc(d.n * sizeof *perm);
    sampler_permutation(perm, d.n, 1, 0);
    struct optim o;
    struct optim_config oc = { .kind = OPTIM_SGD, .weight_decay = 5e-4f, .wd_mode = WD_L2 };
    optim_init(&o, &oc, &m.arena);

    double gemm_rate, gemm_median;
    bench_gemm_rates(dims, 3, B, seconds, &gemm_rate, &gemm_median, NULL);
    double step_flops = 0;
    for (int l = 0; l < 3; l++)
        step_flops += (l > 0 ? 6.0 : 4.0) * B * dims[l] * dims[l + 1];

    long steps = 0;
    double best = 1e30, t_end = bench_now() + seconds;
    size_t per_epoch = d.n / (size_t)B;
    do {
        double t0 = bench_now();
        const uint32_t *idx = perm + (size_t)(steps % (long)per_epoch) * (size_t)B;
        struct pass_ctx ctx = { .train = true, .seed = 1, .step = (uint64_t)steps };
        int correct;
        model_batch_loss(&m, &d, idx, B, &ctx, &correct);
        model_backward(&m, m.labels, B, NULL, NULL);
        model_update_running(&m);
        optim_step(&o, &m.arena, 0.01f, 0.9f, 1.0f / (float)B);
        double t = bench_now() - t0;
        best = t < best ? t : best;
        steps++;
    } while (bench_now() < t_end);
    double gemm_time = step_flops / gemm_rate;
    double step_rate = step_flops / best;
    printf("%6d %10.1f %10.1f %8.3f %12.0f %9.3f %12.1f%%\n", B, gemm_rate / 1e9, step_rate / 1e9,
           step_rate / gemm_rate, B / best, best * 1e3, 100.0 * (best - gemm_time) / best);
    free(perm);
    optim_free(&o);
    dataset_free(&d);
    model_free(&m);
}

/* ---- layer lists (convolutional networks) ------------------------------------ */

/* One GEMM of a step, run `count` times (once per sample for a convolution):
 * C (M, N) = op(A) (M, K) op(B) (K, N). */
struct gemm {
    bool ta, tb;
    int M, N, K, count;
    int layer; /* whose */
};

enum { MAX_GEMMS = 3 * SPEC_MAX_ITEMS };

/* The GEMMs model m makes in a training step at batch B, as conv.c and
 * linear.c make them: forward, weight gradient, and the input gradient of
 * every layer but the first. Returns their number. */
static int model_gemms(const struct model *m, int B, struct gemm *g)
{
    int n = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const struct layer *l = &m->layers[i];
        const struct layer_arg *a = &m->spec.items[i + 1].arg;
        if (!strcmp(l->kind->name, "conv")) {
            struct conv_geom cg;
            conv_geom_init(&cg, l->in.c, l->in.h, l->in.w, a->width, a->kernel, a->stride,
                           a->pad);
            int K = cg.ic * cg.k * cg.k, P = cg.oh * cg.ow;
            g[n++] = (struct gemm){ false, false, cg.oc, P, K, B, i };
            g[n++] = (struct gemm){ false, true, cg.oc, K, P, B, i };
            if (i > 0)
                g[n++] = (struct gemm){ true, false, K, P, cg.oc, B, i };
        } else if (!strcmp(l->kind->name, "fc")) {
            g[n++] = (struct gemm){ false, true, B, l->out_dim, l->in_dim, 1, i };
            g[n++] = (struct gemm){ true, false, l->out_dim, l->in_dim, B, 1, i };
            if (i > 0)
                g[n++] = (struct gemm){ false, false, B, l->in_dim, l->out_dim, 1, i };
        }
    }
    return n;
}

static double gemm_list_flops(const struct gemm *g, int n)
{
    double flops = 0;
    for (int k = 0; k < n; k++)
        flops += 2.0 * g[k].M * g[k].N * g[k].K * g[k].count;
    return flops;
}

/* Floats of the largest matrix of the list: the size of each scratch matrix. */
static size_t gemm_list_most(const struct gemm *g, int n)
{
    size_t most = 1;
    for (int k = 0; k < n; k++) {
        size_t mk = (size_t)g[k].M * g[k].K, kn = (size_t)g[k].K * g[k].N;
        size_t mn = (size_t)g[k].M * g[k].N;
        most = mk > most ? mk : most;
        most = kn > most ? kn : most;
        most = mn > most ? mn : most;
    }
    return most;
}

/* Every GEMM of the list once, on the scratch matrices a, b, c (each large
 * enough for any of them); returns seconds, and adds each GEMM's to its
 * layer's by_layer unless NULL. */
static double gemm_list_run(const struct gemm *g, int n, const float *a, const float *b, float *c,
                            double *by_layer)
{
    double t0 = bench_now(), t = by_layer ? cpu_now() : 0;
    for (int k = 0; k < n; k++) {
        int lda = g[k].ta ? g[k].M : g[k].K, ldb = g[k].tb ? g[k].K : g[k].N;
        for (int r = 0; r < g[k].count; r++)
            cblas_sgemm(CblasRowMajor, g[k].ta ? CblasTrans : CblasNoTrans,
                        g[k].tb ? CblasTrans : CblasNoTrans, g[k].M, g[k].N, g[k].K, 1.0f, a, lda,
                        b, ldb, r ? 1.0f : 0.0f, c, g[k].N);
        if (by_layer) {
            double t1 = cpu_now();
            by_layer[g[k].layer] += t1 - t;
            t = t1;
        }
    }
    return bench_now() - t0;
}

/* The GFLOP/s of a GEMM list repeated for `seconds`: of the fastest pass
 * (*best) and of the median one (*median), as gemm_rates. */
static void gemm_list_rates(const struct gemm *g, int n, double seconds, double *best,
                            double *median)
{
    size_t most = gemm_list_most(g, n);
    float *a = bench_randn(most, 41), *b = bench_randn(most, 42), *c = bench_randn(most, 43);
    size_t cnt = 0, cap = 1024;
    double *times = malloc(cap * sizeof *times), flops = gemm_list_flops(g, n);
    double t_end = bench_now() + seconds;
    do {
        double t = gemm_list_run(g, n, a, b, c, NULL);
        if (cnt == cap)
            times = realloc(times, (cap *= 2) * sizeof *times);
        times[cnt++] = t;
    } while (bench_now() < t_end);
    qsort(times, cnt, sizeof *times, bench_cmp_double);
    *best = flops / times[0];
    *median = flops / times[cnt / 2];
    free(times);
    free(a);
    free(b);
    free(c);
}

/* Where a step's time goes: seconds summed over the timed steps, by layer
 * kind (forward and backward together) and for the rest of the step. */
enum { MAX_KINDS = 16 };
struct phases {
    int nkinds;
    const char *kind[MAX_KINDS];
    double t[MAX_KINDS];
    double other, optim; /* gather, loss, running statistics; the optimizer */
    double cpu;          /* the steps' */
    double fwd[SPEC_MAX_ITEMS], bwd[SPEC_MAX_ITEMS]; /* by layer */
    double gemm[SPEC_MAX_ITEMS]; /* the layer's GEMMs alone */
};

static double *phase_of(struct phases *ph, const char *kind)
{
    for (int k = 0; k < ph->nkinds; k++)
        if (!strcmp(ph->kind[k], kind))
            return &ph->t[k];
    if (ph->nkinds == MAX_KINDS)
        return &ph->t[MAX_KINDS - 1]; /* more kinds than any list has: lumped */
    ph->kind[ph->nkinds] = kind;
    ph->t[ph->nkinds] = 0;
    return &ph->t[ph->nkinds++];
}

/* One training step as model_batch_loss, model_backward, model_update_running
 * and optim_step make it, with a clock (of CPU time) around every layer's
 * forward and backward. Returns the step's seconds of wall time. */
static double timed_step(struct model *m, struct optim *o, const struct dataset *d,
                         const uint32_t *idx, int B, uint64_t step, struct phases *ph)
{
    double t0 = bench_now(), c0 = cpu_now(), t;
    struct pass_ctx ctx = { .train = true, .seed = 1, .step = step };
    dataset_gather(m->act[0], m->labels, d, idx, B, m->in_mean, m->in_inv_std);
    for (int i = 0; i < m->nlayers; i++) {
        struct layer *l = &m->layers[i];
        t = cpu_now();
        l->kind->forward(l, &ctx, m->act[i + 1], m->act[i], B);
        t = cpu_now() - t;
        *phase_of(ph, l->kind->name) += t;
        ph->fwd[i] += t;
    }
    int correct, cur = 0;
    model_loss(m, m->labels, B, &correct);
    xent_backward(m->dact[cur], m->probs, m->labels, B, m->classes);
    for (int i = m->nlayers - 1; i >= 0; i--) {
        struct layer *l = &m->layers[i];
        float *din = i > 0 ? m->dact[1 - cur] : NULL;
        t = cpu_now();
        if (din || l->w_view >= 0)
            l->kind->backward(l, &m->arena, din, m->dact[cur], m->act[i], m->act[i + 1], B);
        t = cpu_now() - t;
        *phase_of(ph, l->kind->name) += t;
        ph->bwd[i] += t;
        cur = 1 - cur;
    }
    model_update_running(m);
    t = cpu_now();
    optim_step(o, &m->arena, 0.01f, 0.9f, 1.0f / (float)B);
    ph->optim += cpu_now() - t;
    ph->cpu += cpu_now() - c0;
    return bench_now() - t0;
}

static int build_spec_model(struct model *m, const char *text, int B)
{
    struct spec s;
    char err[256];
    struct model_options mo = { .bn_eps = 1e-5f, .bn_momentum = 0.1f };
    if (spec_parse(&s, text, true, 0, err, sizeof err) ||
        model_build(m, &s, B, &mo, err, sizeof err)) {
        fprintf(stderr, "bench_step: %s: %s\n", text, err);
        return -1;
    }
    model_init_params(m, 1);
    return 0;
}

/* Prints the kinds' shares of the steps' summed CPU time total. */
static void print_phases(const struct phases *ph, double total, double gemm_share)
{
    printf("         CPU time by layer kind, forward + backward (their GEMMs alone: %.0f%%):",
           100.0 * gemm_share);
    for (int k = 0; k < ph->nkinds; k++)
        printf(" %s %.1f%%,", ph->kind[k], 100.0 * ph->t[k] / total);
    printf(" optimizer %.1f%%, rest %.1f%%\n", 100.0 * ph->optim / total,
           100.0 * ph->other / total);
}

/* The median of n times (sorted in place). */
static double median_of(double *t, size_t n)
{
    qsort(t, n, sizeof *t, bench_cmp_double);
    return t[n / 2];
}

/* One row of the layer-list table: the median step against the median pass
 * of the same GEMMs, the two taking turns so that both see the same load on
 * a shared machine; then the time by kind. */
static int bench_model(const char *name, const char *text, int B, double seconds)
{
    struct model m;
    if (build_spec_model(&m, text, B))
        return 1;
    struct dataset d;
    bench_make_data(&d, 8192, (size_t)m.in_dim);
    dataset_feature_stats(&d, m.in_mean, m.in_inv_std);
    uint32_t *perm = malloc(d.n * sizeof *perm);
    sampler_permutation(perm, d.n, 1, 0);
    struct optim o;
    struct optim_config oc = { .kind = OPTIM_SGD, .weight_decay = 5e-4f, .wd_mode = WD_L2 };
    optim_init(&o, &oc, &m.arena);
    struct gemm g[MAX_GEMMS];
    int ng = model_gemms(&m, B, g);
    size_t most = gemm_list_most(g, ng);
    float *ga = bench_randn(most, 41), *gb = bench_randn(most, 42), *gc = bench_randn(most, 43);

    struct phases ph = { 0 };
    size_t cnt = 0, cap = 256, per_epoch = d.n / (size_t)B;
    double *steps = malloc(cap * sizeof *steps), *gemms = malloc(cap * sizeof *gemms);
    double total = 0, t_end = bench_now() + seconds;
    do {
        const uint32_t *idx = perm + (cnt % per_epoch) * (size_t)B;
        if (cnt == cap) {
            steps = realloc(steps, (cap *= 2) * sizeof *steps);
            gemms = realloc(gemms, cap * sizeof *gemms);
        }
        gemms[cnt] = gemm_list_run(g, ng, ga, gb, gc, ph.gemm);
        steps[cnt] = timed_step(&m, &o, &d, idx, B, cnt, &ph);
        total += steps[cnt++];
    } while (bench_now() < t_end);
    ph.other = ph.cpu - ph.optim;
    for (int k = 0; k < ph.nkinds; k++)
        ph.other -= ph.t[k];
    double flops = 3.0 * model_flops_per_sample(&m) * B, gflops = gemm_list_flops(g, ng);
    double step = median_of(steps, cnt), gemm_time = median_of(gemms, cnt);
    printf("%-10s %6d %10.1f %10.1f %8.3f %12.0f %9.3f %12.1f%%\n", name, B,
           gflops / gemm_time / 1e9, flops / step / 1e9, flops / step / (gflops / gemm_time),
           B / step, step * 1e3, 100.0 * (step - gemm_time) / step);
    double gemm_cpu = 0;
    for (int i = 0; i < m.nlayers; i++)
        gemm_cpu += ph.gemm[i];
    print_phases(&ph, ph.cpu, gemm_cpu / ph.cpu);
    if (getenv("BENCH_LAYERS")) /* each layer's mean CPU ms: forward, backward, its GEMMs */
        for (int i = 0; i < m.nlayers; i++)
            printf("           %2d %-8s %8.3f %8.3f %8.3f\n", i, m.layers[i].kind->name,
                   1e3 * ph.fwd[i] / (double)cnt, 1e3 * ph.bwd[i] / (double)cnt,
                   1e3 * ph.gemm[i] / (double)cnt);
    free(steps);
    free(gemms);
    free(ga);
    free(gb);
    free(gc);
    free(perm);
    optim_free(&o);
    dataset_free(&d);
    model_free(&m);
    return 0;
}

/* The GEMMs of a layer list alone: "best median flops", GFLOP/s and the
 * training FLOPs per sample (3 x forward) that bench.sh divides by. */
static int model_sgemm(const char *text, int B, double seconds)
{
    struct model m;
    if (build_spec_model(&m, text, B))
        return 1;
    struct gemm g[MAX_GEMMS];
    int ng = model_gemms(&m, B, g);
    double best, median;
    gemm_list_rates(g, ng, seconds, &best, &median);
    printf("%.2f %.2f %.0f\n", best / 1e9, median / 1e9, 3.0 * model_flops_per_sample(&m));
    model_free(&m);
    return 0;
}

int main(int argc, char **argv)
{
    static const int dims[] = { 784, 1024, 1024, 10 };
    openblas_set_num_threads(1);
    /* --sgemm-rate B SECONDS: only the GFLOP/s of a step's GEMMs at batch B,
     * best and median */
    if (argc == 4 && !strcmp(argv[1], "--sgemm-rate")) {
        double best, median;
        bench_gemm_rates(dims, 3, atoi(argv[2]), atof(argv[3]), &best, &median, NULL);
        printf("%.2f %.2f\n", best / 1e9, median / 1e9);
        return 0;
    }
    if (argc == 6 && !strcmp(argv[1], "--model"))
        return bench_model(argv[2], argv[3], atoi(argv[4]), atof(argv[5]));
    if (argc == 5 && !strcmp(argv[1], "--model-sgemm"))
        return model_sgemm(argv[2], atoi(argv[3]), atof(argv[4]));
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
