/* The mean over ranks of local SGD's replicas, summed in rank order. */
#include "average.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "engine.h"

int average_init(struct average *a, MPI_Comm comm, size_t cap)
{
    memset(a, 0, sizeof *a);
    a->comm = comm;
    MPI_Comm_rank(comm, &a->rank);
    MPI_Comm_size(comm, &a->nranks);
    a->cap = cap;
    size_t piece = (cap + (size_t)a->nranks - 1) / (size_t)a->nranks;
    if (cap > (size_t)INT_MAX)
        return -1;
    size_t N = (size_t)a->nranks;
    a->rows = arena_buffer(N * (piece ? piece : 1));
    a->src = calloc(N, sizeof *a->src);
    a->counts = calloc(4 * N, sizeof *a->counts);
    if (!a->rows || !a->src || !a->counts)
        return -1;
    a->displs = a->counts + N;
    a->rcounts = a->counts + 2 * N;
    a->rdispls = a->counts + 3 * N;
    return 0;
}

void average_free(struct average *a)
{
    free(a->rows);
    free(a->src);
    free(a->counts);
    memset(a, 0, sizeof *a);
}

void average_rows(float *dst, const float *const *src, int nsrc, size_t n)
{
    const float count = (float)nsrc;
    for (size_t i = 0; i < n; i++) {
        float s = src[0][i];
        for (int r = 1; r < nsrc; r++)
            s += src[r][i];
        /* a division, not a product with 1/N: the exact rounding of the
         * mean's formula, which a reader can reproduce */
        dst[i] = s / count;
    }
}

void average_ranks(struct average *a, float *x, size_t n, struct comm_watch *w)
{
    int N = a->nranks;
    if (N == 1 || n == 0)
        return;
    /* piece q = [q n / N, (q + 1) n / N): sizes differ by at most one */
    for (int q = 0; q < N; q++) {
        size_t lo = n * (size_t)q / (size_t)N, hi = n * (size_t)(q + 1) / (size_t)N;
        a->counts[q] = (int)(hi - lo);
        a->displs[q] = (int)lo;
    }
    int mine = a->counts[a->rank];
    for (int r = 0; r < N; r++) {
        a->rcounts[r] = mine;
        a->rdispls[r] = r * mine;
        a->src[r] = a->rows + (size_t)r * (size_t)mine;
    }
    comm_guard_enter(w, "local SGD's all-to-all of the parameters to average");
    MPI_Alltoallv(x, a->counts, a->displs, MPI_FLOAT, a->rows, a->rcounts, a->rdispls,
                  MPI_FLOAT, a->comm);
    comm_guard_leave(w);
    average_rows(x + a->displs[a->rank], a->src, N, (size_t)mine);
    comm_guard_enter(w, "local SGD's all-gather of the averaged parameters");
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, a->counts, a->displs, MPI_FLOAT,
                   a->comm);
    comm_guard_leave(w);
}

void average_replicas(struct engine *e, bool optimizer_state)
{
    struct model *m = &e->model;
    struct comm_watch *w = &e->comm.watch;
    average_ranks(&e->avg, m->arena.w, m->arena.n, w);
    average_ranks(&e->avg, m->bn_running, m->bn_running_n, w);
    if (!optimizer_state)
        return;
    /* local SGD never shards: every rank holds the whole state, arena layout */
    average_ranks(&e->avg, e->opt.m, e->opt.n, w);
    if (e->opt.v)
        average_ranks(&e->avg, e->opt.v, e->opt.n, w);
}

size_t average_backup_floats(const struct engine *e)
{
    return e->model.arena.n + e->model.bn_running_n;
}

void average_replicas_save(struct engine *e, float *backup)
{
    struct model *m = &e->model;
    memcpy(backup, m->arena.w, m->arena.n * sizeof *backup);
    memcpy(backup + m->arena.n, m->bn_running, m->bn_running_n * sizeof *backup);
    average_replicas(e, false);
}

void average_replicas_restore(struct engine *e, const float *backup)
{
    struct model *m = &e->model;
    memcpy(m->arena.w, backup, m->arena.n * sizeof *backup);
    memcpy(m->bn_running, backup + m->arena.n, m->bn_running_n * sizeof *backup);
}
