/* `ddtrain interpolate A.ckpt B.ckpt --alpha -1:2:25`: the line
 * f(alpha B + (1 - alpha) A) of Keskar et al.'s Figure 3, train and test
 * loss and accuracy at each alpha. Batch-norm running statistics are
 * recomputed at each point from a seeded sample (--bn-recalibrate, as the
 * loss-landscape literature does: mixed statistics describe no network, and
 * past the ends a mixed variance goes to zero and the loss explodes), or
 * with --bn-recalibrate 0 mixed the same way as the weights; the input
 * normalisation is A's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "ckpt_restore.h"
#include "commands.h"
#include "exit_status.h"
#include "probe.h"
#include "table.h"

struct interpolate_config {
    struct analysis_common common;
    char alpha[CONFIG_STRLEN];
    int test_samples;
    int bn_recalibrate;
};

const struct option_def interpolate_options[] = {
    { "alpha", OPT_STRING, offsetof(struct interpolate_config, alpha), 1, 0, "-1:2:25", NULL, 0,
      "LO:HI:COUNT values of alpha (0 is A, 1 is B)" },
    { "test-samples", OPT_INT, offsetof(struct interpolate_config, test_samples), 0, 2147483647.0,
      "0", NULL, 0, "test samples evaluated at each alpha: the first N (0: all)" },
    ANALYSIS_BN_OPTION(struct interpolate_config, bn_recalibrate,
                       "mix the end points' running statistics like the weights"),
    ANALYSIS_OPTIONS(struct interpolate_config),
    { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL },
};

/* The two ends of the line: B's weights and both ends' batch-norm running
 * statistics, and the point on the line being evaluated. */
struct line_ends {
    size_t n, nb;  /* parameters, running statistics (means then variances) */
    float *wb;     /* (n) B's weights */
    float *x;      /* (n) alpha B + (1 - alpha) A */
    float *bna;    /* (nb + 1) A's running statistics */
    float *bnb;    /* (nb + 1) B's */
};

static void ends_free(struct line_ends *e)
{
    free(e->wb);
    free(e->x);
    free(e->bna);
    free(e->bnb);
}

static int ends_alloc(struct line_ends *e, size_t n, size_t nb)
{
    e->n = n;
    e->nb = nb;
    e->wb = malloc(n * sizeof *e->wb);
    e->x = malloc(n * sizeof *e->x);
    e->bna = malloc((nb + 1) * sizeof *e->bna);
    e->bnb = malloc((nb + 1) * sizeof *e->bnb);
    if (!e->wb || !e->x || !e->bna || !e->bnb) {
        ends_free(e);
        return -1;
    }
    return 0;
}

/* Keeps A's running statistics, reads B's weights and statistics through A's
 * model, then puts A back: its input normalisation is the one the line uses. */
static int ends_load(struct line_ends *e, struct probe *p, const char *b_path, char *err,
                     size_t errlen)
{
    struct model *m = &p->cm.model;
    memcpy(e->bna, m->bn_running, e->nb * sizeof *e->bna);
    /* B through the same model, which checks that every name and shape fits */
    Ddtrain__Checkpoint *msg;
    char sub[DDT_ERRLEN];
    if (ckpt_read_file(b_path, &msg, sub, sizeof sub) ||
        ckpt_restore_model(m, msg, false, sub, sizeof sub)) {
        snprintf(err, errlen, "%s: %s", b_path, sub);
        return -1;
    }
    ckpt_free(msg);
    memcpy(e->wb, m->arena.w, e->n * sizeof *e->wb);
    memcpy(e->bnb, m->bn_running, e->nb * sizeof *e->bnb);
    /* back to A, whose input normalisation the line uses */
    if (ckpt_restore_model(m, p->cm.msg, false, sub, sizeof sub)) {
        snprintf(err, errlen, "%s", sub);
        return -1;
    }
    return 0;
}

/* Puts the model at alpha B + (1 - alpha) A: the weights into e->x, the
 * running statistics in place. */
static void ends_mix(struct line_ends *e, const struct probe *p, struct model *m, double alpha)
{
    for (size_t i = 0; i < e->n; i++)
        e->x[i] = (float)((1.0 - alpha) * p->x0[i] + alpha * e->wb[i]);
    for (size_t i = 0; i < e->nb; i++)
        m->bn_running[i] = (float)((1.0 - alpha) * e->bna[i] + alpha * e->bnb[i]);
    /* beyond the end points a mixed variance can go negative */
    for (size_t i = e->nb / 2; i < e->nb; i++)
        if (m->bn_running[i] < 0.0f)
            m->bn_running[i] = 0.0f;
}

/* The model at alpha: row = { alpha, train loss, train accuracy, test loss,
 * test accuracy }. */
