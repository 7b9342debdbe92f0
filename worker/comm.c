/* Bucketed, overlapped gradient reduction (allreduce or sharded
 * reduce-scatter) and the other collectives of a step. */
#include "comm.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "vec.h"

#define COMM_TAG 7

/* The layers with parameters, last first, are cut into buckets of at least
 * bucket_floats (the first layer's bucket takes whatever is left). */
static void plan_buckets(struct grad_comm *c, size_t bucket_floats)
{
    const struct model *m = c->model;
    int first = -1;
    for (int i = 0; i < m->nlayers && first < 0; i++)
        if (m->layers[i].w_view >= 0)
            first = i;
    size_t hi = m->arena.n;
    c->nbuckets = 0;
    for (int i = m->nlayers - 1; i >= first && first >= 0; i--) {
        if (m->layers[i].w_view < 0)
            continue;
        size_t lo, top;
        model_grad_range(m, i, &lo, &top);
        if (i == first)
            lo = 0;
        if (hi - lo >= bucket_floats || i == first) {
            c->bucket[c->nbuckets++] = (struct comm_bucket){ .lo = lo, .hi = hi, .ready_layer = i };
            hi = lo;
        }
    }
}

/* Every bucket cut into one piece per rank, 64-byte aligned within it. */
static int plan_shards(struct grad_comm *c)
{
    int N = c->nranks, r = c->rank;
    c->piece_ints = malloc(2 * (size_t)N * (size_t)c->nbuckets * sizeof *c->piece_ints);
    c->owned = malloc((size_t)c->nbuckets * sizeof *c->owned);
    if (!c->piece_ints || !c->owned)
        return -1;
    c->owned_n = 0;
    for (int k = 0; k < c->nbuckets; k++) {
        struct comm_bucket *bk = &c->bucket[k];
        bk->counts = c->piece_ints + 2 * (size_t)N * (size_t)k;
        bk->displs = bk->counts + N;
        size_t len = bk->hi - bk->lo, at = 0;
        for (int q = 0; q < N; q++) {
            size_t next = q + 1 == N ? len : (len * (size_t)(q + 1) / (size_t)N) & ~(size_t)15;
            bk->displs[q] = (int)at;
            bk->counts[q] = (int)(next - at);
            at = next;
        }
        bk->own_off = c->owned_n;
        c->owned[k].lo = bk->lo + (size_t)bk->displs[r];
        c->owned[k].hi = c->owned[k].lo + (size_t)bk->counts[r];
        c->owned_n += (size_t)bk->counts[r];
    }
    c->src = malloc((size_t)N * sizeof *c->src);
    return c->src ? 0 : -1;
}

/* Buckets, shards and requests: this rank's memory alone, no communication. */
static int plan_local(struct grad_comm *c, size_t bucket_floats)
{
    /* never more buckets than there is room for */
    size_t min_bucket = c->model->arena.n / COMM_MAX_BUCKETS + 1;
    plan_buckets(c, bucket_floats > min_bucket ? bucket_floats : min_bucket);
    for (int k = 0; k < c->nbuckets; k++)
        if (c->bucket[k].hi - c->bucket[k].lo > INT_MAX) {
            snprintf(c->why, sizeof c->why,
                     "a gradient bucket of %zu floats (one layer) is more than an MPI count can say (%d)",
                     c->bucket[k].hi - c->bucket[k].lo, INT_MAX);
            return -1;
        }
    /* allreduce: one request per bucket; sharded: at most a send and a
     * receive per bucket and other rank, in the reduction and the gather */
    c->req_cap = c->shard ? 2 * c->nbuckets * (c->nranks - 1) : c->nbuckets;
    c->req = malloc(((size_t)c->req_cap + 1) * sizeof *c->req);
    c->req_peer = malloc(((size_t)c->req_cap + 1) * sizeof *c->req_peer);
    if (!c->req || !c->req_peer || (c->shard && plan_shards(c))) {
        snprintf(c->why, sizeof c->why, "out of memory for the communication plan");
        return -1;
    }
    return 0;
}

