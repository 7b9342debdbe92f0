/* The advice a run with few samples per rank gets: its ranks are mostly
 * waiting on memory, not computing. */
#include "log.h"
#include "trainer.h"

/* Below this many samples per rank a step's fixed memory traffic outweighs
 * its GEMMs: they do 6 flops per parameter and sample, while the gradients'
 * reduction and the optimizer's pass read and write about 20 bytes per
 * parameter whatever the slice (gradient parts, parameters, momentum); at
 * one core's ~90 GFLOP/s against ~10 GB/s the two meet near 30 samples.
 * `make bench` section 7 measures it (two ranks 1.04x one rank at batch 8
 * on the 2-core machine the warning was written on). */
#define SMALL_SLICE 32

void train_warn_small_slices(const struct trainer *t)
{
    const struct train_config *c = &t->cfg;
    if (t->rank != 0 || t->nranks < 2 || c->local_steps > 0)
        return;
    /* the batch in force at the (resumed) step: --batch-auto may have grown it */
    int B = sched_batch_at(&c->sched, (double)t->epoch), slice = B / t->nranks;
    if (slice >= SMALL_SLICE)
        return;
    /* the arena's length counts alignment padding too */
    double P = (double)model_param_count(engine_model_const(&t->engine));
    log_warn("%d samples per rank (global batch %d over %d ranks): each step still sums and updates all %.0f parameters (about %.0f MB of memory traffic per rank) for %.2f GFLOP of GEMMs per rank, so below about %d samples per rank more ranks gain little (`make bench` section 7 measures it); fewer ranks, a larger batch or --local-steps H use them better",
             slice, B, t->nranks, P, P * 20.0 / 1e6, 6.0 * P * slice / 1e9, SMALL_SLICE);
}
