/* CSV data sets: an integer label in the first column, numbers after it. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "regfile.h"

/* Growable float and label arrays, dim floats per row. */
struct rows {
    float *x;
    int32_t *y;
    size_t n, cap, dim;
};

static int rows_push(struct rows *r, int32_t label, const float *values)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 1024;
        if (cap < r->cap || cap > SIZE_MAX / sizeof(float) / r->dim)
            return -1;
        float *x = realloc(r->x, cap * r->dim * sizeof *x);
        if (!x)
            return -1;
        r->x = x;
        int32_t *y = realloc(r->y, cap * sizeof *y);
        if (!y)
            return -1;
        r->y = y;
        r->cap = cap;
    }
    memcpy(r->x + r->n * r->dim, values, r->dim * sizeof *values);
    r->y[r->n++] = label;
    return 0;
}

/* Gives back the room grown beyond the rows (shrinking cannot fail to keep them). */
static void rows_fit(struct rows *r)
{
    float *x = realloc(r->x, r->n * r->dim * sizeof *x);
    int32_t *y = realloc(r->y, r->n * sizeof *y);
    if (x)
        r->x = x;
    if (y)
        r->y = y;
    r->cap = r->n;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = 0;
    return s;
}

/* Splits line at commas in place into nf trimmed fields. */
static void split(char *line, char **fields, size_t nf)
{
    char *p = line;
    for (size_t k = 0; k < nf; k++) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = 0;
        fields[k] = trim(p);
        p = comma ? comma + 1 : p + strlen(p);
    }
}

static bool is_number(const char *s)
{
    char *end;
    (void)strtod(s, &end);
    return end != s && !*end;
}

/* A finite float; underflow to a tiny value is fine, overflow is not. */
static bool parse_feature(const char *s, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end)
        return false;
    if (errno == ERANGE && fabs(v) > DBL_MIN)
        return false;
    if (!isfinite(v) || fabs(v) > FLT_MAX)
        return false;
    *out = (float)v;
    return true;
}

/* One pass over a CSV file: where we are, and the scratch one row is parsed
 * into (sized for the widest line so far). */
struct csv_reader {
    const char *path;
    int classes;
    long lineno;
    size_t nfields;    /* the first row's, 0 before it */
    size_t maxfields;
    char **fields;     /* (maxfields) */
    float *values;     /* (maxfields): a row's features */
};

static int reader_reserve(struct csv_reader *c, size_t nf, char *err, size_t errlen)
{
    if (nf <= c->maxfields)
        return 0;
    char **more = realloc(c->fields, nf * sizeof *more);
    if (more)
        c->fields = more;
    float *vmore = realloc(c->values, nf * sizeof *vmore);
    if (vmore)
        c->values = vmore;
    if (!more || !vmore) {
        snprintf(err, errlen, "%s line %ld: out of memory for %zu fields", c->path,
                 c->lineno, nf);
        return -1;
    }
    c->maxfields = nf;
    return 0;
}

static int parse_label(const struct csv_reader *c, const char *s, int32_t *label, char *err,
                       size_t errlen)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno) {
        snprintf(err, errlen, "%s line %ld column 1: '%s' is not a whole-number label",
                 c->path, c->lineno, s);
        return -1;
    }
    if (v < 0 || v >= c->classes) {
        snprintf(err, errlen, "%s line %ld column 1: label %ld is out of range: allowed 0 to %d (--classes %d)",
                 c->path, c->lineno, v, c->classes - 1, c->classes);
        return -1;
    }
    *label = (int32_t)v;
    return 0;
}

/* Parses one non-empty trimmed line (split in place) into *label and
 * c->values. Returns 0 for a data row, 1 for the header line, -1 on error. */
static int reader_parse(struct csv_reader *c, char *text, int32_t *label, char *err, size_t errlen)
{
    size_t nf = 1;
    for (const char *p = text; *p; p++)
        nf += *p == ',';
    if (reader_reserve(c, nf, err, errlen))
        return -1;
    split(text, c->fields, nf);
    if (c->nfields == 0) {
        if (nf < 2) {
            snprintf(err, errlen, "%s line %ld: no feature columns after the label",
                     c->path, c->lineno);
            return -1;
        }
        c->nfields = nf;
        /* strtod, not strtol: a label written "1.0" is an error, not a header */
        if (!is_number(c->fields[0]))
            return 1;
    }
    if (nf != c->nfields) {
        snprintf(err, errlen, "%s line %ld: %zu fields, expected %zu (a label and %zu features)",
                 c->path, c->lineno, nf, c->nfields, c->nfields - 1);
        return -1;
    }
    if (parse_label(c, c->fields[0], label, err, errlen))
        return -1;
    for (size_t k = 1; k < nf; k++) {
        if (!parse_feature(c->fields[k], &c->values[k - 1])) {
            snprintf(err, errlen, "%s line %ld column %zu: '%s' is not a finite number",
                     c->path, c->lineno, k + 1, c->fields[k]);
            return -1;
        }
    }
    return 0;
}

/* Reads every line of f into r, keeping the first max_samples rows (0: all). */
static int reader_run(struct csv_reader *c, FILE *f, struct rows *r, size_t max_samples,
                      char *err, size_t errlen)
{
    char *line = NULL;
    size_t linecap = 0;
    int rc = -1;
    for (;;) {
        errno = 0;
        ssize_t got = getline(&line, &linecap, f);
        if (got < 0) {
            if (ferror(f)) {
                snprintf(err, errlen, "%s: read error after line %ld: %s", c->path,
                         c->lineno, strerror(errno ? errno : EIO));
                goto out;
            }
            break;
        }
        c->lineno++;
        if (strlen(line) != (size_t)got) {
            snprintf(err, errlen, "%s line %ld has a NUL byte: not a text CSV file", c->path,
                     c->lineno);
            goto out;
        }
        char *text = trim(line);
        if (!*text)
            continue;
        int32_t label;
        int kind = reader_parse(c, text, &label, err, errlen);
        if (kind < 0)
            goto out;
        r->dim = c->nfields - 1;
        if (kind == 1)
            continue;
        /* rows past the limit are checked, not kept */
        if ((max_samples == 0 || r->n < max_samples) && rows_push(r, label, c->values)) {
            snprintf(err, errlen, "%s line %ld: out of memory", c->path, c->lineno);
            goto out;
        }
    }
    rc = 0;
out:
    free(line);
    return rc;
}

int dataset_load_csv(struct dataset *d, const char *path, int classes, size_t max_samples,
                     char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    if (classes < 1) {
        snprintf(err, errlen, "%s: the number of classes must be at least 1, not %d", path,
                 classes);
        return -1;
    }
    FILE *f = regfile_fopen(path, "r", err, errlen);
    if (!f)
        return -1;
    struct csv_reader c = { .path = path, .classes = classes };
    struct rows r = { 0 };
    int rc = reader_run(&c, f, &r, max_samples, err, errlen);
    if (rc == 0 && r.n == 0) {
        snprintf(err, errlen, "%s: empty: no data rows", path);
        rc = -1;
    }
    if (rc == 0) {
        rows_fit(&r);
        d->type = SAMPLE_F32;
        d->n = r.n;
        d->dim = r.dim;
        d->shape = (struct shape){ (int)r.dim, 1, 1 };
        d->classes = classes;
        d->x = r.x;
        d->y = r.y;
    } else {
        free(r.x);
        free(r.y);
    }
    free(c.fields);
    free(c.values);
    fclose(f);
    return rc;
}
