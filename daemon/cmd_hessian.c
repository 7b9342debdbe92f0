/* `ddtrain hessian CKPT [--top K]`: the largest Hessian eigenvalues of the
 * training loss (batch norm in evaluation mode, a seeded subset), by power
 * iteration with deflation on Hessian-vector products from central
 * differences of gradients computed across ranks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "analysis.h"
#include "commands.h"
#include "exit_status.h"
#include "hessian.h"
#include "probe.h"
#include "table.h"

struct hessian_config {
    struct analysis_common common;
    int top, iters;
    double tol, fd_step;
};

const struct option_def hessian_options[] = {
    { "top", OPT_INT, offsetof(struct hessian_config, top), 1, 100, "1", NULL, 0,
      "how many of the largest eigenvalues" },
    { "iters", OPT_INT, offsetof(struct hessian_config, iters), 1, 100000, "100", NULL, 0,
      "power iterations at most, per eigenvalue" },
    { "tol", OPT_DOUBLE, offsetof(struct hessian_config, tol), 0, 1, "1e-4", NULL, OPTF_POSITIVE,
      "stop when the eigenvalue changes by less than this, relatively" },
    { "fd-step", OPT_DOUBLE, offsetof(struct hessian_config, fd_step), 0, 1, "1e-4", NULL,
      OPTF_POSITIVE, "finite-difference step, relative to max(1, |x|)" },
    ANALYSIS_OPTIONS(struct hessian_config),
    { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL },
};

struct hvp_ctx {
    struct probe *p;
    double step;
    float *work;
};

static double probe_grad(void *user, const float *x, float *grad)
{
    return probe_loss_grad(user, x, grad);
}

static void probe_hvp(void *user, const float *v, float *out)
{
    struct hvp_ctx *h = user;
    hvp_central(probe_grad, h->p, h->p->x0, v, h->p->n, h->step, out, h->work);
}

int hessian_main(int argc, char **argv, int first)
{
    struct hessian_config c;
    char *pos[1], err[1024];
    int rc = analysis_args("hessian", "ddtrain hessian CKPT [--top K] [--iters N] [--tol T] [options]",
                           hessian_options, &c, argc, argv, first, pos, 1);
    if (rc)
        return rc == 1 ? 0 : rc;
    struct probe p;
    if (probe_open(&p, pos[0], (size_t)c.common.samples, c.common.seed, MPI_COMM_WORLD, err,
                   sizeof err))
        return analysis_fail("hessian", err);
    /* the default is HESSIAN_FD_STEP, the table's "1e-4" */
    struct hvp_ctx h = { .p = &p, .step = hessian_fd_radius(c.fd_step, p.x0, p.n) };
    h.work = malloc(3 * p.n * sizeof *h.work);
    float *vecs = malloc((size_t)c.top * p.n * sizeof *vecs);
    float *work = malloc(p.n * sizeof *work);
    struct eigen_result *res = calloc((size_t)c.top, sizeof *res);
    if (!h.work || !vecs || !work || !res) {
        probe_close(&p);
        return analysis_fail("hessian", "out of memory");
    }
    power_iteration(probe_hvp, &h, p.n, c.top, c.iters, c.tol, c.common.seed, res, vecs, work);
    int written = 0;
    if (p.rank == 0) {
        char header[2048];
        snprintf(header, sizeof header,
                 "ddtrain hessian ckpt=%s top=%d iters=%d tol=%g fd_step=%g samples=%zu seed=%llu "
                 "method=power-iteration-with-deflation",
                 pos[0], c.top, c.iters, c.tol, h.step, p.nsubset,
                 (unsigned long long)c.common.seed);
        static const char *const cols[] = { "rank", "eigenvalue", "iterations", "change",
                                            "converged" };
        struct table t;
        table_begin(&t, c.common.json, header, cols, 5);
        for (int k = 0; k < c.top; k++) {
            double row[5] = { k + 1, res[k].value, res[k].iterations, res[k].change,
                              res[k].converged };
            table_row(&t, row);
        }
        if (table_end(&t, c.common.out, err, sizeof err)) {
            fprintf(stderr, "ddtrain hessian: %s\n", err);
            written = DDT_EXIT_FAILURE;
        }
    }
    free(h.work);
    free(vecs);
    free(work);
    free(res);
    probe_close(&p);
    return written;
}
