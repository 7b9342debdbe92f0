/* Argument handling shared by the analysis commands. */
#include "analysis.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>

int analysis_fail(const char *cmd, const char *err)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0)
        fprintf(stderr, "ddtrain %s: %s\n", cmd, err);
    return 2;
}

int analysis_args(const char *cmd, const char *usage, const struct option_def *table,
                  void *target, int argc, char **argv, int first, char **pos, int npos)
{
    int rank, got;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char err[DDT_ERRLEN];
    config_defaults(table, target);
    int rc = config_parse_args(table, target, argc, argv, first, pos, npos, &got, err, sizeof err);
    if (rc == 1) {
        if (rank == 0) {
            printf("usage: %s\n\noptions:\n", usage);
            config_help(table, stdout);
        }
        return 1;
    }
    if (rc == 0 && got != npos) {
        snprintf(err, sizeof err, "expected %d checkpoint%s: usage: %s", npos, npos == 1 ? "" : "s",
                 usage);
        rc = -1;
    }
    return rc ? analysis_fail(cmd, err) : 0;
}

bool analysis_suspect(double loss, double ref, int classes)
{
    double base = classes > 1 ? log((double)classes) : 1.0;
    if (isfinite(ref) && ref > base)
        base = ref;
    return !isfinite(loss) || loss > ANALYSIS_SUSPECT_FACTOR * base;
}

void analysis_warn_suspect(const char *cmd, const char *point, const char *what, double loss,
                           const char *refname, int classes, bool bn_mixed)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank != 0)
        return;
    char why[128];
    if (isfinite(loss))
        snprintf(why, sizeof why, "over %g times the largest of %s, a uniform guess's %.4g", ANALYSIS_SUSPECT_FACTOR,
                 refname, classes > 1 ? log((double)classes) : 1.0);
    else
        snprintf(why, sizeof why, "not finite");
    fprintf(stderr, "ddtrain %s: warning: %s: %s loss %.9g is numerically suspect (%s)%s\n", cmd,
            point, what, loss, why,
            bn_mixed ? "; its batch-norm statistics are not recalibrated (--bn-recalibrate)" : "");
}
