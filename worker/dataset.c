/* Resolving --data, per-feature statistics and per-batch normalisation. */
#include "dataset.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sampler.h"
#include "simd.h"

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Features per block in dataset_feature_stats: 4 KiB of accumulators on the
 * stack, and each pass reads a few cache lines of every row. */
#define STATS_BLOCK 256

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* DIR/NAME.gz or DIR/NAME, whichever exists (the .gz first). */
static int find_idx(char *out, size_t outlen, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, outlen, "%s/%s.gz", dir, name) >= outlen)
        return -1;
    if (exists(out))
        return 0;
    snprintf(out, outlen, "%s/%s", dir, name);
    return exists(out) ? 0 : -1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int load_csv_split(struct dataset *d, const char *path, const char *split, int classes,
                          size_t max_samples, char *err, size_t errlen)
{
    if (strcmp(split, "test") != 0)
        return dataset_load_csv(d, path, classes, max_samples, err, errlen);
    /* only the file name: a folder called train/ must not become test/ */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *at = NULL;
    for (const char *p = strstr(base, "train"); p; p = strstr(p + 1, "train"))
        at = p;
    if (!at) {
        snprintf(err, errlen, "%s: the file name has no 'train' to replace by 'test' to find the test split: name the test file with --test-data",
                 path);
        return -1;
    }
    size_t head = (size_t)(at - path);
    char *test = malloc(strlen(path) + 1); /* "test" is shorter than "train" */
    if (!test) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    memcpy(test, path, head);
    strcpy(test + head, "test");
    strcpy(test + head + 4, at + 5);
    int rc = dataset_load_csv(d, test, classes, max_samples, err, errlen);
    free(test);
    return rc;
}

