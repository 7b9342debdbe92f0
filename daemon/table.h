/* Result tables of the analysis commands: CSV with a '#' header line naming
 * the inputs and settings, or one JSON object; to stdout or, atomically, to
 * a file. */
#ifndef DDT_TABLE_H
#define DDT_TABLE_H

#include <stdbool.h>
#include <stdio.h>

struct table {
    FILE *mem;
    char *buf;
    size_t len;
    bool json;
    int ncols;
    const char *const *cols;
    int nrows;
};

int table_begin(struct table *t, bool json, const char *header, const char *const *cols,
                int ncols);
void table_row(struct table *t, const double *values);
/* Writes everything to out_path (atomically) or to stdout when it is empty. */
int table_end(struct table *t, const char *out_path, char *err, size_t errlen);

#endif
