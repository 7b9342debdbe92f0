/* Distributed evaluation of a model over a data set. */
#include "evaluate.h"

#include <math.h>

void evaluate_split(struct model *m, const struct dataset *d, size_t n, MPI_Comm comm,
                    double *loss, double *acc)
{
    evaluate_split_watched(m, d, n, comm, NULL, loss, acc);
}

void evaluate_split_watched(struct model *m, const struct dataset *d, size_t n, MPI_Comm comm,
                            struct comm_watch *w, double *loss, double *acc)
{
    int rank, nranks;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    size_t lo = n * (size_t)rank / (size_t)nranks;
    size_t hi = n * (size_t)(rank + 1) / (size_t)nranks;
    double sums[2] = { 0, 0 };
    struct pass_ctx ctx = { .train = false };
    enum { CHUNK = 1024 };
    uint32_t idx[CHUNK];
    for (size_t i = lo; i < hi;) {
        size_t B = hi - i;
        if (B > (size_t)m->max_batch)
            B = (size_t)m->max_batch;
        if (B > CHUNK)
            B = CHUNK;
        for (size_t k = 0; k < B; k++)
            idx[k] = (uint32_t)(i + k);
        int correct;
        sums[0] += model_batch_loss(m, d, idx, (int)B, &ctx, &correct);
        sums[1] += correct;
        i += B;
    }
    if (nranks > 1) {
        comm_guard_enter(w, "the allreduce of the evaluation's sums");
        MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, comm);
        comm_guard_leave(w);
    }
    *loss = n ? sums[0] / (double)n : NAN;
    *acc = n ? sums[1] / (double)n : NAN;
}