static void line_point(struct probe *p, struct line_ends *e, size_t ntest, double alpha,
                       double row[5])
{
    struct model *m = &p->cm.model;
    ends_mix(e, p, m, alpha);
    probe_bn_recalibrate(p, e->x);
    row[0] = alpha;
    row[1] = probe_loss(p, e->x, &row[2]);
    row[3] = probe_test_loss(p, e->x, ntest, &row[4]);
}

/* The end points' row (alpha 0 or 1): the grid's when it has that alpha
 * (the same bits a new evaluation would give), else a new evaluation. */
static void line_end(struct probe *p, struct line_ends *e, size_t ntest, const double *rows,
                     int count, double alpha, double end[5])
{
    for (int k = 0; k < count; k++)
        if (rows[5 * k] == alpha) {
            memcpy(end, rows + 5 * k, 5 * sizeof *end);
            return;
        }
    line_point(p, e, ntest, alpha, end);
}

/* Warns about every point whose train (else test) loss is not finite or
 * far above both end points'. */
static void line_check(struct probe *p, struct line_ends *e, size_t ntest, const double *rows,
                       int count)
{
    double a[5], b[5];
    line_end(p, e, ntest, rows, count, 0.0, a);
    line_end(p, e, ntest, rows, count, 1.0, b);
    for (int k = 0; k < count; k++) {
        const double *row = rows + 5 * k;
        for (int col = 1; col <= 3; col += 2) {
            double ref = a[col] > b[col] ? a[col] : b[col];
            if (!analysis_suspect(row[col], ref, p->cm.model.classes))
                continue;
            char refname[96], point[48];
            snprintf(refname, sizeof refname, "A's %.4g, B's %.4g", a[col],
                     b[col]);
            snprintf(point, sizeof point, "alpha %.9g", row[0]);
            analysis_warn_suspect("interpolate", point, col == 1 ? "train" : "test", row[col],
                                  refname, p->cm.model.classes, e->nb && p->nrecal == 0);
            break;
        }
    }
}

/* Evaluates count evenly spaced alphas from lo to hi; rank 0 writes the
 * table, then the warnings about suspect points. Returns 0, -1 out of memory,
 * or DDT_EXIT_FAILURE on rank 0 when the table could not be written (said). */
static int walk_line(struct probe *p, struct line_ends *e, const struct interpolate_config *c,
                     char **pos, double lo, double hi, int count)
{
    struct table t;
    char header[2048], err[1024], tests[48] = "", recal[48] = "";
    size_t ntest = (size_t)c->test_samples;
    double *rows = malloc((size_t)count * 5 * sizeof *rows);
    if (!rows)
        return -1;
    if (ntest && ntest < p->cm.test.n)
        snprintf(tests, sizeof tests, " test_samples=%zu", ntest);
    if (p->nrecal)
        snprintf(recal, sizeof recal, " bn_recalibrate=%zu", p->nrecal);
    snprintf(header, sizeof header, "ddtrain interpolate a=%s b=%s alpha=%s samples=%zu%s seed=%llu%s",
             pos[0], pos[1], c->alpha, p->nsubset, tests, (unsigned long long)c->common.seed,
             recal);
    static const char *const cols[] = { "alpha", "train_loss", "train_accuracy", "test_loss",
                                        "test_accuracy" };
    if (p->rank == 0)
        table_begin(&t, c->common.json, header, cols, 5);
    for (int k = 0; k < count; k++) {
        double alpha = count == 1 ? lo : lo + (hi - lo) * k / (count - 1);
        line_point(p, e, ntest, alpha, rows + 5 * k);
        if (p->rank == 0)
            table_row(&t, rows + 5 * k);
    }
    int rc = 0;
    if (p->rank == 0 && table_end(&t, c->common.out, err, sizeof err)) {
        fprintf(stderr, "ddtrain interpolate: %s\n", err);
        rc = DDT_EXIT_FAILURE;
    }
    line_check(p, e, ntest, rows, count);
    free(rows);
    return rc;
}

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
    struct line_ends e;
    if (ends_alloc(&e, p.n, p.cm.model.bn_running_n)) {
        probe_close(&p);
        return analysis_fail("interpolate", "out of memory");
    }
    rc = ends_load(&e, &p, pos[1], err, sizeof err);
    if (rc == 0)
        rc = probe_bn_prepare(&p, (size_t)c.bn_recalibrate, err, sizeof err);
    int written = 0;
    if (rc == 0 && (written = walk_line(&p, &e, &c, pos, lo, hi, count)) < 0) {
        snprintf(err, sizeof err, "out of memory");
        rc = -1;
    }
    ends_free(&e);
    probe_close(&p);
    return rc ? analysis_fail("interpolate", err) : written;
}
