/* `ddtrain interpolate A.ckpt B.ckpt --alpha -1:2:25`: the line
 * f(alpha B + (1 - alpha) A) of Keskar et al.'s Figure 3, train and test
 * loss and accuracy at each alpha. Batch-norm running statistics are mixed
 * the same way; the input normalisation is A's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "ckpt_restore.h"
#include "commands.h"
#include "probe.h"
#include "table.h"

struct interpolate_config {
    struct analysis_common common;
    char alpha[CONFIG_STRLEN];
};

static const struct option_def interpolate_options[] = {
    { "alpha", OPT_STRING, offsetof(struct interpolate_config, alpha), 1, 0, "-1:2:25", NULL, 0,
      "LO:HI:COUNT values of alpha (0 is A, 1 is B)" },
    ANALYSIS_OPTIONS(struct interpolate_config),
    { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL },
};

int interpolate_main(int argc, char **argv, int first)
{
    struct interpolate_config c;
    char *pos[2], err[1024];
    int rc = analysis_args("interpolate", "ddtrain interpolate A.ckpt B.ckpt [--alpha LO:HI:N] [options]",
                           interpolate_options, &c, argc, argv, first, pos, 2);
    if (rc)
        return rc == 1 ? 0 : rc;
    double lo, hi;
    int count;
    if (probe_parse_range(c.alpha, &lo, &hi, &count) < 0) {
        snprintf(err, sizeof err, "--alpha: '%s' is not LO:HI:COUNT with LO < HI and COUNT from 2",
                 c.alpha);
        return analysis_fail("interpolate", err);
    }
    struct probe p;
    if (probe_open(&p, pos[0], (size_t)c.common.samples, c.common.seed, MPI_COMM_WORLD, err,
                   sizeof err))
        return analysis_fail("interpolate", err);
    struct model *m = &p.cm.model;
    size_t nb = m->bn_running_n;
    float *wb = malloc(p.n * sizeof *wb), *x = malloc(p.n * sizeof *x);
    float *bna = malloc((nb + 1) * sizeof *bna), *bnb = malloc((nb + 1) * sizeof *bnb);
    if (!wb || !x || !bna || !bnb) {
        probe_close(&p);
        return analysis_fail("interpolate", "out of memory");
    }
    memcpy(bna, m->bn_running, nb * sizeof *bna);
    /* B through the same model, which checks that every name and shape fits */
    Ddtrain__Checkpoint *msg;
    char sub[CKPT_ERRLEN];
    if (ckpt_read_file(pos[1], &msg, sub) ||
        ckpt_restore_model(m, msg, false, sub, (int)sizeof sub)) {
        snprintf(err, sizeof err, "%s: %s", pos[1], sub);
        probe_close(&p);
        return analysis_fail("interpolate", err);
    }
    ckpt_free(msg);
    memcpy(wb, m->arena.w, p.n * sizeof *wb);
    memcpy(bnb, m->bn_running, nb * sizeof *bnb);
    /* back to A, whose input normalisation the line uses */
    if (ckpt_restore_model(m, p.cm.msg, false, sub, (int)sizeof sub)) {
        probe_close(&p);
        return analysis_fail("interpolate", sub);
    }

    struct table t;
    char header[2048];
    snprintf(header, sizeof header, "ddtrain interpolate a=%s b=%s alpha=%s samples=%zu seed=%llu",
             pos[0], pos[1], c.alpha, p.nsubset, (unsigned long long)c.common.seed);
    static const char *const cols[] = { "alpha", "train_loss", "train_accuracy", "test_loss",
                                        "test_accuracy" };
    if (p.rank == 0)
        table_begin(&t, c.common.json, header, cols, 5);
    for (int k = 0; k < count; k++) {
        double alpha = count == 1 ? lo : lo + (hi - lo) * k / (count - 1);
        for (size_t i = 0; i < p.n; i++)
            x[i] = (float)((1.0 - alpha) * p.x0[i] + alpha * wb[i]);
        for (size_t i = 0; i < nb; i++)
            m->bn_running[i] = (float)((1.0 - alpha) * bna[i] + alpha * bnb[i]);
        /* beyond the end points a mixed variance can go negative */
        for (size_t i = nb / 2; i < nb; i++)
            if (m->bn_running[i] < 0.0f)
                m->bn_running[i] = 0.0f;
        double tra, tea;
        double trl = probe_loss(&p, x, &tra);
        double tel = probe_test_loss(&p, x, &tea);
        if (p.rank == 0) {
            double row[5] = { alpha, trl, tra, tel, tea };
            table_row(&t, row);
        }
    }
    if (p.rank == 0 && table_end(&t, c.common.out, err, sizeof err))
        fprintf(stderr, "ddtrain interpolate: %s\n", err);
    free(wb);
    free(x);
    free(bna);
    free(bnb);
    probe_close(&p);
    return 0;
}
