/* CIFAR-10 and CIFAR-100 in their binary version: fixed-size records of the
 * label byte(s) and 3x32x32 uint8 pixels (all of the red plane, then green,
 * then blue, each row-major), so the pixels are already NCHW. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset.h"
#include "regfile.h"

#define CIFAR_C 3
#define CIFAR_H 32
#define CIFAR_W 32
#define CIFAR_PIXELS (CIFAR_C * CIFAR_H * CIFAR_W)
#define CIFAR_MAX_FILES 5

/* One of the two formats and one of its splits. */
struct cifar_split {
    const char *name;      /* "CIFAR-10", for messages */
    const char *archive;   /* the folder its archive unpacks into */
    int label_bytes;       /* 1, or 2: coarse then fine */
    int label_at;          /* which of them is the label taken */
    int format_classes;    /* labels the format itself allows */
    const char *files[CIFAR_MAX_FILES + 1];
    const char *needs;     /* the files, for the message about a missing one */
};

static const struct cifar_split cifar10_train = {
    "CIFAR-10", "cifar-10-batches-bin", 1, 0, 10,
    { "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
      "data_batch_5.bin", NULL },
    "data_batch_1.bin to data_batch_5.bin",
};
static const struct cifar_split cifar10_test = {
    "CIFAR-10", "cifar-10-batches-bin", 1, 0, 10, { "test_batch.bin", NULL }, "test_batch.bin",
};
static const struct cifar_split cifar100_train = {
    "CIFAR-100", "cifar-100-binary", 2, 1, 100, { "train.bin", NULL }, "train.bin",
};
static const struct cifar_split cifar100_test = {
    "CIFAR-100", "cifar-100-binary", 2, 1, 100, { "test.bin", NULL }, "test.bin",
};

/* The split's files, opened and measured before anything is read, so that a
 * missing or damaged one is reported before megabytes are copied. */
struct cifar_files {
    int n;
    FILE *f[CIFAR_MAX_FILES];
    char path[CIFAR_MAX_FILES][4200];
    size_t records[CIFAR_MAX_FILES];
};

static void cifar_close(struct cifar_files *cf)
{
    for (int i = 0; i < cf->n; i++)
        fclose(cf->f[i]);
    cf->n = 0;
}

/* Opens file k of the split (a regular file) and counts its records. */
static int cifar_open_one(struct cifar_files *cf, const char *dir, const struct cifar_split *s,
                          const char *split, int k, char *err, size_t errlen)
{
    char *path = cf->path[k];
    size_t rec = (size_t)s->label_bytes + CIFAR_PIXELS;
    snprintf(path, sizeof cf->path[k], "%s/%s", dir, s->files[k]);
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        snprintf(err, errlen, "%s: no %s in that folder: the %s split of %s (binary version) needs %s; its archive unpacks them into %s/",
                 dir, s->files[k], split, s->name, s->needs, s->archive);
        return -1;
    }
    FILE *f = regfile_fopen(path, "rb", err, errlen);
    if (!f)
        return -1;
    cf->f[cf->n++] = f;
    if (fstat(fileno(f), &st) != 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        snprintf(err, errlen, "%s: empty file: expected %zu-byte %s records", path, rec, s->name);
        return -1;
    }
    if (size % rec != 0) {
        snprintf(err, errlen, "%s: %zu bytes is not a whole number of %zu-byte %s records (%d label byte%s and 3x32x32 pixels): truncated, or not the binary version",
                 path, size, rec, s->name, s->label_bytes, s->label_bytes == 1 ? "" : "s");
        return -1;
    }
    cf->records[k] = size / rec;
    return 0;
}

static int cifar_open(struct cifar_files *cf, const char *dir, const struct cifar_split *s,
                      const char *split, char *err, size_t errlen)
{
    memset(cf, 0, sizeof *cf);
    struct stat st;
    if (stat(dir, &st) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: not a folder: %s data is the folder of the binary version's files (%s/)",
                 dir, s->name, s->archive);
        return -1;
    }
    for (int k = 0; s->files[k]; k++) {
        if (cifar_open_one(cf, dir, s, split, k, err, errlen)) {
            cifar_close(cf);
            return -1;
        }
    }
    return 0;
}

