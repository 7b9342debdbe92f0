/* The sharded reduction between ranks of one machine, in shared memory: the
 * window, its flags and the in-place sums. It knows buckets only by index
 * and arena offsets, so comm.c depends on it and not the other way round. */
#ifndef DDT_COMM_NODE_H
#define DDT_COMM_NODE_H

#include <mpi.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "comm_wait.h"

struct comm_node {
    bool on;                 /* the window exists and carries the shards */
    bool adopted;            /* the arena now points into the window */
    int rank, nranks;
    int nbuckets;            /* flag slots 0..nbuckets-1: buckets; nbuckets: updated */
    MPI_Comm comm;           /* the ranks of this machine (all of them) */
    MPI_Win win;
    float **peer_g;          /* every rank's gradient arena */
    float *node_w;           /* the one parameter arena */
    _Atomic uint64_t *flags; /* per rank, flag_stride apart: bucket-ready steps, then updated */
    size_t flag_stride;
};

/* Sets n->on when every rank of comm shares this machine and the window for
 * an arena of arena_n floats could be made (when it could not, note says
 * why); returns -1 on every rank, with why, only when one is out of memory.
 * Collective over comm; its blocking calls are guarded by w. */
int comm_node_init(struct comm_node *n, MPI_Comm comm, int nbuckets, size_t arena_n,
                   struct comm_watch *w, char *note, size_t notelen, char *why, size_t whylen);
/* Frees the window (collective, guarded by w); an adopted arena a loses its
 * pointers with it. */
void comm_node_free(struct comm_node *n, struct arena *a, struct comm_watch *w);

/* The first step: the parameters into the window, the arena a onto it
 * (a barrier, guarded by w). */
void comm_node_adopt(struct comm_node *n, struct arena *a, struct comm_watch *w);

/* This rank's gradients of bucket k are final for step `epoch`. */
void comm_node_ready(struct comm_node *n, int k, uint64_t epoch);
/* Have all ranks finished bucket k of step `epoch`? (wait: wait until they
 * have, under the watchdog w, which hears of the ranks whose flags lag) */
bool comm_node_arrived(const struct comm_node *n, int k, uint64_t epoch, bool wait,
                       struct comm_watch *w);
/* Sums every rank's gradients [at, at + count) into this rank's, in rank
 * order; src is scratch for nranks pointers. */
void comm_node_reduce(const struct comm_node *n, const float **src, size_t at, size_t count);
/* This rank's pieces of step `epoch` are updated; returns when every rank's
 * are (under the watchdog w). */
void comm_node_sync_params(struct comm_node *n, uint64_t epoch, struct comm_watch *w);

#endif