/* Every rank goes on to the next collective call, or none does. */
static int agree(struct grad_comm *c, int rc)
{
    comm_guard_enter(&c->watch, "the agreement on the communication set-up");
    bool ok = comm_all_ok(c->comm, rc == 0);
    comm_guard_leave(&c->watch);
    if (ok)
        return 0;
    if (!c->why[0])
        snprintf(c->why, sizeof c->why, "another rank could not set up its communication");
    return -1;
}

int comm_init(struct grad_comm *c, MPI_Comm comm, struct model *m, size_t bucket_floats,
              bool overlap, bool shard, bool node_shared,
              const struct comm_watch_settings *watch)
{
    memset(c, 0, sizeof *c);
    MPI_Comm_rank(comm, &c->rank);
    MPI_Comm_size(comm, &c->nranks);
    int rc = comm_watch_init(&c->watch, watch, c->rank, c->nranks, c->why, sizeof c->why);
    comm_guard_enter(&c->watch, "the duplication of the communicator");
    MPI_Comm_dup(comm, &c->comm);
    comm_guard_leave(&c->watch);
    c->model = m;
    c->overlap = overlap;
    c->shard = shard && c->nranks > 1;
    c->whole = (struct optim_range){ 0, m->arena.n };
    if (agree(c, rc ? rc : plan_local(c, bucket_floats)))
        return -1;
    if (c->shard && node_shared &&
        agree(c, comm_node_init(&c->node, c->comm, c->nbuckets, m->arena.n, &c->watch, c->note,
                                sizeof c->note, c->why, sizeof c->why)))
        return -1;
    /* messages land in rows of their own; in shared memory they are read in place */
    if (c->shard && !c->node.on &&
        !(c->recv = arena_buffer((size_t)(c->nranks - 1) * c->owned_n + 1))) {
        snprintf(c->why, sizeof c->why, "out of memory for the reduction buffer");
        rc = -1;
    }
    return agree(c, rc);
}

bool comm_all_ok(MPI_Comm comm, bool ok)
{
    int all = ok;
    MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_MIN, comm);
    return all != 0;
}

void comm_free(struct grad_comm *c)
{
    if (c->model)
        comm_node_free(&c->node, &c->model->arena, &c->watch);
    if (c->comm != MPI_COMM_NULL && c->model)
        MPI_Comm_free(&c->comm);
    free(c->piece_ints);
    free(c->owned);
    free(c->recv);
    free(c->src);
    free(c->req);
    free(c->req_peer);
    comm_watch_free(&c->watch);
    c->req_peer = NULL;
    c->piece_ints = NULL;
    c->owned = NULL;
    c->recv = NULL;
    c->src = NULL;
    c->req = NULL;
}

int comm_owned_ranges(const struct grad_comm *c, const struct optim_range **ranges)
{
    *ranges = c->shard ? c->owned : &c->whole;
    return c->shard ? c->nbuckets : 1;
}

void comm_begin(struct grad_comm *c, bool measure_norm)
{
    c->epoch++;
    if (c->node.on && !c->node.adopted)
        comm_node_adopt(&c->node, &c->model->arena, &c->watch);
    c->measure_norm = measure_norm;
    c->sent = c->reduced = c->nreq = 0;
    c->local_sq = 0;
    memset(c->stats, 0, sizeof c->stats);
    c->wait_seconds = 0;
    c->reduce_seconds = 0;
}

/* Where rank q's part of this rank's pieces arrives: rows of owned_n floats
 * in rank order, without this rank. */
static float *recv_row(const struct grad_comm *c, int q)
{
    return c->recv + (size_t)(q < c->rank ? q : q - 1) * c->owned_n;
}

/* Sharded: this rank's part of each other rank's piece of the bucket goes to
 * that rank; the others' parts of this rank's piece come here. */
