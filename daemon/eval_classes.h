/* `ddtrain eval --per-class`: the confusion matrix of a data set and each
 * class's accuracy, as a table and as JSON. */
#ifndef DDT_EVAL_CLASSES_H
#define DDT_EVAL_CLASSES_H

#include <mpi.h>
#include <stddef.h>
#include <stdio.h>

#include "dataset.h"
#include "model.h"

/* The most classes --per-class takes: its K x K matrix of 8-byte counts is
 * 128 MiB on each rank (twice on rank 0) at 4096, and its cell count stays
 * far inside MPI's int count. */
#define EVAL_PER_CLASS_MAX 4096

/* *counts (K, K), allocated (free it): row = true label, column = the
 * prediction (the arg-max, lowest index on ties, as the accuracy counts it)
 * over samples [0, n) of d in evaluation mode, each rank taking a
 * contiguous share; the sums on rank 0. Collective. Returns 0, or -1 (and
 * *counts NULL) on every rank when one is out of memory. */
int eval_confusion(struct model *m, const struct dataset *d, size_t n, MPI_Comm comm,
                   long long **counts);

/* The table: per class its samples, correct and accuracy, then the matrix. */
void eval_print_confusion(FILE *f, const long long *counts, int K);

/* ,"per_class":[{"class":k,"samples":..,"correct":..,"accuracy":..},...],
 * "confusion":[[...],...] (to go inside an object). */
void eval_json_confusion(FILE *f, const long long *counts, int K);

#endif
