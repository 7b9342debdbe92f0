/* Per-class accuracy and the confusion matrix of `ddtrain eval --per-class`. */
#include "eval_classes.h"

#include <stdint.h>
#include <stdlib.h>

#include "metrics.h"

int eval_confusion(struct model *m, const struct dataset *d, size_t n, MPI_Comm comm,
                   long long **counts)
{
    int rank, nranks, K = m->classes;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    size_t cells = (size_t)K * (size_t)K;
    long long *mine = calloc(cells, sizeof *mine);
    *counts = calloc(cells, sizeof **counts);
    uint32_t *idx = malloc((size_t)m->max_batch * sizeof *idx);
    int ok = mine && *counts && idx, all_ok;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
    if (!all_ok) {
        free(mine);
        free(*counts);
        *counts = NULL;
        free(idx);
        return -1;
    }
    /* this rank's contiguous share, as the evaluation splits a set */
    size_t lo = n * (size_t)rank / (size_t)nranks, hi = n * (size_t)(rank + 1) / (size_t)nranks;
    struct pass_ctx ctx = { .train = false };
    for (size_t at = lo; at < hi; at += (size_t)m->max_batch) {
        int B = hi - at < (size_t)m->max_batch ? (int)(hi - at) : m->max_batch, correct;
        for (int i = 0; i < B; i++)
            idx[i] = (uint32_t)(at + (size_t)i);
        model_batch_loss(m, d, idx, B, &ctx, &correct);
        for (int i = 0; i < B; i++) {
            const float *z = m->act[m->nlayers] + (size_t)i * K;
            int arg = 0;
            for (int k = 1; k < K; k++)
                if (z[k] > z[arg])
                    arg = k;
            mine[(size_t)m->labels[i] * K + arg]++;
        }
    }
    /* cells < INT_MAX: cmd_eval refuses more than EVAL_PER_CLASS_MAX classes */
    MPI_Reduce(mine, *counts, (int)cells, MPI_LONG_LONG, MPI_SUM, 0, comm);
    free(mine);
    free(idx);
    return 0;
}

static long long row_total(const long long *counts, int K, int r)
{
    long long s = 0;
    for (int c = 0; c < K; c++)
        s += counts[(size_t)r * K + c];
    return s;
}

void eval_print_confusion(FILE *f, const long long *counts, int K)
{
    fprintf(f, "per class: rows are the true label, columns the prediction\n");
    fprintf(f, "%5s %8s %8s %8s |", "class", "samples", "correct", "accuracy");
    for (int c = 0; c < K; c++)
        fprintf(f, " %6d", c);
    fputc('\n', f);
    for (int r = 0; r < K; r++) {
        long long n = row_total(counts, K, r), right = counts[(size_t)r * K + r];
        if (n > 0)
            fprintf(f, "%5d %8lld %8lld %8.4f |", r, n, right, (double)right / (double)n);
        else
            fprintf(f, "%5d %8lld %8lld %8s |", r, n, right, "-");
        for (int c = 0; c < K; c++)
            fprintf(f, " %6lld", counts[(size_t)r * K + c]);
        fputc('\n', f);
    }
}

void eval_json_confusion(FILE *f, const long long *counts, int K)
{
    fprintf(f, ",\"per_class\":[");
    for (int r = 0; r < K; r++) {
        long long n = row_total(counts, K, r), right = counts[(size_t)r * K + r];
        fprintf(f, "%s{\"class\":%d,\"samples\":%lld,\"correct\":%lld,\"accuracy\":", r ? "," : "",
                r, n, right);
        /* a class without samples has no accuracy: null, not NaN */
        if (n > 0)
            metrics_json_number(f, (double)right / (double)n);
        else
            fprintf(f, "null");
        fputc('}', f);
    }
    fprintf(f, "],\"confusion\":[");
    for (int r = 0; r < K; r++) {
        fprintf(f, "%s[", r ? "," : "");
        for (int c = 0; c < K; c++)
            fprintf(f, "%s%lld", c ? "," : "", counts[(size_t)r * K + c]);
        fputc(']', f);
    }
    fputc(']', f);
}
