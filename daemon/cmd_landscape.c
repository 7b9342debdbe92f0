/* `ddtrain landscape CKPT --dims 1|2 --range -1:1:21 [--filter-norm]`: the
 * loss along one or two seeded random directions through the parameters (Li
 * et al. 2018), with filter normalisation per output neuron when asked;
 * biases and batch-norm parameters do not move. With batch norm, its
 * running statistics are recomputed at each point from a seeded sample
 * (--bn-recalibrate), as the moved weights would have them: the
 * checkpoint's describe only the centre. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "analysis.h"
#include "commands.h"
#include "directions.h"
#include "exit_status.h"
#include "probe.h"
#include "table.h"

struct landscape_config {
    struct analysis_common common;
    int dims;
    char range[CONFIG_STRLEN];
    bool filter_norm;
    int bn_recalibrate;
};

const struct option_def landscape_options[] = {
    { "dims", OPT_INT, offsetof(struct landscape_config, dims), 1, 2, "1", NULL, 0,
      "one or two random directions" },
    { "range", OPT_STRING, offsetof(struct landscape_config, range), 1, 0, "-1:1:21", NULL, 0,
      "LO:HI:COUNT steps along each direction" },
    { "filter-norm", OPT_BOOL, offsetof(struct landscape_config, filter_norm), 0, 0, "false",
      NULL, 0, "filter-normalise the directions (else scale each tensor's to its norm)" },
    ANALYSIS_BN_OPTION(struct landscape_config, bn_recalibrate,
                       "keep the checkpoint's running statistics at every point"),
    ANALYSIS_OPTIONS(struct landscape_config),
    { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL },
};

/* The loss at x (n floats, overwritten) = x0 + alpha d1 + beta d2, after
 * recalibrating batch norm there when asked. */
static double cut_point(struct probe *p, float *x, const float *d1, const float *d2,
                        double alpha, double beta, double *acc)
{
    for (size_t k = 0; k < p->n; k++)
        x[k] = (float)(p->x0[k] + alpha * d1[k] + beta * d2[k]);
    probe_bn_recalibrate(p, x);
    return probe_loss(p, x, acc);
}

/* Warns about every point (rows of `width` values: a (and b), loss, accuracy)
 * whose loss is not finite or far above the centre's. */
static void cut_check(struct probe *p, float *x, const float *d1, const float *d2,
                      const double *rows, int nrows, int width, bool recalibrated)
{
    double centre = NAN, acc;
    for (int k = 0; k < nrows; k++)
        if (rows[width * k] == 0.0 && (width == 3 || rows[width * k + 1] == 0.0))
            centre = rows[width * k + width - 2];
    if (isnan(centre))
        centre = cut_point(p, x, d1, d2, 0.0, 0.0, &acc);
    char refname[64], point[64];
    snprintf(refname, sizeof refname, "the centre's %.4g", centre);
    for (int k = 0; k < nrows; k++) {
        const double *row = rows + width * k;
        double loss = row[width - 2];
        if (!analysis_suspect(loss, centre, p->cm.model.classes))
            continue;
        if (width == 3)
            snprintf(point, sizeof point, "a %.9g", row[0]);
        else
            snprintf(point, sizeof point, "a %.9g b %.9g", row[0], row[1]);
        analysis_warn_suspect("landscape", point, "train", loss, refname, p->cm.model.classes,
                              p->cm.model.bn_running_n && !recalibrated);
    }
}

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
    int nb = c.dims == 2 ? count : 1, width = c.dims + 2;
    double *rows = malloc((size_t)count * (size_t)nb * (size_t)width * sizeof *rows);
    if (!d1 || !d2 || !x || !rows ||
        probe_bn_prepare(&p, (size_t)c.bn_recalibrate, err, sizeof err)) {
        free(d1);
        free(d2);
        free(x);
        free(rows);
        probe_close(&p);
        return analysis_fail("landscape", "out of memory");
    }
    direction_random(d1, a, p.x0, c.common.seed, 0, c.filter_norm);
    direction_random(d2, a, p.x0, c.common.seed, 1, c.filter_norm);
    struct table t;
    char header[2048], recal[48] = "";
    if (p.nrecal)
        snprintf(recal, sizeof recal, " bn_recalibrate=%zu", p.nrecal);
    snprintf(header, sizeof header,
             "ddtrain landscape ckpt=%s dims=%d range=%s filter_norm=%s samples=%zu seed=%llu%s",
             pos[0], c.dims, c.range, c.filter_norm ? "true" : "false", p.nsubset,
             (unsigned long long)c.common.seed, recal);
    static const char *const cols1[] = { "a", "train_loss", "train_accuracy" };
    static const char *const cols2[] = { "a", "b", "train_loss", "train_accuracy" };
    if (p.rank == 0)
        table_begin(&t, c.common.json, header, c.dims == 1 ? cols1 : cols2, width);
    for (int i = 0; i < count; i++) {
        double alpha = count == 1 ? lo : lo + (hi - lo) * i / (count - 1);
        for (int j = 0; j < nb; j++) {
            double beta = c.dims == 1 ? 0.0 : count == 1 ? lo : lo + (hi - lo) * j / (count - 1);
            double *row = rows + (size_t)width * ((size_t)i * (size_t)nb + (size_t)j), acc;
            double loss = cut_point(&p, x, d1, d2, alpha, beta, &acc);
            row[0] = alpha;
            if (c.dims == 2)
                row[1] = beta;
            row[width - 2] = loss;
            row[width - 1] = acc;
            if (p.rank == 0)
                table_row(&t, row);
        }
    }
    int written = 0;
    if (p.rank == 0 && table_end(&t, c.common.out, err, sizeof err)) {
        fprintf(stderr, "ddtrain landscape: %s\n", err);
        written = DDT_EXIT_FAILURE;
    }
    cut_check(&p, x, d1, d2, rows, count * nb, width, p.nrecal > 0);
    free(rows);
    free(d1);
    free(d2);
    free(x);
    probe_close(&p);
    return written;
}
