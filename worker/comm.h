/* The communication of one step: gradients summed across ranks in buckets,
 * each started (non-blocking) as soon as backward has produced it, plus the
 * step's statistics. With one rank nothing is sent. */
#ifndef DDT_COMM_H
#define DDT_COMM_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>

#include "model.h"

/* Statistics that ride along with the gradients, summed over ranks. The
 * caller fills the first ones (loss sum, correct count, sample count, and any
 * requests a rank has to pass on, such as a signal it received); comm_finish
 * adds the rank's squared mean-gradient norm when asked to measure it. */
enum {
    STAT_LOSS = 0,
    STAT_CORRECT,
    STAT_COUNT,
    STAT_REQUEST_CKPT,
    STAT_REQUEST_STOP,
    STAT_GRAD_SQ_OVER_B,     /* |the rank's gradient sum / its sample count|^2 */
    STAT_N
};

#define COMM_MAX_BUCKETS 256

struct grad_comm {
    MPI_Comm comm;
    int rank, nranks;
    bool overlap;            /* start buckets during backward (else all after it) */
    bool measure_norm;       /* this step: compute the rank's squared gradient norm */
    size_t bucket_floats;    /* target bucket size */
    struct model *model;
    /* per step */
    size_t pending_hi;       /* gradients in [pending_lo, pending_hi) not yet sent */
    size_t pending_lo;
    int nreq;
    MPI_Request req[COMM_MAX_BUCKETS + 2];
    size_t bucket_lo[COMM_MAX_BUCKETS], bucket_hi[COMM_MAX_BUCKETS];
    double local_sq;         /* this rank's |gradient sum|^2 */
    double stats[STAT_N];    /* in: this rank's; out after comm_finish: the sums */
    double wait_seconds;     /* time spent blocked in comm_finish this step */
};

void comm_init(struct grad_comm *c, MPI_Comm comm, struct model *m, size_t bucket_floats,
               bool overlap);

/* Before backward; measure_norm asks for this rank's squared gradient norm
 * (STAT_GRAD_SQ_OVER_B) at the cost of one more read of the gradients. */
void comm_begin(struct grad_comm *c, bool measure_norm);

/* The grad_ready_fn to hand to model_backward (user = the grad_comm). */
void comm_grad_ready(void *user, int layer);

/* After backward: sends what is left, with c->stats and the model's
 * batch-norm batch statistics, and waits for everything. Afterwards the
 * gradient arena and model->bn_batch hold sums over all ranks and c->stats
 * the summed statistics. */
void comm_finish(struct grad_comm *c);

/* Sum of the batch-norm running statistics over ranks, divided by the rank
 * count (blocking; called when they are read for evaluation or saving). */
void comm_average_floats(MPI_Comm comm, float *x, size_t n);

/* Are the parameters bit-identical on every rank? Compares a 64-bit hash. */
bool comm_replicas_agree(MPI_Comm comm, const float *w, size_t n, unsigned long long *hash);

#endif
