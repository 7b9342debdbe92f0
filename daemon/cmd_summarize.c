/* `ddtrain summarize DIR...`: one row per run directory with the settings
 * that differ between the runs, the final train and test loss and accuracy,
 * the generalization gap, the best test accuracy, steps, wall time, samples, and the
 * sharpness and Hessian results saved beside the run (sharpness*.csv,
 * hessian*.csv, as written by those commands with --out). CSV or markdown. */
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"

#define MAX_RUNS 1024
#define MAX_KEYS 128
#define MAX_EXTRA 8

struct run {
    const char *dir;
    char keys[MAX_KEYS][64], values[MAX_KEYS][CONFIG_STRLEN];
    int nkeys;
    bool has_eval, diverged, has_val;
    double samples;          /* training samples stepped on */
    double step, train_loss, train_acc, test_loss, test_acc, best_test_acc, wall;
    double val_loss, val_acc, best_val_acc; /* NaN without a validation set */
    char extra_name[MAX_EXTRA][64];
    double extra[MAX_EXTRA];
    int nextra;
};

struct summarize_config {
    bool markdown;
    char out[CONFIG_STRLEN];
};

const struct option_def summarize_options[] = {
    { "markdown", OPT_BOOL, offsetof(struct summarize_config, markdown), 0, 0, "false", NULL, 0,
      "a markdown table instead of CSV" },
    { "out", OPT_STRING, offsetof(struct summarize_config, out), 0, 0, "", NULL, 0,
      "write to this file instead of stdout" },
    { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL },
};

/* The number after "name": in a JSON line; NAN when absent or null. */
static double json_number(const char *line, const char *name)
{
    char key[80];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = strstr(line, key);
    if (!p)
        return NAN;
    p += strlen(key);
    if (!strncmp(p, "null", 4))
        return NAN;
    char *end;
    double v = strtod(p, &end);
    return end == p ? NAN : v;
}

static void read_config(struct run *r)
{
    char path[4200], line[1024];
    snprintf(path, sizeof path, "%s/config.txt", r->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f) && r->nkeys < MAX_KEYS) {
        char *eq = strstr(line, " = ");
        if (line[0] == '#' || !eq)
            continue;
        *eq = 0;
        eq[3 + strcspn(eq + 3, "\n")] = 0;
        snprintf(r->keys[r->nkeys], sizeof r->keys[0], "%s", line);
        snprintf(r->values[r->nkeys], sizeof r->values[0], "%s", eq + 3);
        r->nkeys++;
    }
    fclose(f);
}

static void read_metrics(struct run *r)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
    FILE *f = fopen(path, "r");
    r->best_test_acc = r->val_loss = r->val_acc = r->best_val_acc = NAN;
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    double last = 0; /* the previous train line's step */
    while (getline(&line, &cap, f) > 0) {
        if (strstr(line, "\"kind\":\"train\"")) {
            if (!isfinite(json_number(line, "loss")))
                r->diverged = true;
            /* "samples" since --batch-auto; before, the batch of each interval */
            double n = json_number(line, "samples"), s = json_number(line, "step");
            r->samples = isfinite(n) ? n : r->samples + json_number(line, "batch") * (s - last);
            r->step = last = s;
        } else if (strstr(line, "\"kind\":\"eval\"")) {
            r->has_eval = true;
            r->step = json_number(line, "step");
            r->train_loss = json_number(line, "train_loss");
            r->train_acc = json_number(line, "train_accuracy");
            r->test_loss = json_number(line, "test_loss");
            r->test_acc = json_number(line, "test_accuracy");
            r->val_loss = json_number(line, "val_loss");
            r->val_acc = json_number(line, "val_accuracy");
            if (!isnan(r->val_loss))
                r->has_val = true;
            if (!(r->best_val_acc >= r->val_acc))
                r->best_val_acc = r->val_acc;
            r->wall = json_number(line, "wall_seconds");
            if (!(r->best_test_acc >= r->test_acc))
                r->best_test_acc = r->test_acc;
            if (!isfinite(r->train_loss))
                r->diverged = true;
        }
    }
    free(line);
    fclose(f);
}

/* The last number of the last data line of a CSV written by an analysis
 * command (or the first eigenvalue, for hessian files). */