/* Reads file k's records, checking every label; records [0, keep) go to
 * x and y (which hold them), the rest only through the check. */
static int cifar_read_one(struct cifar_files *cf, int k, const struct cifar_split *s,
                          int classes, size_t keep, uint8_t *x, int32_t *y, char *err,
                          size_t errlen)
{
    uint8_t rec[2 + CIFAR_PIXELS];
    size_t len = (size_t)s->label_bytes + CIFAR_PIXELS;
    const char *path = cf->path[k];
    for (size_t i = 0; i < cf->records[k]; i++) {
        if (fread(rec, 1, len, cf->f[k]) != len) {
            if (ferror(cf->f[k]))
                snprintf(err, errlen, "%s: read error: %s", path, strerror(errno ? errno : EIO));
            else
                snprintf(err, errlen, "%s: truncated while reading: record %zu is incomplete (the file shrank)",
                         path, i);
            return -1;
        }
        int label = rec[s->label_at];
        if (label >= s->format_classes) {
            snprintf(err, errlen, "%s: record %zu has label %d: %s %slabels are 0 to %d", path, i,
                     label, s->name, s->label_bytes == 2 ? (s->label_at ? "fine " : "coarse ") : "",
                     s->format_classes - 1);
            return -1;
        }
        if (label >= classes) {
            snprintf(err, errlen, "%s: record %zu has label %d: allowed 0 to %d (--classes %d)",
                     path, i, label, classes - 1, classes);
            return -1;
        }
        if (i < keep) {
            y[i] = label;
            memcpy(x + i * CIFAR_PIXELS, rec + s->label_bytes, CIFAR_PIXELS);
        }
    }
    if (fgetc(cf->f[k]) != EOF) {
        snprintf(err, errlen, "%s: trailing bytes: the file grew while it was read", path);
        return -1;
    }
    return 0;
}

/* The split's table, with the label the caller asked for. */
static struct cifar_split cifar_pick(bool hundred, const char *split, enum dataset_label label)
{
    bool train = !strcmp(split, "train");
    struct cifar_split s = hundred ? (train ? cifar100_train : cifar100_test)
                                   : (train ? cifar10_train : cifar10_test);
    if (hundred && label == LABEL_COARSE) {
        s.label_at = 0;
        s.format_classes = 20;
    }
    return s;
}

int dataset_load_cifar(struct dataset *d, const char *dir, bool hundred, const char *split,
                       enum dataset_label label, int classes, size_t max_samples, char *err,
                       size_t errlen)
{
    memset(d, 0, sizeof *d);
    if (strcmp(split, "train") != 0 && strcmp(split, "test") != 0) {
        snprintf(err, errlen, "%s: unknown split '%s': expected train or test", dir, split);
        return -1;
    }
    if (classes < 1) {
        snprintf(err, errlen, "%s: the number of classes must be at least 1, not %d", dir,
                 classes);
        return -1;
    }
    struct cifar_split s = cifar_pick(hundred, split, label);
    struct cifar_files cf;
    if (cifar_open(&cf, dir, &s, split, err, errlen))
        return -1;
    size_t all = 0;
    for (int k = 0; k < cf.n; k++)
        all += cf.records[k];
    size_t n = max_samples > 0 && max_samples < all ? max_samples : all;
    d->x = malloc(n * CIFAR_PIXELS);
    d->y = malloc(n * sizeof *d->y);
    if (!d->x || !d->y) {
        snprintf(err, errlen, "%s: out of memory for %zu %s images", dir, n, s.name);
        goto fail;
    }
    size_t at = 0;
    for (int k = 0; k < cf.n; k++) {
        size_t keep = at < n ? (n - at < cf.records[k] ? n - at : cf.records[k]) : 0;
        if (cifar_read_one(&cf, k, &s, classes, keep, (uint8_t *)d->x + at * CIFAR_PIXELS,
                           d->y + at, err, errlen))
            goto fail;
        at += keep;
    }
    cifar_close(&cf);
    d->type = SAMPLE_U8;
    d->n = n;
    d->dim = CIFAR_PIXELS;
    d->shape = (struct shape){ CIFAR_C, CIFAR_H, CIFAR_W };
    d->classes = classes;
    return 0;
fail:
    cifar_close(&cf);
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
    return -1;
}
