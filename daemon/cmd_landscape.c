/* `ddtrain landscape CKPT --dims 1|2 --range -1:1:21 [--filter-norm]`: the
 * loss along one or two seeded random directions through the parameters (Li
 * et al. 2018), with filter normalisation per output neuron when asked;
 * biases and batch-norm parameters do not move. */
#include <stdio.h>
#include <stdlib.h>

#include "analysis.h"
#include "commands.h"
#include "directions.h"
#include "probe.h"
#include "table.h"

struct landscape_config {
    struct analysis_common common;
    int dims;
    char range[CONFIG_STRLEN];
    bool filter_norm;
};

const struct option_def landscape_options[] = {
    { "dims", OPT_INT, offsetof(struct landscape_config, dims), 1, 2, "1", NULL, 0,
      "one or two random directions" },
    { "range", OPT_STRING, offsetof(struct landscape_config, range), 1, 0, "-1:1:21", NULL, 0,
      "LO:HI:COUNT steps along each direction" },
    { "filter-norm", OPT_BOOL, offsetof(struct landscape_config, filter_norm), 0, 0, "false",
      NULL, 0, "filter-normalise the directions (else scale each tensor's to its norm)" },
    ANALYSIS_OPTIONS(struct landscape_config),
    { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL },
};

int landscape_main(int argc, char **argv, int first)
{
    struct landscape_config c;
    char *pos[1], err[1024];
    int rc = analysis_args("landscape", "ddtrain landscape CKPT [--dims 1|2] [--range LO:HI:N] [--filter-norm] [options]",
                           landscape_options, &c, argc, argv, first, pos, 1);
    if (rc)
        return rc == 1 ? 0 : rc;
    double lo, hi;
    int count;
    if (probe_parse_range(c.range, &lo, &hi, &count) < 0) {
        snprintf(err, sizeof err, "--range: '%s' is not LO:HI:COUNT with LO < HI and COUNT from 2",
                 c.range);
        return analysis_fail("landscape", err);
    }
    struct probe p;
    if (probe_open(&p, pos[0], (size_t)c.common.samples, c.common.seed, MPI_COMM_WORLD, err,
                   sizeof err))
        return analysis_fail("landscape", err);
    const struct arena *a = &p.cm.model.arena;
    float *d1 = malloc(p.n * sizeof *d1), *d2 = malloc(p.n * sizeof *d2);
    float *x = malloc(p.n * sizeof *x);
    if (!d1 || !d2 || !x) {
        probe_close(&p);
        return analysis_fail("landscape", "out of memory");
    }
    direction_random(d1, a, p.x0, c.common.seed, 0, c.filter_norm);
    direction_random(d2, a, p.x0, c.common.seed, 1, c.filter_norm);
    struct table t;
    char header[2048];
    snprintf(header, sizeof header,
             "ddtrain landscape ckpt=%s dims=%d range=%s filter_norm=%s samples=%zu seed=%llu",
             pos[0], c.dims, c.range, c.filter_norm ? "true" : "false", p.nsubset,
             (unsigned long long)c.common.seed);
    static const char *const cols1[] = { "a", "train_loss", "train_accuracy" };
    static const char *const cols2[] = { "a", "b", "train_loss", "train_accuracy" };
    if (p.rank == 0)
        table_begin(&t, c.common.json, header, c.dims == 1 ? cols1 : cols2, c.dims + 2);
    int nb = c.dims == 2 ? count : 1;
    for (int i = 0; i < count; i++) {
        double alpha = count == 1 ? lo : lo + (hi - lo) * i / (count - 1);
        for (int j = 0; j < nb; j++) {
            double beta = c.dims == 1 ? 0.0 : count == 1 ? lo : lo + (hi - lo) * j / (count - 1);
            for (size_t k = 0; k < p.n; k++)
                x[k] = (float)(p.x0[k] + alpha * d1[k] + beta * d2[k]);
            double acc, loss = probe_loss(&p, x, &acc);
            if (p.rank == 0) {
                double row1[3] = { alpha, loss, acc }, row2[4] = { alpha, beta, loss, acc };
                table_row(&t, c.dims == 1 ? row1 : row2);
            }
        }
    }
    if (p.rank == 0 && table_end(&t, c.common.out, err, sizeof err))
        fprintf(stderr, "ddtrain landscape: %s\n", err);
    free(d1);
    free(d2);
    free(x);
    probe_close(&p);
    return 0;
}
