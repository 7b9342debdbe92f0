/* Labelled data sets held in their stored type (uint8 pixels stay uint8),
 * normalised per batch into a caller's float buffer. */
#ifndef DDT_DATASET_H
#define DDT_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"

enum sample_type { SAMPLE_U8 = 1, SAMPLE_F32 = 2 };

struct dataset {
    enum sample_type type;
    size_t n;      /* samples */
    size_t dim;    /* features per sample */
    int classes;   /* labels are in [0, classes) */
    void *x;       /* (n, dim) of uint8_t or float */
    int32_t *y;    /* (n) */
};

/* Errors fill the caller's buffer err (errlen bytes, errbuf.h) with a message
 * naming the path and what was wrong; functions return 0 or -1. */

/* One IDX images file (magic 0x0803, or 0x0801 vectors) and one labels file
 * (0x0801), raw or gzip-compressed (decided by content, not name). Checks
 * magic, dimensions, sizes against the file length, equal counts, and every
 * label < classes. Keeps the first max_samples samples (0: all): the rest is
 * read and checked, never held. */
int dataset_load_idx(struct dataset *d, const char *images_path, const char *labels_path,
                     int classes, size_t max_samples, char *err, size_t errlen);

/* CSV with the integer label in the first column and features after it; one
 * sample per line, an optional header line (detected by a non-numeric first
 * field) is skipped. Every row must have the same number of fields. Keeps
 * the first max_samples rows (0: all), checking every row. */
int dataset_load_csv(struct dataset *d, const char *path, int classes, size_t max_samples,
                     char *err, size_t errlen);

/* Resolves a --data value for one split ("train" or "test"):
 * "fashion-mnist" -> /usr/share/datasets/fashion-mnist, a folder -> its
 * {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz], a .csv file -> that file
 * (for the test split, the same name with "train" replaced by "test"),
 * keeping its first max_samples samples (0: all). */
int dataset_load(struct dataset *d, const char *spec, const char *split, int classes,
                 size_t max_samples, char *err, size_t errlen);

void dataset_free(struct dataset *d);

/* Per-feature mean and 1/std over the whole set (population std; features
 * with std below 1e-6 get 1/std = 1 so constant pixels stay 0). */
void dataset_feature_stats(const struct dataset *d, float *mean, float *inv_std);

/* out (B, dim) = (x[idx[i]] - mean) * inv_std; labels (B) = y[idx[i]]. */
void dataset_gather(float *out, int32_t *labels, const struct dataset *d, const uint32_t *idx,
                    int B, const float *mean, const float *inv_std);

#endif
