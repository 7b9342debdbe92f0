/* The batch that grows with the gradient noise (--batch-auto): at each
 * decision point the coordinator compares the smoothed noise scale B_simple
 * with the global batch and, when the noise allows it, doubles the batch
 * (McCandlish et al. 2018: steps are near-perfectly efficient in samples up
 * to the critical batch, which is about B_noise). Pure functions of their
 * inputs, so a resumed run decides as the uninterrupted one did. */
#ifndef DDT_BATCH_CONTROL_H
#define DDT_BATCH_CONTROL_H

#include <stddef.h>

struct batchctl_config {
    int min;         /* the first batch (--batch-size) */
    int max;         /* the largest (--batch-auto), capped by the data set */
    int quantum;     /* every batch is a multiple of it: ranks x ghost group */
    double margin;   /* grow to G only when B_noise >= margin x G */
    int confirm;     /* ... at this many decision points in a row */
};

/* The controller's state, kept in the checkpoint. */
struct batchctl {
    int batch;       /* the batch in force */
    int streak;      /* decision points in a row that asked for more */
};

/* What one decision saw and did, for metrics.jsonl and the log. */
struct batchctl_decision {
    int from, to;    /* to == from: held */
    int target;      /* the batch the estimate asked for */
    double b_noise;  /* the B_simple used; +inf when |G|^2 <= 0 < tr(Sigma) */
    const char *why; /* "grow", "hold", "confirming", "at max", "no estimate" */
};

/* The largest batch the run may reach: max and the data set's n training
 * samples, rounded down to the quantum, never below min. */
int batchctl_cap(const struct batchctl_config *c, size_t n);

/* Checks min, max and quantum against each other and the data set (errors
 * name --batch-size, --batch-auto and --bn-group); fills err, returns -1. */
int batchctl_validate(const struct batchctl_config *c, size_t n, char *err, size_t errlen);

void batchctl_init(struct batchctl *s, const struct batchctl_config *c);

/* One decision point: from the smoothed estimates of |G|^2 and tr(Sigma)
 * (NaN: none yet), the batch for what follows. The candidates are min x 2^k
 * below the cap, and the cap; the controller never shrinks the batch.
 * Returns the batch in force after the decision. */
int batchctl_decide(const struct batchctl_config *c, struct batchctl *s, size_t n, double g2,
                    double trace, struct batchctl_decision *d);

#endif
