/* CSV data sets: an integer label in the first column, numbers after it. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"

/* Growable float and label arrays. */
struct rows {
    float *x;
    int32_t *y;
    size_t n, cap, dim;
};

static int rows_push(struct rows *r, int32_t label, const float *fields)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 1024;
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
    memcpy(r->x + r->n * r->dim, fields, r->dim * sizeof *fields);
    r->y[r->n++] = label;
    return 0;
}

/* Splits line at commas in place into fields (room for max). */
static void split(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = 0;
        p = comma + 1;
    }
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

int dataset_load_csv(struct dataset *d, const char *path, int classes, char *err)
{
    memset(d, 0, sizeof *d);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, DDT_ERRLEN, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct rows r = { 0 };
    char *line = NULL, **fields = NULL;
    float *values = NULL;
    size_t linecap = 0, maxfields = 0;
    long lineno = 0;
    ssize_t got;
    int rc = -1;
    while ((got = getline(&line, &linecap, f)) > 0) {
        lineno++;
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
                snprintf(err, DDT_ERRLEN, "%s: out of memory", path);
                goto out;
            }
            maxfields = nf;
        }
        split(text, fields, maxfields);
        char *end;
        errno = 0;
        const char *lab = trim(fields[0]);
        long label = strtol(lab, &end, 10);
        bool numeric = end != lab && !*end && !errno;
        if (!numeric && r.n == 0 && r.dim == 0) {
            r.dim = nf - 1; /* a header line */
            if (r.dim == 0) {
                snprintf(err, DDT_ERRLEN, "%s line %ld: a header with only a label column", path, lineno);
                goto out;
            }
            continue;
        }
        if (!numeric) {
            snprintf(err, DDT_ERRLEN, "%s line %ld column 1: '%s' is not a whole-number label", path,
                     lineno, lab);
            goto out;
        }
        if (label < 0 || label >= classes) {
            snprintf(err, DDT_ERRLEN, "%s line %ld column 1: label %ld is out of range: allowed 0 to %d (--classes %d)",
                     path, lineno, label, classes - 1, classes);
            goto out;
        }
        if (r.dim == 0) {
            r.dim = nf - 1;
            if (r.dim == 0) {
                snprintf(err, DDT_ERRLEN, "%s line %ld: no feature columns after the label", path, lineno);
                goto out;
            }
        }
        if (nf - 1 != r.dim) {
            snprintf(err, DDT_ERRLEN, "%s line %ld: %zu fields, expected %zu (a label and %zu features)",
                     path, lineno, nf, r.dim + 1, r.dim);
            goto out;
        }
        for (size_t k = 1; k < nf; k++) {
            const char *v = trim(fields[k]);
            errno = 0;
            double x = strtod(v, &end);
            if (end == v || *end || errno || !isfinite(x)) {
                snprintf(err, DDT_ERRLEN, "%s line %ld column %zu: '%s' is not a finite number", path,
                         lineno, k + 1, v);
                goto out;
            }
            values[k - 1] = (float)x;
        }
        if (rows_push(&r, (int32_t)label, values)) {
            snprintf(err, DDT_ERRLEN, "%s: out of memory at line %ld", path, lineno);
            goto out;
        }
    }
    if (ferror(f)) {
        snprintf(err, DDT_ERRLEN, "%s: read error: %s", path, strerror(errno));
        goto out;
    }
    if (r.n == 0) {
        snprintf(err, DDT_ERRLEN, "%s: empty: no data rows", path);
        goto out;
    }
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
