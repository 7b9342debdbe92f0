/* The sharded reduction between ranks of one machine, in shared memory:
 * comm.c's helpers for it (not for other callers). */
#ifndef DDT_COMM_NODE_H
#define DDT_COMM_NODE_H

#include <stdbool.h>

#include "comm.h"

/* Sets c->node when every rank shares this machine and the window could be
 * made (when it could not, c->note says why); returns -1 on every rank,
 * with c->why, only when one is out of memory. Collective. */
int comm_node_init(struct grad_comm *c);
void comm_node_free(struct grad_comm *c);

/* The first step: the parameters into the window, the arena onto it. */
void comm_node_adopt(struct grad_comm *c);

/* This rank's gradients of bucket k are final for this step. */
void comm_node_ready(struct grad_comm *c, int k);
/* Have all ranks finished bucket k? (wait: spin until they have) */
bool comm_node_arrived(struct grad_comm *c, int k, bool wait);
/* Sums the ranks' parts of this rank's piece of bucket k into its gradients. */
void comm_node_reduce(struct grad_comm *c, const struct comm_bucket *bk);
/* This rank's pieces are updated; returns when every rank's are. */
void comm_node_sync_params(struct grad_comm *c);

#endif
