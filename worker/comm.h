/* The communication of one step: gradients summed across ranks in buckets,
 * each started (non-blocking) as soon as backward has produced it, plus the
 * step's statistics. With one rank nothing is sent.
 *
 * Two ways to sum the gradients:
 * - allreduce: every rank ends with the whole summed gradient and runs the
 *   whole optimizer step, as every replica of PyTorch DDP does;
 * - sharded (ZeRO stage 1): every bucket is cut into one piece per rank and
 *   reduce-scattered point to point, so a rank ends with the sums of its own
 *   pieces (its shard) only, updates them with the optimizer state it alone
 *   holds, and the ranks then all-gather the parameters. The bytes sent are
 *   those of a ring allreduce; the optimizer's work and state per rank are
 *   1/N; and since every bucket is split, the reduction of the last one, the
 *   part no computation can hide, is shared by all ranks.
 *   When every rank runs on one machine (and node_shared is asked for), the
 *   same shards are summed without messages: the gradient arenas live in an
 *   MPI shared-memory window, each owner reads the others' parts of its
 *   pieces in place, and one parameter arena serves every rank, so there is
 *   nothing to all-gather (comm_node.c). */
#ifndef DDT_COMM_H
#define DDT_COMM_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comm_node.h"
#include "comm_wait.h"
#include "model.h"
#include "optim.h"

/* Requests a rank passes on to every rank with a step's statistics (what
 * they mean is the caller's business: a signal it received, say). */
#define COMM_REQUESTS 2

/* Statistics that ride along with the gradients, summed over ranks. The
 * caller fills the first ones (loss sum, correct count, sample count, and the
 * COMM_REQUESTS request slots); comm_finish adds the rank's squared
 * mean-gradient norm when asked to measure it. */
enum {
    STAT_LOSS = 0,
    STAT_CORRECT,
    STAT_COUNT,
    STAT_REQUEST,            /* COMM_REQUESTS slots */
    STAT_GRAD_SQ_OVER_B = STAT_REQUEST + COMM_REQUESTS, /* |the rank's gradient sum / its sample count|^2 */
    STAT_N
};

#define COMM_MAX_BUCKETS 256

/* A contiguous range of the gradient arena sent as one message, once the
 * gradients of layer `ready_layer` (and so of every later one) exist. */
struct comm_bucket {
    size_t lo, hi;
    int ready_layer;
    /* sharded: rank q's piece is [lo + displs[q], + counts[q]); this rank's
     * state and reduction rows for its piece start at own_off */
    int *counts, *displs;
    size_t own_off;
    int first_recv, nrecv;   /* its requests receiving the others' parts of our piece */
};

struct grad_comm {
    MPI_Comm comm;
    int rank, nranks;
    bool overlap;            /* start buckets during backward (else all after it) */
    bool shard;              /* reduce-scatter + sharded optimizer (nranks > 1 only) */
    bool measure_norm;       /* this step: compute the rank's squared gradient norm */
    struct model *model;
    struct comm_bucket bucket[COMM_MAX_BUCKETS]; /* in sending order: last layers first */
    int nbuckets;
    /* sharded: this rank's pieces, bucket by bucket, and their total */
    struct optim_range *owned;
    size_t owned_n;
    int *piece_ints;         /* the buckets' counts and displs */
    float *recv;             /* (nranks - 1) rows of owned_n: the others' parts */
    const float **src;       /* nranks: the sources of one piece's sum */
    struct comm_node node;   /* one machine, shared memory (when node.on) */
    uint64_t epoch;          /* steps begun */
    struct optim_range whole; /* not sharded: the one range owned */
    /* per step */
    int sent;                /* buckets started */
    int reduced;             /* sharded: buckets whose part of this shard is summed */
    int nreq, req_cap;
    MPI_Request *req;        /* allreduce: one per bucket; sharded: sends and receives */
    int *req_peer;           /* the rank each request waits on (-1: a collective) */
    MPI_Request stat_req[2];
    double local_sq;         /* this rank's |gradient sum|^2 */
    double stats[STAT_N];    /* in: this rank's; out after comm_finish: the sums */
    double wait_seconds;     /* time spent blocked in comm_finish this step */
    double reduce_seconds;   /* this step so far: summing shards (the rest of the
                              * reduction's time is waiting) */
    struct comm_watch watch; /* how long a wait may last, and whom to tell */
    char why[200];           /* comm_init failed: why */
    char note[200];          /* shared memory asked for but not possible: why */
};

