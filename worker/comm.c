/* Bucketed, overlapped gradient allreduce and the other collectives of a step. */
#include "comm.h"

#include <stdint.h>
#include <string.h>

void comm_init(struct grad_comm *c, MPI_Comm comm, struct model *m, size_t bucket_floats,
               bool overlap)
{
    memset(c, 0, sizeof *c);
    c->comm = comm;
    MPI_Comm_rank(comm, &c->rank);
    MPI_Comm_size(comm, &c->nranks);
    c->model = m;
    c->overlap = overlap;
    /* never more buckets than we have requests for */
    size_t min_bucket = m->arena.n / COMM_MAX_BUCKETS + 1;
    c->bucket_floats = bucket_floats > min_bucket ? bucket_floats : min_bucket;
}

void comm_begin(struct grad_comm *c, bool measure_norm)
{
    c->measure_norm = measure_norm;
    c->pending_hi = c->model->arena.n;
    c->pending_lo = c->model->arena.n;
    c->nreq = 0;
    c->local_sq = 0;
    memset(c->stats, 0, sizeof c->stats);
    c->wait_seconds = 0;
}

static double sum_squares(const float *g, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * g[i];
    return s;
}

/* Sends [pending_lo, pending_hi) as one bucket. */
static void send_pending(struct grad_comm *c)
{
    size_t lo = c->pending_lo, hi = c->pending_hi;
    if (hi <= lo)
        return;
    float *g = c->model->arena.g;
    if (c->measure_norm)
        c->local_sq += sum_squares(g + lo, hi - lo);
    if (c->nranks > 1) {
        c->bucket_lo[c->nreq] = lo;
        c->bucket_hi[c->nreq] = hi;
        if (c->overlap)
            MPI_Iallreduce(MPI_IN_PLACE, g + lo, (int)(hi - lo), MPI_FLOAT, MPI_SUM, c->comm,
                           &c->req[c->nreq]);
        c->nreq++;
    }
    c->pending_hi = lo;
}

void comm_grad_ready(void *user, int layer)
{
    struct grad_comm *c = user;
    size_t lo, hi;
    model_grad_range(c->model, layer, &lo, &hi);
    c->pending_lo = lo;
    if (c->pending_hi - c->pending_lo >= c->bucket_floats)
        send_pending(c);
    /* Open MPI only progresses non-blocking collectives inside MPI calls */
    if (c->overlap && c->nreq > 0) {
        int done;
        MPI_Testall(c->nreq, c->req, &done, MPI_STATUSES_IGNORE);
    }
}

void comm_finish(struct grad_comm *c)
{
    c->pending_lo = 0;
    send_pending(c);
    double count = c->stats[STAT_COUNT];
    c->stats[STAT_GRAD_SQ_OVER_B] = count > 0 ? c->local_sq / (count * count) : 0;
    if (c->nranks == 1)
        return;
    double t0 = MPI_Wtime();
    struct model *m = c->model;
    int nbn = m->bn_running_n ? (int)m->bn_running_n + 1 : 0;
    if (c->overlap) {
        int n = c->nreq;
        MPI_Iallreduce(MPI_IN_PLACE, c->stats, STAT_N, MPI_DOUBLE, MPI_SUM, c->comm, &c->req[n++]);
        if (nbn)
            MPI_Iallreduce(MPI_IN_PLACE, m->bn_batch, nbn, MPI_FLOAT, MPI_SUM, c->comm,
                           &c->req[n++]);
        MPI_Waitall(n, c->req, MPI_STATUSES_IGNORE);
    } else {
        /* the same buckets as the overlapped mode, so the sums match bit for bit */
        float *g = c->model->arena.g;
        for (int i = 0; i < c->nreq; i++)
            MPI_Allreduce(MPI_IN_PLACE, g + c->bucket_lo[i],
                          (int)(c->bucket_hi[i] - c->bucket_lo[i]), MPI_FLOAT, MPI_SUM, c->comm);
        MPI_Allreduce(MPI_IN_PLACE, c->stats, STAT_N, MPI_DOUBLE, MPI_SUM, c->comm);
        if (nbn)
            MPI_Allreduce(MPI_IN_PLACE, m->bn_batch, nbn, MPI_FLOAT, MPI_SUM, c->comm);
    }
    c->wait_seconds = MPI_Wtime() - t0;
}

void comm_average_floats(MPI_Comm comm, float *x, size_t n)
{
    int nranks;
    MPI_Comm_size(comm, &nranks);
    if (nranks == 1 || n == 0)
        return;
    MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, comm);
    for (size_t i = 0; i < n; i++)
        x[i] /= (float)nranks;
}

bool comm_replicas_agree(MPI_Comm comm, const float *w, size_t n, unsigned long long *hash)
{
    /* FNV-1a over the raw bits: any differing bit changes it */
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *p = (const unsigned char *)w;
    for (size_t i = 0; i < n * sizeof(float); i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    unsigned long long mine = h, lo, hi;
    MPI_Allreduce(&mine, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, comm);
    MPI_Allreduce(&mine, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm);
    *hash = mine;
    return lo == hi;
}
