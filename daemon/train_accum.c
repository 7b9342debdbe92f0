/* --accumulate K: which K a run may use (each rank's slice of every global
 * batch splits into K equal micro-batches, each holding whole ghost groups),
 * the micro-batch the model's activations are sized for, and the start-up
 * line that says what a step does. */
#include <stdio.h>

#include "log.h"
#include "sampler.h"
#include "trainer.h"

static int gcd(int a, int b)
{
    while (b) {
        int r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* The global batches the schedule uses: the base and each milestone's. */
static int batch_at(const struct sched_config *s, int i)
{
    return i == 0 ? s->base_batch : s->batch_sizes[i - 1];
}

int train_micro_batch_max(const struct trainer *t, int max_global)
{
    int K = t->cfg.accumulate > 1 ? t->cfg.accumulate : 1;
    int slice = (max_global + t->nranks - 1) / t->nranks;
    return (slice + K - 1) / K;
}

/* "1, 2, 3, 4, 6, 12" into out: the divisors of n, the first few. */
static void format_divisors(int n, char *out, size_t outlen)
{
    size_t at = 0;
    int shown = 0;
    out[0] = '\0';
    for (int d = 1; d <= n && at < outlen; d++) {
        if (n % d)
            continue;
        if (shown == 12) {
            snprintf(out + at, outlen - at, ", ... %d", n);
            return;
        }
        at += (size_t)snprintf(out + at, outlen - at, "%s%d", shown ? ", " : "", d);
        shown++;
    }
}

int train_check_accumulate(const struct trainer *t, char *err, size_t errlen)
{
    const struct sched_config *s = &t->cfg.sched;
    int K = t->cfg.accumulate, G = t->cfg.model_opts.bn_group;
    if (K <= 1)
        return 0;
    /* every slice of every global batch: their gcd's divisors are the K allowed */
    int all = 0, bad_b = 0, bad_slice = 0;
    for (int i = 0; i <= s->nbatch; i++)
        for (int r = 0; r < t->nranks; r++) {
            int first, count;
            sampler_slice(batch_at(s, i), r, t->nranks, &first, &count);
            all = gcd(all, count);
            if (count % K && !bad_b) {
                bad_b = batch_at(s, i);
                bad_slice = count;
            }
        }
    if (bad_b) {
        char divisors[160];
        format_divisors(all, divisors, sizeof divisors);
        snprintf(err, errlen, "--accumulate: %d micro-batches do not split a rank's slice of %d samples (global batch %d on %d rank%s) into equal parts: allowed a K that divides every rank's slice of every global batch (--batch-size, --batch-schedule): %s",
                 K, bad_slice, bad_b, t->nranks, t->nranks == 1 ? "" : "s", divisors);
        return -1;
    }
    for (int i = 0; i <= s->nbatch; i++) {
        int micro = batch_at(s, i) / t->nranks / K;
        if (G > micro) {
            snprintf(err, errlen, "--bn-group: ghost groups of %d samples do not fit in a micro-batch of %d (global batch %d on %d rank%s, --accumulate %d): batch norm sees one micro-batch at a time; allowed a --bn-group of at most %d (one that divides it keeps every group whole)",
                     G, micro, batch_at(s, i), t->nranks, t->nranks == 1 ? "" : "s", K, micro);
            return -1;
        }
    }
    return 0;
}

void train_log_accumulate(const struct trainer *t)
{
    int K = t->cfg.accumulate, G = t->cfg.model_opts.bn_group;
    if (K <= 1 || t->rank != 0)
        return;
    /* the batch in force at the (resumed) step: --batch-auto may have grown it */
    int B = sched_batch_at(&t->cfg.sched, (double)t->epoch), micro = B / t->nranks / K;
    char groups[96];
    if (G > 0)
        snprintf(groups, sizeof groups, "ghost groups of %d inside each micro-batch", G);
    else
        snprintf(groups, sizeof groups, "each micro-batch");
    log_info("--accumulate %d: each step forwards and backwards a rank's slice of the global batch of %d as %d micro-batches of %d samples, with activations for one of them, and updates once; batch norm normalises over %s (the same bits as --bn-group %d without --accumulate)",
             K, B, K, micro, groups, G > 0 ? G : micro);
}
