/* Loss and accuracy of a model over a data set, with batch norm in
 * evaluation mode, the samples split across the ranks of a communicator. */
#ifndef DDT_EVALUATE_H
#define DDT_EVALUATE_H

#include <mpi.h>
#include <stddef.h>

#include "comm_wait.h"
#include "dataset.h"
#include "model.h"

/* Over samples [0, n) of d: rank r of N takes the r-th contiguous share,
 * forwards it in chunks of the model's batch capacity, and the sums are
 * added across comm. *loss is the mean loss, *acc the accuracy. */
void evaluate_split(struct model *m, const struct dataset *d, size_t n, MPI_Comm comm,
                    double *loss, double *acc);
/* The same, its allreduce guarded by the watchdog w (comm_guard_enter): a
 * rank that never joins it ends the job rather than hanging it. */
void evaluate_split_watched(struct model *m, const struct dataset *d, size_t n, MPI_Comm comm,
                            struct comm_watch *w, double *loss, double *acc);

#endif
