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

int dataset_load_csv(struct dataset *d, const char *path, int classes, size_t max_samples,
                     char *err)
{
    memset(d, 0, sizeof *d);
    if (classes < 1) {
        snprintf(err, DDT_ERRLEN, "%s: the number of classes must be at least 1, not %d", path,
                 classes);
        return -1;
    }
    FILE *f = regfile_fopen(path, "r", err, DDT_ERRLEN);
    if (!f)
        return -1;
    struct rows r = { 0 };
    char *line = NULL, **fields = NULL;
    float *values = NULL;
    size_t linecap = 0, maxfields = 0, nfields = 0; /* nfields: the first row's, 0 before it */
    long lineno = 0;
    int rc = -1;
    for (;;) {
        errno = 0;
        ssize_t got = getline(&line, &linecap, f);
        if (got < 0) {
            if (ferror(f)) {
                snprintf(err, DDT_ERRLEN, "%s: read error after line %ld: %s", path, lineno,
                         strerror(errno ? errno : EIO));
                goto out;
            }
            break;
        }
        lineno++;
        if (strlen(line) != (size_t)got) {
            snprintf(err, DDT_ERRLEN, "%s line %ld has a NUL byte: not a text CSV file", path, lineno);
            goto out;
        }
        char *text = trim(line);
        if (!*text)
            continue;
        size_t nf = 1;
        for (const char *p = text; *p; p++)
            nf += *p == ',';
        if (nf > maxfields) {
            char **more = realloc(fields, nf * sizeof *fields);
            if (more)
                fields = more;
            float *vmore = realloc(values, nf * sizeof *values);
            if (vmore)
                values = vmore;
            if (!more || !vmore) {
                snprintf(err, DDT_ERRLEN, "%s line %ld: out of memory for %zu fields", path,
                         lineno, nf);
                goto out;
            }
            maxfields = nf;
        }
        split(text, fields, nf);
        bool first = nfields == 0;
        if (first) {
            if (nf < 2) {
                snprintf(err, DDT_ERRLEN, "%s line %ld: no feature columns after the label",
                         path, lineno);
                goto out;
            }
            nfields = nf;
            r.dim = nf - 1;
            /* strtod, not strtol: a label written "1.0" is an error, not a header */
            if (!is_number(fields[0]))
                continue;
        }
        if (nf != nfields) {
            snprintf(err, DDT_ERRLEN, "%s line %ld: %zu fields, expected %zu (a label and %zu features)",
                     path, lineno, nf, nfields, nfields - 1);
            goto out;
        }
        char *end;
        errno = 0;
        long label = strtol(fields[0], &end, 10);
        if (end == fields[0] || *end || errno) {
            snprintf(err, DDT_ERRLEN, "%s line %ld column 1: '%s' is not a whole-number label",
                     path, lineno, fields[0]);
            goto out;
        }
        if (label < 0 || label >= classes) {
            snprintf(err, DDT_ERRLEN, "%s line %ld column 1: label %ld is out of range: allowed 0 to %d (--classes %d)",
                     path, lineno, label, classes - 1, classes);
            goto out;
        }
        for (size_t k = 1; k < nf; k++) {
            if (!parse_feature(fields[k], &values[k - 1])) {
                snprintf(err, DDT_ERRLEN, "%s line %ld column %zu: '%s' is not a finite number",
                         path, lineno, k + 1, fields[k]);
                goto out;
            }
        }
        /* rows past the limit are checked, not kept */
        if ((max_samples == 0 || r.n < max_samples) && rows_push(&r, (int32_t)label, values)) {
            snprintf(err, DDT_ERRLEN, "%s line %ld: out of memory", path, lineno);
            goto out;
        }
    }
    if (r.n == 0) {
        snprintf(err, DDT_ERRLEN, "%s: empty: no data rows", path);
        goto out;
    }
    rows_fit(&r);
    d->type = SAMPLE_F32;
    d->n = r.n;
    d->dim = r.dim;
    d->classes = classes;
    d->x = r.x;
    d->y = r.y;
    r.x = NULL;
    r.y = NULL;
    rc = 0;
out:
    free(r.x);
    free(r.y);
    free(line);
    free(fields);
    free(values);
    fclose(f);
    return rc;
}