static void start_shard_bucket(struct grad_comm *c, struct comm_bucket *bk)
{
    float *g = c->model->arena.g + bk->lo;
    int mine = bk->counts[c->rank];
    bk->first_recv = c->nreq;
    for (int q = 0; q < c->nranks && mine > 0; q++)
        if (q != c->rank) {
            c->req_peer[c->nreq] = q;
            MPI_Irecv(recv_row(c, q) + bk->own_off, mine, MPI_FLOAT, q, COMM_TAG, c->comm,
                      &c->req[c->nreq++]);
        }
    bk->nrecv = c->nreq - bk->first_recv;
    for (int q = 0; q < c->nranks; q++)
        if (q != c->rank && bk->counts[q] > 0) {
            c->req_peer[c->nreq] = q;
            MPI_Isend(g + bk->displs[q], bk->counts[q], MPI_FLOAT, q, COMM_TAG, c->comm,
                      &c->req[c->nreq++]);
        }
}

/* Sums every rank's part of this rank's piece of bucket k in rank order (the
 * order makes the sum independent of who owns the piece), in place in this
 * rank's gradients. */
static void reduce_piece(struct grad_comm *c, int k)
{
    const struct comm_bucket *bk = &c->bucket[k];
    size_t n = (size_t)bk->counts[c->rank], at = bk->lo + (size_t)bk->displs[c->rank];
    float *g = c->model->arena.g;
    if (n == 0)
        return;
    double t0 = MPI_Wtime();
    if (c->node.on) {
        comm_node_reduce(&c->node, c->src, at, n);
    } else {
        for (int q = 0; q < c->nranks; q++)
            c->src[q] = q == c->rank ? g + at : recv_row(c, q) + bk->own_off;
        vec_sum_in_order(g + at, c->src, c->nranks, n);
    }
    c->reduce_seconds += MPI_Wtime() - t0;
}

static void start_bucket(struct grad_comm *c)
{
    struct comm_bucket *bk = &c->bucket[c->sent++];
    if (c->measure_norm)
        c->local_sq += vec_sum_squares(c->model->arena.g + bk->lo, bk->hi - bk->lo);
    if (c->nranks == 1)
        return;
    if (c->node.on)
        comm_node_ready(&c->node, c->sent - 1, c->epoch);
    else if (c->shard)
        start_shard_bucket(c, bk);
    else if (c->overlap) {
        c->req_peer[c->nreq] = -1;
        MPI_Iallreduce(MPI_IN_PLACE, c->model->arena.g + bk->lo, (int)(bk->hi - bk->lo),
                       MPI_FLOAT, MPI_SUM, c->comm, &c->req[c->nreq++]);
    }
}

/* Sums the buckets whose parts have all arrived, oldest first; with wait,
 * waits for each. Open MPI only progresses transfers inside MPI calls. */
static void reduce_arrived(struct grad_comm *c, bool wait)
{
    while (c->reduced < c->sent) {
        struct comm_bucket *bk = &c->bucket[c->reduced];
        if (c->node.on) {
            if (!comm_node_arrived(&c->node, c->reduced, c->epoch, wait, &c->watch))
                return;
            reduce_piece(c, c->reduced++);
            continue;
        }
        if (wait) {
            comm_wait_all(c, bk->nrecv, c->req + bk->first_recv, c->req_peer + bk->first_recv,
                          "the gradient reduce-scatter");
        } else {
            int done;
            MPI_Testall(bk->nrecv, c->req + bk->first_recv, &done, MPI_STATUSES_IGNORE);
            if (!done)
                return;
        }
        reduce_piece(c, c->reduced++);
    }
}

void comm_grad_ready(void *user, int layer)
{
    struct grad_comm *c = user;
    if (!c->overlap && c->nranks > 1)
        return;
    while (c->sent < c->nbuckets && c->bucket[c->sent].ready_layer >= layer)
        start_bucket(c);
    if (c->nranks == 1)
        return;
    if (c->shard) {
        reduce_arrived(c, false);
    } else if (c->nreq > 0) {
        int done;
        MPI_Testall(c->nreq, c->req, &done, MPI_STATUSES_IGNORE);
    }
}

