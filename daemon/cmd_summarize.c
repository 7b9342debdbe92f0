/* `ddtrain summarize DIR...`: one row per run directory with the settings
 * that differ between the runs, the final train and test loss and accuracy,
 * the generalization gap, the best test accuracy, steps, wall time, samples, and the
 * sharpness and Hessian results saved beside the run (sharpness*.csv,
 * hessian*.csv, as written by those commands with --out). CSV or markdown.
 * A DIR that is not a run stands for the runs one or two levels inside it (a
 * sweep's folder); the rows are ranked best first by validation accuracy
 * when a run has a validation set, else by test accuracy (--rank-by). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "config.h"

#define MAX_RUNS 1024
#define MAX_KEYS 128
#define MAX_EXTRA 8

struct run {
    char *dir; /* owned */
    int order; /* position in the listing, the last tie-break of a sort */
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
    char rank_by[CONFIG_STRLEN];
};

const struct option_def summarize_options[] = {
    { "markdown", OPT_BOOL, offsetof(struct summarize_config, markdown), 0, 0, "false", NULL, 0,
      "a markdown table instead of CSV" },
    { "out", OPT_STRING, offsetof(struct summarize_config, out), 0, 0, "", NULL, 0,
      "write to this file instead of stdout" },
    { "rank-by", OPT_STRING, offsetof(struct summarize_config, rank_by), 0, 0, "auto", NULL, 0,
      "order of the rows, best first: a result column (accuracies high first, anything else "
      "low first; diverged runs and missing values last), auto (val_accuracy when a run has a "
      "validation set, else test_accuracy) or none (by the differing settings, numbers in "
      "numeric order)" },
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

/* The runs found so far, in the order they were found. */
struct run_list {
    struct run *runs;
    int n, cap;
};

static bool is_run_dir(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.txt", dir);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Reads the run in dir into a new row; -1 when out of memory. */
static int add_run(struct run_list *l, const char *dir)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        struct run *grown = realloc(l->runs, (size_t)cap * sizeof *grown);
        if (!grown)
            return -1;
        l->runs = grown;
        l->cap = cap;
    }
    struct run *r = &l->runs[l->n];
    memset(r, 0, sizeof *r);
    if (!(r->dir = strdup(dir)))
        return -1;
    read_config(r);
    read_metrics(r);
    read_results(r);
    l->n++;
    return 0;
}