/* The readers that predate CIFAR: CSV files and IDX folders. */
static int load_flat_or_idx(struct dataset *d, const char *spec, const char *split, int classes,
                            size_t max_samples, char *err, size_t errlen)
{
    if (ends_with(spec, ".csv"))
        return load_csv_split(d, spec, split, classes, max_samples, err, errlen);
    const char *dir = spec;
    if (!strcmp(spec, "fashion-mnist")) {
        dir = FASHION_MNIST_DIR;
        if (!exists(dir)) {
            snprintf(err, errlen, "%s: %s: install Debian's dataset-fashion-mnist package (or run launch/setup) for --data fashion-mnist",
                     dir, strerror(errno));
            return -1;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: neither a folder of IDX files nor a .csv file", dir);
        return -1;
    }
    const char *prefix = strcmp(split, "train") ? "t10k" : "train";
    char iname[64], lname[64], ipath[4200], lpath[4200];
    snprintf(iname, sizeof iname, "%s-images-idx3-ubyte", prefix);
    snprintf(lname, sizeof lname, "%s-labels-idx1-ubyte", prefix);
    const char *missing = find_idx(ipath, sizeof ipath, dir, iname)   ? iname
                          : find_idx(lpath, sizeof lpath, dir, lname) ? lname
                                                                      : NULL;
    if (missing) {
        snprintf(err, errlen, "%s: no %s[.gz] in that folder: the %s split needs %s[.gz] and %s[.gz]",
                 dir, missing, split, iname, lname);
        return -1;
    }
    return dataset_load_idx(d, ipath, lpath, classes, max_samples, err, errlen);
}

/* "cifar10:DIR" or "cifar100:DIR": the folder, and *hundred; else NULL. */
static const char *cifar_dir(const char *spec, bool *hundred)
{
    *hundred = !strncmp(spec, "cifar100:", 9);
    if (*hundred)
        return spec + 9;
    return strncmp(spec, "cifar10:", 8) ? NULL : spec + 8;
}

int dataset_default_classes(const char *spec, enum dataset_label label)
{
    bool hundred;
    if (cifar_dir(spec, &hundred) && hundred)
        return label == LABEL_COARSE ? 20 : 100;
    return 10;
}

int dataset_load(struct dataset *d, const char *spec, const char *split, int classes,
                 size_t max_samples, char *err, size_t errlen)
{
    return dataset_load_labelled(d, spec, split, LABEL_FINE, classes, max_samples, err, errlen);
}

int dataset_load_labelled(struct dataset *d, const char *spec, const char *split,
                          enum dataset_label label, int classes, size_t max_samples, char *err,
                          size_t errlen)
{
    memset(d, 0, sizeof *d);
    if (strcmp(split, "train") != 0 && strcmp(split, "test") != 0) {
        snprintf(err, errlen, "%s: unknown split '%s': expected train or test", spec, split);
        return -1;
    }
    bool hundred;
    const char *cifar = cifar_dir(spec, &hundred);
    if (label == LABEL_COARSE && !(cifar && hundred)) {
        snprintf(err, errlen, "%s: --label coarse: only cifar100:DIR data has coarse labels", spec);
        return -1;
    }
    if (cifar)
        return dataset_load_cifar(d, cifar, hundred, split, label, classes, max_samples, err,
                                  errlen);
    return load_flat_or_idx(d, spec, split, classes, max_samples, err, errlen);
}

int dataset_load_test(struct dataset *d, const char *spec, enum dataset_label label, int classes,
                      size_t max_samples, char *err, size_t errlen)
{
    /* a .csv file's "train" split is the file itself (load_csv_split) */
    const char *split = ends_with(spec, ".csv") ? "train" : "test";
    return dataset_load_labelled(d, spec, split, label, classes, max_samples, err, errlen);
}

void dataset_free(struct dataset *d)
{
    if (!d->view) {
        free(d->x);
        free(d->y);
    }
    memset(d, 0, sizeof *d);
}

/* dest[i] = where row i goes: kept rows first, held rows after them, each
 * in their original order. rows must be distinct and below n. */
static int hold_out_destinations(uint32_t *dest, size_t n, const uint32_t *rows, size_t k)
{
    for (size_t i = 0; i < n; i++)
        dest[i] = 0;
    for (size_t j = 0; j < k; j++) {
        if (rows[j] >= n || dest[rows[j]])
            return -1;
        dest[rows[j]] = 1;
    }
    size_t kept = 0, held = n - k;
    for (size_t i = 0; i < n; i++)
        dest[i] = dest[i] ? (uint32_t)held++ : (uint32_t)kept++;
    return 0;
}

int dataset_hold_out(struct dataset *d, struct dataset *held, const uint32_t *rows, size_t k,
                     char *err, size_t errlen)
{
    size_t n = d->n, elem = d->type == SAMPLE_U8 ? 1 : sizeof(float);
    size_t row = d->dim * elem;
    if (k == 0 || k >= n || n > UINT32_MAX) {
        snprintf(err, errlen, "cannot hold %zu of %zu samples out", k, n);
        return -1;
    }
    uint32_t *dest = malloc(n * sizeof *dest);
    unsigned char *tmp = malloc(row ? row : 1);
    if (!dest || !tmp || hold_out_destinations(dest, n, rows, k)) {
        snprintf(err, errlen, dest && tmp ? "the rows to hold out are not distinct rows of the set"
                                          : "out of memory for the validation split's row map");
        free(dest);
        free(tmp);
        return -1;
    }
    /* cycle sort: each swap puts the row at i's destination in place, so at
     * most n - 1 swaps and one spare row of memory */
    unsigned char *x = d->x;
    for (size_t i = 0; i < n; i++) {
        while (dest[i] != i) {
            size_t j = dest[i];
            memcpy(tmp, x + j * row, row);
            memcpy(x + j * row, x + i * row, row);
            memcpy(x + i * row, tmp, row);
            int32_t y = d->y[j];
            d->y[j] = d->y[i];
            d->y[i] = y;
            dest[i] = dest[j];
            dest[j] = (uint32_t)j;
        }
    }
    free(dest);
    free(tmp);
    *held = *d;
    held->n = k;
    held->x = x + (n - k) * row;
    held->y = d->y + (n - k);
    held->view = true;
    d->n = n - k;
    return 0;
}

/* Adds row[f] (or its squared deviation from mean[f]) into acc for one block. */
static void stats_add(double *acc, const struct dataset *d, size_t i, size_t f0, size_t nf,
                      const double *mean)
{
    size_t at = i * d->dim + f0;
    if (d->type == SAMPLE_U8) {
        const uint8_t *x = (const uint8_t *)d->x + at;
        if (mean)
            for (size_t f = 0; f < nf; f++)
                acc[f] += ((double)x[f] - mean[f]) * ((double)x[f] - mean[f]);
        else
            for (size_t f = 0; f < nf; f++)
                acc[f] += x[f];
    } else {
        const float *x = (const float *)d->x + at;
        if (mean)
            for (size_t f = 0; f < nf; f++)
                acc[f] += ((double)x[f] - mean[f]) * ((double)x[f] - mean[f]);
        else
            for (size_t f = 0; f < nf; f++)
                acc[f] += x[f];
    }
}

void dataset_feature_stats(const struct dataset *d, float *mean, float *inv_std)
{
    /* two passes (mean, then squared deviations) because sum(x^2)/n - mean^2
     * cancels catastrophically for float features far from zero; blocks of
     * features keep the accumulators on the stack, so nothing can fail */
    double m[STATS_BLOCK], acc[STATS_BLOCK];
    for (size_t f0 = 0; f0 < d->dim; f0 += STATS_BLOCK) {
        size_t nf = d->dim - f0 < STATS_BLOCK ? d->dim - f0 : STATS_BLOCK;
        memset(acc, 0, sizeof acc);
        for (size_t i = 0; i < d->n; i++)
            stats_add(acc, d, i, f0, nf, NULL);
        for (size_t f = 0; f < nf; f++)
            m[f] = d->n ? acc[f] / (double)d->n : 0.0;
        memset(acc, 0, sizeof acc);
        for (size_t i = 0; i < d->n; i++)
            stats_add(acc, d, i, f0, nf, m);
        for (size_t f = 0; f < nf; f++) {
            double sd = d->n ? sqrt(acc[f] / (double)d->n) : 0.0;
            mean[f0 + f] = (float)m[f];
            /* constant features (the border pixels) stay 0 rather than blow up */
            inv_std[f0 + f] = sd < 1e-6 ? 1.0f : (float)(1.0 / sd);
        }
    }
}

/* inv_std from a population standard deviation, with the per-feature floor. */
static float inv_std_of(double sd)
{
    return sd < 1e-6 ? 1.0f : (float)(1.0 / sd);
}

/* Mean and population std of channel c's pixels of uint8 samples, from a
 * histogram: integer counts make both exact up to the final divisions, and
 * one pass over the data suffices. */
static void channel_stats_u8(const struct dataset *d, int c, double *mean, double *sd)
{
    uint64_t hist[256] = { 0 };
    size_t plane = (size_t)d->shape.h * (size_t)d->shape.w;
    for (size_t i = 0; i < d->n; i++) {
        const uint8_t *x = (const uint8_t *)d->x + i * d->dim + (size_t)c * plane;
        for (size_t p = 0; p < plane; p++)
            hist[x[p]]++;
    }
    double count = (double)d->n * (double)plane, sum = 0, sq = 0;
    for (int v = 0; v < 256; v++)
        sum += (double)v * (double)hist[v];
    *mean = count > 0 ? sum / count : 0.0;
    for (int v = 0; v < 256; v++)
        sq += (double)hist[v] * ((double)v - *mean) * ((double)v - *mean);
    *sd = count > 0 ? sqrt(sq / count) : 0.0;
}

/* The same for float samples, in two passes as dataset_feature_stats does. */
static void channel_stats_f32(const struct dataset *d, int c, double *mean, double *sd)
{
    size_t plane = (size_t)d->shape.h * (size_t)d->shape.w;
    double count = (double)d->n * (double)plane, sum = 0, sq = 0;
    for (size_t i = 0; i < d->n; i++) {
        const float *x = (const float *)d->x + i * d->dim + (size_t)c * plane;
        for (size_t p = 0; p < plane; p++)
            sum += x[p];
    }
    *mean = count > 0 ? sum / count : 0.0;
    for (size_t i = 0; i < d->n; i++) {
        const float *x = (const float *)d->x + i * d->dim + (size_t)c * plane;
        for (size_t p = 0; p < plane; p++)
            sq += ((double)x[p] - *mean) * ((double)x[p] - *mean);
    }
    *sd = count > 0 ? sqrt(sq / count) : 0.0;
}

void dataset_channel_stats(const struct dataset *d, float *mean, float *inv_std)
{
    size_t plane = (size_t)d->shape.h * (size_t)d->shape.w;
    for (int c = 0; c < d->shape.c; c++) {
        double m, sd;
        if (d->type == SAMPLE_U8)
            channel_stats_u8(d, c, &m, &sd);
        else
            channel_stats_f32(d, c, &m, &sd);
        for (size_t p = 0; p < plane; p++) {
            mean[(size_t)c * plane + p] = (float)m;
            inv_std[(size_t)c * plane + p] = inv_std_of(sd);
        }
    }
}

DDT_HOT static void normalise_u8(float *restrict out, const uint8_t *restrict x,
                                 const float *restrict mean, const float *restrict inv_std,
                                 size_t dim)
{
    for (size_t f = 0; f < dim; f++)
        out[f] = ((float)x[f] - mean[f]) * inv_std[f];
}

DDT_HOT static void normalise_f32(float *restrict out, const float *restrict x,
                                  const float *restrict mean, const float *restrict inv_std,
                                  size_t dim)
{
    for (size_t f = 0; f < dim; f++)
        out[f] = (x[f] - mean[f]) * inv_std[f];
}

void dataset_gather(float *out, int32_t *labels, const struct dataset *d, const uint32_t *idx,
                    int B, const float *mean, const float *inv_std)
{
    for (int i = 0; i < B; i++) {
        size_t row = idx[i];
        float *o = out + (size_t)i * d->dim;
        if (d->type == SAMPLE_U8)
            normalise_u8(o, (const uint8_t *)d->x + row * d->dim, mean, inv_std, d->dim);
        else
            normalise_f32(o, (const float *)d->x + row * d->dim, mean, inv_std, d->dim);
        labels[i] = d->y[row];
    }
}

int dataset_hold_out_fraction(struct dataset *d, struct dataset *held, double fraction,
                              uint64_t seed, char *err, size_t errlen)
{
    size_t n = d->n, k = (size_t)llround(fraction * (double)n);
    if (k == 0 || k >= n) {
        snprintf(err, errlen, "%g of %zu training samples holds out %zu: allowed a share that holds out at least one and keeps at least one",
                 fraction, n, k);
        return -1;
    }
    uint32_t *perm = malloc(n * sizeof *perm);
    if (!perm) {
        snprintf(err, errlen, "out of memory for %zu row indices", n);
        return -1;
    }
    sampler_holdout(perm, n, seed);
    int rc = dataset_hold_out(d, held, perm, k, err, errlen);
    free(perm);
    return rc;
}