static void read_results(struct run *r)
{
    DIR *d = opendir(r->dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && r->nextra < MAX_EXTRA) {
        bool sharp = !strncmp(e->d_name, "sharpness", 9), hess = !strncmp(e->d_name, "hessian", 7);
        size_t len = strlen(e->d_name);
        if ((!sharp && !hess) || len < 4 || strcmp(e->d_name + len - 4, ".csv"))
            continue;
        char path[4200], line[4096], last[4096] = "";
        snprintf(path, sizeof path, "%s/%s", r->dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        int rows = 0;
        while (fgets(line, sizeof line, f)) {
            if (line[0] == '#' || (line[0] >= 'a' && line[0] <= 'z'))
                continue;
            if (hess && rows > 0)
                continue; /* the first row is the top eigenvalue */
            snprintf(last, sizeof last, "%s", line);
            rows++;
        }
        fclose(f);
        if (!last[0])
            continue;
        const char *field = hess ? strchr(last, ',') : strrchr(last, ',');
        snprintf(r->extra_name[r->nextra], sizeof r->extra_name[0], "%.*s", (int)(len - 4),
                 e->d_name);
        r->extra[r->nextra++] = field ? strtod(field + 1, NULL) : NAN;
    }
    closedir(d);
}

static const char *value_of(const struct run *r, const char *key)
{
    for (int i = 0; i < r->nkeys; i++)
        if (!strcmp(r->keys[i], key))
            return r->values[i];
    return "";
}

/* Keys whose values differ between runs, minus bookkeeping ones. */
static int swept_keys(struct run *runs, int n, const char **out)
{
    static const char *skip[] = { "run-dir", "resume", "extend", "quiet", "max-steps", NULL };
    int count = 0;
    for (int k = 0; k < runs[0].nkeys && count < MAX_KEYS; k++) {
        const char *key = runs[0].keys[k];
        bool skipped = false;
        for (int s = 0; skip[s]; s++)
            skipped |= !strcmp(key, skip[s]);
        if (skipped)
            continue;
        for (int i = 1; i < n; i++) {
            if (strcmp(value_of(&runs[i], key), runs[0].values[k]) != 0) {
                out[count++] = key;
                break;
            }
        }
    }
    return count;
}

static void cell(FILE *f, bool md, int col, const char *text)
{
    if (md || !strpbrk(text, ",\"\n")) {
        fprintf(f, md ? (col ? " %s |" : "| %s |") : (col ? ",%s" : "%s"), text);
        return;
    }
    /* RFC 4180: quote the field, double its quotes */
    fputs(col ? ",\"" : "\"", f);
    for (const char *p = text; *p; p++)
        fputs(*p == '"' ? "\"\"" : (char[]){ *p, 0 }, f);
    fputc('"', f);
}

static void num_cell(FILE *f, bool md, int col, double v)
{
    char buf[64];
    if (isfinite(v))
        snprintf(buf, sizeof buf, "%.6g", v);
    else
        snprintf(buf, sizeof buf, "%s", md ? "-" : "");
    cell(f, md, col, buf);
}

/* Reads each named directory that holds a config.txt into runs[0..n) and
 * says which were skipped; returns n. */
static int read_runs(struct run *runs, char **dirs, int ndirs)
{
    int n = 0;
    for (int i = 0; i < ndirs; i++) {
        struct run *r = &runs[n];
        r->dir = dirs[i];
        read_config(r);
        if (r->nkeys == 0) {
            fprintf(stderr, "ddtrain summarize: %s has no config.txt: not a run directory (skipped)\n",
                    dirs[i]);
            continue;
        }
        read_metrics(r);
        read_results(r);
        n++;
    }
    return n;
}

/* The column names (and markdown's rule under them); the result columns are
 * the first run's. With val, the validation columns come before the test
 * ones: a tuning study reads (and chooses by) validation, test last. */
static void write_header(FILE *f, bool md, const struct run *first, const char **swept, int ns,
                         bool val)
{
    static const char *const vals[] = { "val_loss", "val_accuracy", "best_val_accuracy" };
    static const char *const fixed[] = { "status", "steps", "train_loss", "train_accuracy",
                                          "test_loss", "test_accuracy", "gap", "best_test_accuracy",
                                          "wall_seconds", "samples" };
    int col = 0;
    cell(f, md, col++, "run");
    for (int k = 0; k < ns; k++)
        cell(f, md, col++, swept[k]);
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++) {
        if (val && !strcmp(fixed[k], "test_loss"))
            for (size_t v = 0; v < sizeof vals / sizeof vals[0]; v++)
                cell(f, md, col++, vals[v]);
        cell(f, md, col++, fixed[k]);
    }
    for (int k = 0; k < first->nextra; k++)
        cell(f, md, col++, first->extra_name[k]);
    fputc('\n', f);
    if (md) {
        for (int k = 0; k < col; k++)
            fputs(k ? "---|" : "|---|", f);
        fputc('\n', f);
    }
}