static int visible(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* The runs dir stands for: itself when it is one, else each sub-directory
 * that is one or (depth permitting) holds some, in name order: a sweep's
 * folder holds its points, a folder of sweeps their points one level
 * further down. A run's own folders are never searched. -1 when out of
 * memory. */
static int collect_runs(struct run_list *l, const char *dir, int depth)
{
    if (is_run_dir(dir))
        return add_run(l, dir);
    struct dirent **names;
    int k = depth > 0 ? scandir(dir, &names, visible, alphasort) : -1;
    if (k < 0)
        return 0;
    int rc = 0;
    for (int i = 0; i < k; i++) {
        char path[4200];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (rc == 0 && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            rc = collect_runs(l, path, depth - 1);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Every run the arguments name, directly or as folders holding runs; says
 * which arguments hold none. -1 when out of memory. */
static int read_runs(struct run_list *l, char **dirs, int ndirs)
{
    for (int i = 0; i < ndirs; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", dirs[i]);
        for (size_t len = strlen(dir); len > 1 && dir[len - 1] == '/'; len--)
            dir[len - 1] = 0; /* "sweep/" lists "sweep/a", not "sweep//a" */
        int before = l->n;
        if (collect_runs(l, dir, 2))
            return -1;
        if (l->n == before)
            fprintf(stderr,
                    "ddtrain summarize: %s is not a run directory (no config.txt) and holds none "
                    "one or two levels down (skipped)\n",
                    dirs[i]);
    }
    return 0;
}

static void free_runs(struct run_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->runs[i].dir);
    free(l->runs);
}

/* A result column of one run by its header name, NAN when it has none. */
static double run_metric(const struct run *r, const char *name)
{
    const struct {
        const char *name;
        double value;
    } cols[] = {
        { "steps", r->step },
        { "train_loss", r->train_loss },
        { "train_accuracy", r->train_acc },
        { "val_loss", r->val_loss },
        { "val_accuracy", r->val_acc },
        { "best_val_accuracy", r->best_val_acc },
        { "test_loss", r->test_loss },
        { "test_accuracy", r->test_acc },
        { "gap", r->test_loss - r->train_loss },
        { "best_test_accuracy", r->best_test_acc },
        { "wall_seconds", r->wall },
    };
    for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++)
        if (!strcmp(cols[k].name, name))
            return r->has_eval ? cols[k].value : NAN;
    for (int k = 0; k < r->nextra; k++)
        if (!strcmp(r->extra_name[k], name))
            return r->extra[k];
    return NAN;
}

/* Whether name is a result column of some run (a run without evaluations
 * still has the fixed columns). */
static bool is_metric(const struct run_list *l, const char *name)
{
    static const char *const fixed[] = { "steps", "train_loss", "train_accuracy", "val_loss",
                                         "val_accuracy", "best_val_accuracy", "test_loss",
                                         "test_accuracy", "gap", "best_test_accuracy",
                                         "wall_seconds" };
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++)
        if (!strcmp(fixed[k], name))
            return true;
    for (int i = 0; i < l->n; i++)
        for (int k = 0; k < l->runs[i].nextra; k++)
            if (!strcmp(l->runs[i].extra_name[k], name))
                return true;
    return false;
}

/* Two settings: as numbers when both are numbers (256 before 1024, 1e-3
 * before 0.01), else as text. */
static int value_cmp(const char *a, const char *b)
{
    char *ea, *eb;
    double x = strtod(a, &ea), y = strtod(b, &eb);
    if (ea != a && !*ea && eb != b && !*eb && x != y)
        return x < y ? -1 : 1;
    return strcmp(a, b);
}

/* What orders the rows: the metric (NULL: none), the settings that differ. */
struct row_order {
    const char *metric;
    const char **swept;
    int ns;
};

/* Best first by the metric (accuracies high first, the rest low first;
 * diverged runs and missing values last), then by the settings, then by
 * path. */
static int row_cmp(const struct run *a, const struct run *b, const struct row_order *o)
{
    if (o->metric) {
        double x = a->diverged ? NAN : run_metric(a, o->metric);
        double y = b->diverged ? NAN : run_metric(b, o->metric);
        if (isnan(x) != isnan(y))
            return isnan(x) ? 1 : -1;
        bool high = strstr(o->metric, "accuracy") != NULL;
        if (!isnan(x) && x != y)
            return (x > y) == high ? -1 : 1;
    }
    for (int k = 0; k < o->ns; k++) {
        int c = value_cmp(value_of(a, o->swept[k]), value_of(b, o->swept[k]));
        if (c)
            return c;
    }
    return strcmp(a->dir, b->dir);
}

/* idx[0..n) in row order; insertion sort, stable and cheap for a table's
 * few hundred rows, moving indices rather than the large run records. */
static void sort_rows(int *idx, const struct run_list *l, const struct row_order *o)
{
    for (int i = 0; i < l->n; i++) {
        int j = i, v = i;
        while (j > 0 && row_cmp(&l->runs[idx[j - 1]], &l->runs[v], o) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
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
        printf("usage: ddtrain summarize RUN_DIR|FOLDER... [--markdown] [--rank-by COLUMN] "
               "[--out FILE]\n\noptions:\n");
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

/* The metric --rank-by names (NULL for none), or an error naming it. */
static int rank_metric(const struct summarize_config *c, const struct run_list *l, bool val,
                       const char **metric)
{
    *metric = NULL;
    if (!strcmp(c->rank_by, "none"))
        return 0;
    if (!strcmp(c->rank_by, "auto")) {
        *metric = val ? "val_accuracy" : "test_accuracy";
        return 0;
    }
    if (is_metric(l, c->rank_by)) {
        *metric = c->rank_by;
        return 0;
    }
    fprintf(stderr,
            "ddtrain summarize: --rank-by: '%s' is not valid: allowed auto, none or a result "
            "column (steps, train_loss, train_accuracy, val_loss, val_accuracy, "
            "best_val_accuracy, test_loss, test_accuracy, gap, best_test_accuracy, "
            "wall_seconds, or a sharpness*/hessian* column of the runs)\n",
            c->rank_by);
    return -1;
}

/* The table in row order, to c->out or stdout; 0 or 1 when it cannot be
 * written. */
static int write_table(const struct summarize_config *c, const struct run_list *l,
                       const int *idx, const char **swept, int ns, bool val)
{
    FILE *f = stdout;
    if (c->out[0] && !(f = fopen(c->out, "w"))) {
        fprintf(stderr, "ddtrain summarize: cannot write %s: %s\n", c->out, strerror(errno));
        return 1;
    }
    write_header(f, c->markdown, &l->runs[0], swept, ns, val);
    for (int i = 0; i < l->n; i++)
        write_row(f, c->markdown, &l->runs[idx[i]], &l->runs[0], swept, ns, val);
    if (f != stdout && fclose(f)) {
        fprintf(stderr, "ddtrain summarize: cannot write %s: %s\n", c->out, strerror(errno));
        return 1;
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
    struct run_list l = { 0 };
    int *idx = NULL;
    if (read_runs(&l, pos, npos) || (l.n && !(idx = malloc((size_t)l.n * sizeof *idx)))) {
        fprintf(stderr, "ddtrain summarize: out of memory\n");
        rc = 1;
        goto out;
    }
    if (l.n == 0) {
        fprintf(stderr, "ddtrain summarize: no run directories among the arguments\n");
        rc = 2;
        goto out;
    }
    const char *swept[MAX_KEYS];
    int ns = swept_keys(l.runs, l.n, swept);
    bool val = false;
    for (int i = 0; i < l.n; i++)
        val = val || l.runs[i].has_val;
    struct row_order order = { NULL, swept, ns };
    if (rank_metric(&c, &l, val, &order.metric)) {
        rc = 2;
        goto out;
    }
    sort_rows(idx, &l, &order);
    rc = write_table(&c, &l, idx, swept, ns, val);
out:
    free(idx);
    free_runs(&l);
    return rc;
}