void comm_finish(struct grad_comm *c)
{
    while (c->sent < c->nbuckets)
        start_bucket(c);
    double count = c->stats[STAT_COUNT];
    c->stats[STAT_GRAD_SQ_OVER_B] = count > 0 ? c->local_sq / (count * count) : 0;
    if (c->nranks == 1)
        return;
    double t0 = MPI_Wtime();
    struct model *m = c->model;
    int nbn = m->bn_running_n ? (int)m->bn_running_n + 1 : 0;
    if (c->overlap || c->shard) {
        MPI_Iallreduce(MPI_IN_PLACE, c->stats, STAT_N, MPI_DOUBLE, MPI_SUM, c->comm,
                       &c->stat_req[0]);
        c->stat_req[1] = MPI_REQUEST_NULL;
        if (nbn)
            MPI_Iallreduce(MPI_IN_PLACE, m->bn_batch, nbn, MPI_FLOAT, MPI_SUM, c->comm,
                           &c->stat_req[1]);
        if (c->shard)
            reduce_arrived(c, true);
        comm_wait_all(c, c->nreq, c->req, c->req_peer,
                      c->shard ? "the gradient reduce-scatter" : "the gradient allreduce");
        comm_wait_all(c, 2, c->stat_req, NULL, "the allreduce of the step's statistics");
    } else {
        /* the same buckets as the overlapped mode. These calls stay
         * blocking, under guards: a non-blocking allreduce may sum in another
         * order (Open MPI 4.1, 3 ranks, 10^4 floats), and this mode is the
         * blocking reference the overlapped one is compared with */
        float *g = c->model->arena.g;
        for (int i = 0; i < c->nbuckets; i++) {
            comm_guard_enter(&c->watch, "the blocking gradient allreduce");
            MPI_Allreduce(MPI_IN_PLACE, g + c->bucket[i].lo,
                          (int)(c->bucket[i].hi - c->bucket[i].lo), MPI_FLOAT, MPI_SUM, c->comm);
            comm_guard_leave(&c->watch);
        }
        comm_guard_enter(&c->watch, "the blocking allreduce of the step's statistics");
        MPI_Allreduce(MPI_IN_PLACE, c->stats, STAT_N, MPI_DOUBLE, MPI_SUM, c->comm);
        comm_guard_leave(&c->watch);
        if (nbn) {
            comm_guard_enter(&c->watch, "the blocking allreduce of the batch-norm statistics");
            MPI_Allreduce(MPI_IN_PLACE, m->bn_batch, nbn, MPI_FLOAT, MPI_SUM, c->comm);
            comm_guard_leave(&c->watch);
        }
    }
    c->wait_seconds = MPI_Wtime() - t0;
}

void comm_gather_params(struct grad_comm *c)
{
    if (!c->shard)
        return;
    double t0 = MPI_Wtime();
    if (c->node.on) {
        comm_node_sync_params(&c->node, c->epoch, &c->watch);
        c->wait_seconds += MPI_Wtime() - t0;
        return;
    }
    float *w = c->model->arena.w;
    c->nreq = 0;
    for (int k = 0; k < c->nbuckets; k++) {
        const struct comm_bucket *bk = &c->bucket[k];
        int mine = bk->counts[c->rank];
        for (int q = 0; q < c->nranks; q++) {
            if (q == c->rank)
                continue;
            if (bk->counts[q] > 0) {
                c->req_peer[c->nreq] = q;
                MPI_Irecv(w + bk->lo + bk->displs[q], bk->counts[q], MPI_FLOAT, q, COMM_TAG,
                          c->comm, &c->req[c->nreq++]);
            }
            if (mine > 0) {
                c->req_peer[c->nreq] = q;
                MPI_Isend(w + bk->lo + bk->displs[c->rank], mine, MPI_FLOAT, q, COMM_TAG,
                          c->comm, &c->req[c->nreq++]);
            }
        }
    }
    comm_wait_all(c, c->nreq, c->req, c->req_peer, "the parameter all-gather");
    c->wait_seconds += MPI_Wtime() - t0;
}