/* One run's row; a result the first run has and this one lacks is empty. */
static void write_row(FILE *f, bool md, const struct run *r, const struct run *first,
                      const char **swept, int ns, bool val)
{
    int col = 0;
    cell(f, md, col++, r->dir);
    for (int k = 0; k < ns; k++)
        cell(f, md, col++, value_of(r, swept[k]));
    cell(f, md, col++, r->diverged ? "diverged" : r->has_eval ? "done" : "no-eval");
    num_cell(f, md, col++, r->step);
    num_cell(f, md, col++, r->train_loss);
    num_cell(f, md, col++, r->train_acc);
    if (val) {
        num_cell(f, md, col++, r->val_loss);
        num_cell(f, md, col++, r->val_acc);
        num_cell(f, md, col++, r->best_val_acc);
    }
    num_cell(f, md, col++, r->test_loss);
    num_cell(f, md, col++, r->test_acc);
    num_cell(f, md, col++, r->test_loss - r->train_loss);
    num_cell(f, md, col++, r->best_test_acc);
    num_cell(f, md, col++, r->wall);
    num_cell(f, md, col++, r->samples);
    for (int k = 0; k < first->nextra; k++) {
        double v = NAN;
        for (int j = 0; j < r->nextra; j++)
            if (!strcmp(r->extra_name[j], first->extra_name[k]))
                v = r->extra[j];
        num_cell(f, md, col++, v);
    }
    fputc('\n', f);
}

/* 0 with the options and the run directories, 1 after printing the help,
 * 2 after saying what is wrong with the arguments. */
static int parse_args(struct summarize_config *c, int argc, char **argv, int first, char **pos,
                      int *npos)
{
    char err[DDT_ERRLEN];
    config_defaults(summarize_options, c);
    int rc = config_parse_args(summarize_options, c, argc, argv, first, pos, MAX_RUNS, npos, err,
                               sizeof err);
    if (rc == 1) {
        printf("usage: ddtrain summarize RUN_DIR... [--markdown] [--out FILE]\n\noptions:\n");
        config_help(summarize_options, stdout);
        return 1;
    }
    if (rc == 0 && *npos == 0) {
        snprintf(err, sizeof err, "name one or more run directories");
        rc = -1;
    }
    if (rc) {
        fprintf(stderr, "ddtrain summarize: %s\n", err);
        return 2;
    }
    return 0;
}

int summarize_main(int argc, char **argv, int first)
{
    struct summarize_config c;
    char *pos[MAX_RUNS];
    int npos;
    int rc = parse_args(&c, argc, argv, first, pos, &npos);
    if (rc)
        return rc == 1 ? 0 : 2;
    struct run *runs = calloc((size_t)npos, sizeof *runs);
    if (!runs) {
        fprintf(stderr, "ddtrain summarize: out of memory\n");
        return 1;
    }
    int n = read_runs(runs, pos, npos);
    if (n == 0) {
        free(runs);
        fprintf(stderr, "ddtrain summarize: no run directories among the arguments\n");
        return 2;
    }
    const char *swept[MAX_KEYS];
    int ns = swept_keys(runs, n, swept);
    FILE *f = stdout;
    if (c.out[0] && !(f = fopen(c.out, "w"))) {
        fprintf(stderr, "ddtrain summarize: cannot write %s\n", c.out);
        free(runs);
        return 1;
    }
    bool val = false;
    for (int i = 0; i < n; i++)
        val = val || runs[i].has_val;
    write_header(f, c.markdown, &runs[0], swept, ns, val);
    for (int i = 0; i < n; i++)
        write_row(f, c.markdown, &runs[i], &runs[0], swept, ns, val);
    if (f != stdout)
        fclose(f);
    free(runs);
    return 0;
}
