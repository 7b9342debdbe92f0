/* Labelled data sets held in their stored type (uint8 pixels stay uint8),
 * normalised per batch into a caller's float buffer. */
#ifndef DDT_DATASET_H
#define DDT_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"
#include "layer.h"

enum sample_type { SAMPLE_U8 = 1, SAMPLE_F32 = 2 };

/* Which of CIFAR-100's two labels a sample gets (--label). */
enum dataset_label { LABEL_FINE = 0, LABEL_COARSE = 1 };

struct dataset {
    enum sample_type type;
    size_t n;      /* samples */
    size_t dim;    /* features per sample */
    struct shape shape; /* of a sample, C x H x W with C*H*W = dim (N x 1 x 1: flat) */
    int classes;   /* labels are in [0, classes) */
    void *x;       /* (n, dim) of uint8_t or float */
    int32_t *y;    /* (n) */
    bool view;     /* x and y point into another data set's arrays: not freed */
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

/* CIFAR-10 (hundred false) or CIFAR-100 in the binary version, from the
 * folder dir: records of the label byte(s) (CIFAR-100: coarse, then fine)
 * and 3x32x32 uint8 pixels, channels one after another. The train split is
 * data_batch_1.bin to data_batch_5.bin (CIFAR-10) or train.bin, the test
 * split test_batch.bin or test.bin. Checks every file is there and a
 * regular file, its size a whole number of records, every label below the
 * format's count and classes. Keeps the first max_samples records (0: all),
 * reading and checking the rest. */
int dataset_load_cifar(struct dataset *d, const char *dir, bool hundred, const char *split,
                       enum dataset_label label, int classes, size_t max_samples, char *err,
                       size_t errlen);

/* Resolves a --data value for one split ("train" or "test"):
 * "fashion-mnist" -> /usr/share/datasets/fashion-mnist, a folder -> its
 * {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz], a .csv file -> that file
 * (for the test split, the same name with its file name's last "train"
 * replaced by "test"; dataset_load_test takes a test file named apart),
 * "cifar10:DIR" and "cifar100:DIR" -> dataset_load_cifar, keeping its first
 * max_samples samples (0: all). CIFAR-100 samples get their fine labels. */
int dataset_load(struct dataset *d, const char *spec, const char *split, int classes,
                 size_t max_samples, char *err, size_t errlen);

/* dataset_load with the label to take where a data set has two (CIFAR-100);
 * LABEL_COARSE is refused for any other data set. */
int dataset_load_labelled(struct dataset *d, const char *spec, const char *split,
                          enum dataset_label label, int classes, size_t max_samples, char *err,
                          size_t errlen);

/* A test set named on its own (--test-data): a .csv file as it is, any
 * other --data value its test split (a folder's t10k files, CIFAR's test
 * records), with the label and checks of dataset_load_labelled. */
int dataset_load_test(struct dataset *d, const char *spec, enum dataset_label label, int classes,
                      size_t max_samples, char *err, size_t errlen);

/* The class count of the data set a --data value names: 100 for cifar100
 * fine labels, 20 coarse, 10 for the rest (Fashion-MNIST, CIFAR-10, and
 * what --classes has always defaulted to for IDX folders and CSV files). */
int dataset_default_classes(const char *spec, enum dataset_label label);

/* Moves the k distinct rows rows[0..k) of d to its end in place (each group
 * keeps its original order), shortens d to the n - k others and makes held
 * a view of the moved rows: a validation split without a second copy of
 * the data. Needs 0 < k < n; held must be freed (dataset_free, a no-op on a
 * view) before d. Returns 0 or -1 with err (out of memory). */
int dataset_hold_out(struct dataset *d, struct dataset *held, const uint32_t *rows, size_t k,
                     char *err, size_t errlen);

/* --val-fraction: holds out round(fraction x n) rows of d, the first of the
 * seed's sampler_holdout shuffle, into held (dataset_hold_out). Every rank
 * computes the same split. Returns 0 or -1 with err (nothing to hold out,
 * or nothing left to train on). */
int dataset_hold_out_fraction(struct dataset *d, struct dataset *held, double fraction,
                              uint64_t seed, char *err, size_t errlen);

/* Frees what d owns; a view (dataset_hold_out) owns nothing. */
void dataset_free(struct dataset *d);

/* Per-feature mean and 1/std over the whole set (population std; features
 * with std below 1e-6 get 1/std = 1 so constant pixels stay 0). */
void dataset_feature_stats(const struct dataset *d, float *mean, float *inv_std);

/* Per-channel mean and 1/std over every pixel of the channel in the whole
 * set (population std, the same 1e-6 floor), written to mean and inv_std
 * (dim each) broadcast over the channel's H x W pixels, so that the gather
 * and the checkpoint see per-feature arrays as they do for an MLP. */
void dataset_channel_stats(const struct dataset *d, float *mean, float *inv_std);

/* out (B, dim) = (x[idx[i]] - mean) * inv_std; labels (B) = y[idx[i]]. */
void dataset_gather(float *out, int32_t *labels, const struct dataset *d, const uint32_t *idx,
                    int B, const float *mean, const float *inv_std);

#endif
