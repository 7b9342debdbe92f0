/* CSV and JSON result tables. */
#include "table.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "metrics.h"

int table_begin(struct table *t, bool json, const char *header, const char *const *cols,
                int ncols)
{
    memset(t, 0, sizeof *t);
    t->mem = open_memstream(&t->buf, &t->len);
    if (!t->mem)
        return -1;
    t->json = json;
    t->cols = cols;
    t->ncols = ncols;
    if (json) {
        fputs("{\"header\":\"", t->mem);
        for (const char *p = header; *p; p++)
            fprintf(t->mem, *p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
        fputs("\",\"columns\":[", t->mem);
        for (int i = 0; i < ncols; i++)
            fprintf(t->mem, "%s\"%s\"", i ? "," : "", cols[i]);
        fputs("],\"rows\":[", t->mem);
    } else {
        fprintf(t->mem, "# %s\n", header);
        for (int i = 0; i < ncols; i++)
            fprintf(t->mem, "%s%s", i ? "," : "", cols[i]);
        fputc('\n', t->mem);
    }
    return 0;
}

void table_row(struct table *t, const double *values)
{
    if (t->json) {
        fprintf(t->mem, "%s[", t->nrows ? "," : "");
        for (int i = 0; i < t->ncols; i++) {
            if (i)
                fputc(',', t->mem);
            metrics_json_number(t->mem, values[i]);
        }
        fputc(']', t->mem);
    } else {
        for (int i = 0; i < t->ncols; i++)
            fprintf(t->mem, i ? ",%.9g" : "%.9g", values[i]);
        fputc('\n', t->mem);
    }
    t->nrows++;
}

int table_end(struct table *t, const char *out_path, char *err, size_t errlen)
{
    if (t->json)
        fputs("]}\n", t->mem);
    fclose(t->mem);
    int rc = 0;
    if (out_path && out_path[0])
        rc = fs_write_atomic(out_path, t->buf, t->len, err, errlen);
    else if (fwrite(t->buf, 1, t->len, stdout) != t->len || fflush(stdout) != 0) {
        snprintf(err, errlen, "cannot write the table to standard output: %s", strerror(errno));
        rc = -1;
    }
    fflush(stdout);
    free(t->buf);
    t->buf = NULL;
    return rc;
}
