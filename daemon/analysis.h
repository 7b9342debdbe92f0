/* What the analysis commands (sharpness, hessian, interpolate, landscape)
 * share: the options that say which loss they measure and where results go,
 * and the argument parsing around them. */
#ifndef DDT_ANALYSIS_H
#define DDT_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct analysis_common {
    int samples;      /* training samples of the loss (seeded subset; 0: all) */
    uint64_t seed;
    char out[CONFIG_STRLEN];
    bool json;
};

#define ANALYSIS_OPTIONS(type)                                                                 \
    { "samples", OPT_INT, offsetof(type, common.samples), 0, 2147483647.0, "10000", NULL, 0, \
      "training samples the loss is measured on: a seeded subset (0: all)" },                 \
    { "seed", OPT_U64, offsetof(type, common.seed), 0, 1.8e19, "1", NULL, 0,                 \
      "seed of the subset and of random directions" },                                       \
    { "out", OPT_STRING, offsetof(type, common.out), 0, 0, "", NULL, 0,                      \
      "write the table to this file (atomically) instead of stdout" },                      \
    { "json", OPT_BOOL, offsetof(type, common.json), 0, 0, "false", NULL, 0,                 \
      "JSON instead of CSV" }

/* --bn-recalibrate N of interpolate and landscape (field: an int; off: what
 * 0 does instead). The default 2048 is four chunks of 512 samples, which
 * puts each channel's variance within a few percent (sqrt(2 / 2048) = 3%
 * for normal activations), cheap beside the loss's default 10000 samples. */
#define ANALYSIS_BN_OPTION(type, field, off)                                                      \
    { "bn-recalibrate", OPT_INT, offsetof(type, field), 0, 2147483647.0, "2048", NULL, 0,    \
      "with batch norm, recompute its running statistics at each point from the first N "    \
      "samples of the seeded subset in training mode (0: " off ")" }

/* A loss this many times the reference (the end points', the centre's, or a
 * uniform guess's ln K if larger) is flagged as numerically suspect. */
#define ANALYSIS_SUSPECT_FACTOR 10.0

/* Whether loss is numerically suspect beside ref (the larger of the
 * reference points' losses) for a model of `classes` outputs: not finite,
 * or ANALYSIS_SUSPECT_FACTOR times above max(ref, ln classes). */
bool analysis_suspect(double loss, double ref, int classes);

/* Rank 0 prints "ddtrain CMD: warning: POINT: WHAT loss L is numerically
 * suspect (over 10 times the largest of REFNAME, a uniform guess's ln classes)" and,
 * when the batch-norm statistics were not recalibrated, the option that
 * would. */
void analysis_warn_suspect(const char *cmd, const char *point, const char *what, double loss,
                           const char *refname, int classes, bool bn_mixed);

/* Parses a command's arguments into target (every rank does the same) and
 * expects exactly npos positional arguments (checkpoints). Prints usage for
 * --help on rank 0. Returns 0 to go on, 1 after --help, 2 on error (said). */
int analysis_args(const char *cmd, const char *usage, const struct option_def *table,
                  void *target, int argc, char **argv, int first, char **pos, int npos);

/* "ddtrain CMD" errors: rank 0 says it; returns 2. */
int analysis_fail(const char *cmd, const char *err);

#endif
