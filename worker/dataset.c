/* Resolving --data, per-feature statistics and per-batch normalisation. */
#include "dataset.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "simd.h"

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* DIR/NAME or DIR/NAME.gz, whichever exists (the .gz first). */
static int find_idx(char *out, size_t outlen, const char *dir, const char *name)
{
    snprintf(out, outlen, "%s/%s.gz", dir, name);
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
                          char *err)
{
    if (strcmp(split, "test") != 0)
        return dataset_load_csv(d, path, classes, err);
    /* the test file is the training file's name with its last "train" replaced */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *at = NULL;
    for (const char *p = strstr(base, "train"); p; p = strstr(p + 1, "train"))
        at = p;
    if (!at) {
        snprintf(err, DDT_ERRLEN, "--data %s: the file name has no 'train' to replace by 'test' to find the test split",
                 path);
        return -1;
    }
    char test[4096];
    snprintf(test, sizeof test, "%.*stest%s", (int)(at - path), path, at + 5);
    return dataset_load_csv(d, test, classes, err);
}

int dataset_load(struct dataset *d, const char *spec, const char *split, int classes,
                 char *err)
{
    memset(d, 0, sizeof *d);
    if (ends_with(spec, ".csv"))
        return load_csv_split(d, spec, split, classes, err);
    const char *dir = spec;
    if (!strcmp(spec, "fashion-mnist")) {
        dir = FASHION_MNIST_DIR;
        if (!exists(dir)) {
            snprintf(err, DDT_ERRLEN, "--data fashion-mnist: %s does not exist: install Debian's dataset-fashion-mnist package (launch/setup does)",
                     dir);
            return -1;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(err, DDT_ERRLEN, "--data %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, DDT_ERRLEN, "--data %s: neither a folder of IDX files nor a .csv file", dir);
        return -1;
    }
    const char *prefix = strcmp(split, "train") ? "t10k" : "train";
    char iname[64], lname[64], ipath[4200], lpath[4200];
    snprintf(iname, sizeof iname, "%s-images-idx3-ubyte", prefix);
    snprintf(lname, sizeof lname, "%s-labels-idx1-ubyte", prefix);
    if (find_idx(ipath, sizeof ipath, dir, iname) || find_idx(lpath, sizeof lpath, dir, lname)) {
        snprintf(err, DDT_ERRLEN, "--data %s: the %s split needs %s[.gz] and %s[.gz] in that folder",
                 dir, split, iname, lname);
        return -1;
    }
    return dataset_load_idx(d, ipath, lpath, classes, err);
}

void dataset_free(struct dataset *d)
{
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

void dataset_truncate(struct dataset *d, size_t n)
{
    if (n < d->n)
        d->n = n;
}

static float sample_value(const struct dataset *d, size_t i, size_t f)
{
    return d->type == SAMPLE_U8 ? (float)((const uint8_t *)d->x)[i * d->dim + f]
                                : ((const float *)d->x)[i * d->dim + f];
}

void dataset_feature_stats(const struct dataset *d, float *mean, float *inv_std)
{
    double *s = calloc(2 * d->dim, sizeof *s);
    if (!s) {
        for (size_t f = 0; f < d->dim; f++) {
            mean[f] = 0.0f;
            inv_std[f] = 1.0f;
        }
        return;
    }
    double *s2 = s + d->dim;
    for (size_t i = 0; i < d->n; i++) {
        for (size_t f = 0; f < d->dim; f++) {
            double v = sample_value(d, i, f);
            s[f] += v;
            s2[f] += v * v;
        }
    }
    for (size_t f = 0; f < d->dim; f++) {
        double m = d->n ? s[f] / (double)d->n : 0.0;
        double var = d->n ? s2[f] / (double)d->n - m * m : 0.0;
        double sd = var > 0 ? sqrt(var) : 0.0;
        mean[f] = (float)m;
        /* constant features (the border pixels) stay 0 rather than blow up */
        inv_std[f] = sd < 1e-6 ? 1.0f : (float)(1.0 / sd);
    }
    free(s);
}

DDT_HOT static void normalise_u8(float *out, const uint8_t *x, const float *mean,
                                 const float *inv_std, size_t dim)
{
    for (size_t f = 0; f < dim; f++)
        out[f] = ((float)x[f] - mean[f]) * inv_std[f];
}

DDT_HOT static void normalise_f32(float *out, const float *x, const float *mean,
                                  const float *inv_std, size_t dim)
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