/* The two sums below stay blocking, under guards: a non-blocking
 * allreduce of even one double may add in another order (Open MPI 4.1,
 * 5 ranks), and the bits of a healthy run must not change. */
double comm_summed_grad_sq(struct grad_comm *c)
{
    const struct optim_range *r;
    int nr = comm_owned_ranges(c, &r);
    double s = 0;
    for (int j = 0; j < nr; j++)
        s += vec_sum_squares(c->model->arena.g + r[j].lo, r[j].hi - r[j].lo);
    if (c->shard) {
        comm_guard_enter(&c->watch, "the noise scale's sum of squared gradients");
        MPI_Allreduce(MPI_IN_PLACE, &s, 1, MPI_DOUBLE, MPI_SUM, c->comm);
        comm_guard_leave(&c->watch);
    }
    return s;
}

void comm_sum_norms(void *user, double *norms, int count)
{
    struct grad_comm *c = user;
    if (c->shard) {
        comm_guard_enter(&c->watch, "the sum of the LARS/LAMB norms");
        MPI_Allreduce(MPI_IN_PLACE, norms, count, MPI_DOUBLE, MPI_SUM, c->comm);
        comm_guard_leave(&c->watch);
    }
}

void comm_gather_shards(struct grad_comm *c, const float *part, float *full)
{
    for (int k = 0; k < c->nbuckets; k++) {
        const struct comm_bucket *bk = &c->bucket[k];
        comm_guard_enter(&c->watch, "the checkpoint's gather of the optimizer state");
        MPI_Gatherv(part + bk->own_off, bk->counts[c->rank], MPI_FLOAT,
                    c->rank == 0 ? full + bk->lo : NULL, bk->counts, bk->displs, MPI_FLOAT, 0,
                    c->comm);
        comm_guard_leave(&c->watch);
    }
}

bool comm_replicas_agree(struct grad_comm *c, const float *w, size_t n, unsigned long long *hash)
{
    /* FNV-1a over the raw bits: any differing bit changes it */
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *p = (const unsigned char *)w;
    for (size_t i = 0; i < n * sizeof(float); i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    unsigned long long mine = h, lo, hi;
    /* minimum and maximum are exact in any order: non-blocking is safe here */
    MPI_Request req[2];
    MPI_Iallreduce(&mine, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, c->comm, &req[0]);
    MPI_Iallreduce(&mine, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, c->comm, &req[1]);
    comm_wait_all(c, 2, req, NULL, "the replica check");
    *hash = mine;
    return lo == hi;
}

/* The peers of the requests still open, ascending, into c->watch.missing;
 * -1 when one of them belongs to a collective and none names a peer. */
static int open_peers(struct grad_comm *c, int n, MPI_Request *req, const int *peer)
{
    int *missing = c->watch.missing, nmissing = 0;
    bool collective = false;
    for (int q = 0; q < c->nranks; q++)
        missing[q] = 0;
    for (int i = 0; i < n; i++) {
        int done;
        MPI_Request_get_status(req[i], &done, MPI_STATUS_IGNORE);
        if (done)
            continue;
        if (peer && peer[i] >= 0)
            missing[peer[i]] = 1;
        else
            collective = true;
    }
    /* a collective of two ranks lacks the other one */
    if (collective && c->nranks == 2)
        missing[1 - c->rank] = 1;
    for (int q = 0; q < c->nranks; q++)
        if (missing[q])
            missing[nmissing++] = q;
    return nmissing == 0 && collective ? -1 : nmissing;
}

void comm_wait_all(struct grad_comm *c, int n, MPI_Request *req, const int *peer,
                   const char *where)
{
    struct comm_backoff b;
    comm_backoff_init(&b, &c->watch);
    for (;;) {
        int done;
        MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
        if (done)
            return;
        if (comm_backoff_pause(&b)) {
            int nmissing = open_peers(c, n, req, peer);
            comm_backoff_report(&b, where, nmissing < 0 ? NULL : c->watch.missing,
                                nmissing < 0 ? 0 : nmissing);
        }
    }
}
