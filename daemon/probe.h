/* The loss of a trained model as a function of its parameters, for the
 * analysis commands: training loss with batch norm in evaluation mode on a
 * fixed, seeded subset of the training set, samples split across ranks,
 * with its gradient. */
#ifndef DDT_PROBE_H
#define DDT_PROBE_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt_model.h"

struct probe {
    struct ckpt_model cm;
    MPI_Comm comm;
    int rank, nranks;
    uint64_t seed;      /* of the subset (and of recalibration's dropout masks) */
    uint32_t *subset;   /* training-set indices this probe uses, in order */
    size_t nsubset;
    size_t n;           /* parameters (the arena) */
    float *x0;          /* the checkpoint's parameters */
    /* --bn-recalibrate: the samples batch norm's running statistics are
     * recomputed from (the first nrecal of the seeded subset's order; 0:
     * off), their own permutation when the subset is the whole set, and the
     * statistics' sums */
    const uint32_t *recal;
    size_t nrecal;
    uint32_t *perm;
    double *recal_sums; /* (bn_running_n + 1) */
};

/* Opens the checkpoint; samples == 0 takes the whole training set, else a
 * seeded random subset of that many samples (the same on every rank). */
int probe_open(struct probe *p, const char *ckpt, size_t samples, uint64_t seed, MPI_Comm comm,
               char *err, size_t errlen);
void probe_close(struct probe *p);

/* Makes probe_bn_recalibrate use the first n samples (at most the subset's)
 * of the seeded subset's order (the whole training set's seeded order when
 * the subset is all of it); n == 0 or a model without batch norm turns it
 * off. Returns 0 or -1 with err (out of memory). */
int probe_bn_prepare(struct probe *p, size_t n, char *err, size_t errlen);

/* Sets the parameters to w (NULL: as they are) and, when prepared, replaces
 * every batch-norm running statistic by the average of the group statistics
 * of a training-mode forward pass over the recalibration samples (PyTorch's
 * update_bn with a cumulative average), in chunks of 512 samples dealt to
 * the ranks in turn. Returns whether it recalibrated. */
bool probe_bn_recalibrate(struct probe *p, const float *w);

/* Mean loss (and accuracy) at parameters w (n floats; NULL: as they are). */
double probe_loss(struct probe *p, const float *w, double *acc);

/* Mean loss at w and its gradient (n floats, identical on every rank). */
double probe_loss_grad(struct probe *p, const float *w, float *grad);

/* Loss and accuracy at w of the first ntest test samples (0: the whole
 * test set). */
double probe_test_loss(struct probe *p, const float *w, size_t ntest, double *acc);

/* Parses "lo:hi:count" into count evenly spaced values (count >= 2, or 1 for
 * lo alone). Returns the count or -1. */
int probe_parse_range(const char *text, double *lo, double *hi, int *count);

#endif