/* Plans the buckets (about bucket_floats each, cut at layer boundaries) and,
 * when shard is set and there is more than one rank, the shards, summed in
 * shared memory when node_shared is set and every rank is on this machine
 * (when the window cannot be made, c->note says why and messages carry the
 * shards). The watchdog (c->watch) is made first from watch (NULL: off), so
 * that it watches the set-up's own collectives. Collective: returns 0 on
 * every rank, or -1 on every rank with c->why (out of memory, no watchdog
 * thread, or a bucket too large for an MPI count, here or on another
 * rank). */
int comm_init(struct grad_comm *c, MPI_Comm comm, struct model *m, size_t bucket_floats,
              bool overlap, bool shard, bool node_shared,
              const struct comm_watch_settings *watch);
void comm_free(struct grad_comm *c);

/* Did every rank of comm succeed? (collective) */
bool comm_all_ok(MPI_Comm comm, bool ok);

/* The arena ranges whose optimizer step this rank takes: its pieces, or the
 * whole arena; returns their count (the array belongs to c). */
int comm_owned_ranges(const struct grad_comm *c, const struct optim_range **ranges);

/* Before backward (the first call, in shared memory, moves the parameters
 * into the window: collective); measure_norm asks for this rank's squared gradient norm
 * (STAT_GRAD_SQ_OVER_B) at the cost of one more read of the gradients. */
void comm_begin(struct grad_comm *c, bool measure_norm);

/* The grad_ready_fn to hand to model_backward (user = the grad_comm). */
void comm_grad_ready(void *user, int layer);

/* After backward: sends what is left, with c->stats and the model's
 * batch-norm batch statistics, and waits for everything. Afterwards
 * model->bn_batch holds sums over all ranks, c->stats the summed statistics,
 * and the gradient arena the summed gradients over the owned range (the rest
 * of it, when sharded, still holds this rank's own). */
void comm_finish(struct grad_comm *c);

/* After the optimizer step: every rank's shard of the parameters to every
 * rank (nothing to do unless sharded; in shared memory, waits until every
 * owner has written its pieces). */
void comm_gather_params(struct grad_comm *c);

/* |summed gradient|^2 over the whole arena (collective when sharded; the
 * blocking allreduce is guarded). */
double comm_summed_grad_sq(struct grad_comm *c);

/* The optimizer's optim_norm_sum_fn (user = the grad_comm): sums per-tensor
 * norm parts over ranks. */
void comm_sum_norms(void *user, double *norms, int count);

/* Sharded optimizer state to rank 0: part holds this rank's pieces (laid out
 * as comm_owned_ranges lists them) and rank 0's full receives the whole
 * arena's worth, in arena order (collective, guarded). */
void comm_gather_shards(struct grad_comm *c, const float *part, float *full);

/* Are the parameters bit-identical on every rank? Compares a 64-bit hash
 * (collective, under the watchdog). */
bool comm_replicas_agree(struct grad_comm *c, const float *w, size_t n, unsigned long long *hash);

/* Waits for req[0..n) under the watchdog (c->watch): peer[i] is the rank
 * request i waits on, or -1 when it belongs to a collective (peer NULL: all
 * do); where names the wait in a report. Completes the same requests as
 * MPI_Waitall. */
void comm_wait_all(struct grad_comm *c, int n, MPI_Request *req, const int *peer,
                   const char *where);

#endif
