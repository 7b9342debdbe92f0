/* Local SGD's average (Lin et al. 2020): the mean over ranks of arrays every
 * rank holds its own copy of (parameters, batch-norm running statistics,
 * optionally the optimizer state), summed in rank order so that every rank
 * ends with the same bits, whatever the transport. */
#ifndef DDT_AVERAGE_H
#define DDT_AVERAGE_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>

#include "comm_wait.h"

struct engine;

struct average {
    MPI_Comm comm;
    int rank, nranks;
    size_t cap;              /* most floats one call averages */
    float *rows;             /* (nranks x ceil(cap / nranks)): every rank's part of this rank's piece */
    const float **src;       /* (nranks) the rows, in rank order */
    int *counts, *displs;    /* (nranks) each rank's piece of the array */
    int *rcounts, *rdispls;  /* (nranks) where each rank's part of our piece lands */
};

/* Buffers to average arrays of up to cap floats over comm's ranks. Returns
 * 0, or -1 when out of memory or cap is too large for an MPI count (not
 * collective: the caller agrees). */
int average_init(struct average *a, MPI_Comm comm, size_t cap);
void average_free(struct average *a);

/* dst (n) = (src[0] + src[1] + ... + src[nsrc-1]) / nsrc, element by
 * element, added left to right in float: the one formula of the average,
 * used by the ranks' exchange and by the checkpoint that averages the
 * ranks' gathered copies, so both give the same bits. dst may be src[0]. */
void average_rows(float *dst, const float *const *src, int nsrc, size_t n);

/* x (n <= cap) becomes the mean of every rank's x, the same bits on every
 * rank: each rank sums one contiguous piece (an all-to-all of the pieces,
 * average_rows in rank order), then the pieces are all-gathered. The bytes
 * sent are those of a ring allreduce. Collective; blocking calls under the
 * watchdog w's guards (a non-blocking collective may progress in another
 * order, and these move data only, which blocking keeps simple). */
void average_ranks(struct average *a, float *x, size_t n, struct comm_watch *w);

/* The end of a local period: every rank's parameters and batch-norm
 * running statistics (and, with optimizer_state, its optimizer moments)
 * become the mean over ranks. Collective. */
void average_replicas(struct engine *e, bool optimizer_state);

/* Floats average_replicas_save keeps: the parameters, then the running
 * statistics. */
size_t average_backup_floats(const struct engine *e);

/* For an evaluation or a checkpoint of the averaged model in the middle of
 * a local period: backup (average_backup_floats) keeps this rank's own
 * parameters and running statistics, which then become the mean over
 * ranks (collective); average_replicas_restore puts the rank's own back,
 * so that training goes on as if nothing had been looked at. */
void average_replicas_save(struct engine *e, float *backup);
void average_replicas_restore(struct engine *e, const float *backup);

#endif
