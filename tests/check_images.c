/* Tests of image data: the CIFAR-10 and CIFAR-100 readers on small files
 * they write (read back exactly, every damage refused with its message),
 * per-channel statistics against a double reference, and the training
 * augmentation (its keys, the crop's zero padding, the flip). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "augment.h"
#include "check_util.h"
#include "dataset.h"
#include "spec.h"
#include "suites.h"

#define PIXELS 3072

static char dir[64];

static void setup(void)
{
    tu_tmpdir(dir, sizeof dir, "images");
}

static void teardown(void)
{
    tu_rmtree(dir);
}

/* The pixel p of record k (numbered across all files of a split). */
static uint8_t pixel_of(int k, int p)
{
    return (uint8_t)((unsigned)(k * 131 + p * 7 + (p >> 10) * 13) & 0xff);
}

/* Writes records [first, first + n) to DIR/name with label bytes from lab
 * (label_bytes per record) and extra bytes of junk at the end. */
static void write_records(const char *name, int first, int n, const uint8_t *lab,
                          int label_bytes, int extra)
{
    char path[256];
    FILE *f = fopen(tu_path(path, sizeof path, dir, name), "wb");
    ck_assert_ptr_nonnull(f);
    for (int k = first; k < first + n; k++) {
        ck_assert_int_eq(fwrite(lab + (size_t)k * label_bytes, 1, (size_t)label_bytes, f),
                         (size_t)label_bytes);
        for (int p = 0; p < PIXELS; p++)
            fputc(pixel_of(k, p), f);
    }
    for (int i = 0; i < extra; i++)
        fputc(1, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* CIFAR-10: 2, 3, 1, 2, 2 training records (labels 0..9), 3 test records. */
static const int c10_counts[5] = { 2, 3, 1, 2, 2 };
static uint8_t c10_labels[10] = { 3, 0, 9, 1, 2, 8, 4, 5, 7, 6 };
static uint8_t c10_test_labels[3] = { 9, 0, 4 };

static void write_cifar10(void)
{
    int first = 0;
    for (int b = 0; b < 5; b++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", b + 1);
        write_records(name, first, c10_counts[b], c10_labels, 1, 0);
        first += c10_counts[b];
    }
    write_records("test_batch.bin", 0, 3, c10_test_labels, 1, 0);
}

/* CIFAR-100: 4 training and 2 test records, (coarse, fine) label pairs. */
static uint8_t c100_labels[8] = { 19, 99, 0, 3, 7, 42, 12, 0 };
static uint8_t c100_test_labels[4] = { 1, 10, 2, 20 };

static void write_cifar100(void)
{
    write_records("train.bin", 0, 4, c100_labels, 2, 0);
    write_records("test.bin", 0, 2, c100_test_labels, 2, 0);
}

static void check_records(const struct dataset *d, size_t n, const uint8_t *labels,
                          int label_bytes, int label_at)
{
    ck_assert_int_eq(d->type, SAMPLE_U8);
    ck_assert_uint_eq(d->n, n);
    ck_assert_uint_eq(d->dim, PIXELS);
    ck_assert_int_eq(d->shape.c, 3);
    ck_assert_int_eq(d->shape.h, 32);
    ck_assert_int_eq(d->shape.w, 32);
    const uint8_t *x = d->x;
    for (size_t k = 0; k < n; k++) {
        ck_assert_int_eq(d->y[k], labels[k * (size_t)label_bytes + (size_t)label_at]);
        for (int p = 0; p < PIXELS; p++)
            ck_assert_uint_eq(x[k * PIXELS + (size_t)p], pixel_of((int)k, p));
    }
}

/* --- the readers ------------------------------------------------------------ */

START_TEST(test_cifar10_good)
{
    write_cifar10();
    struct dataset d;
    char err[DDT_ERRLEN] = "", spec[128];
    ck_assert_msg(dataset_load_cifar(&d, dir, false, "train", LABEL_FINE, 10, 0, err, sizeof err) == 0,
                  "%s", err);
    check_records(&d, 10, c10_labels, 1, 0);
    ck_assert_int_eq(d.classes, 10);
    dataset_free(&d);
    /* the first 4 end inside the second file; the rest is still checked */
    ck_assert_msg(dataset_load_cifar(&d, dir, false, "train", LABEL_FINE, 10, 4, err, sizeof err) == 0,
                  "%s", err);
    check_records(&d, 4, c10_labels, 1, 0);
    dataset_free(&d);
    ck_assert_msg(dataset_load_cifar(&d, dir, false, "train", LABEL_FINE, 12, 99, err, sizeof err) == 0,
                  "%s", err);
    check_records(&d, 10, c10_labels, 1, 0);
    dataset_free(&d);
    /* through --data */
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    ck_assert_msg(dataset_load(&d, spec, "test", 10, 0, err, sizeof err) == 0, "%s", err);
    check_records(&d, 3, c10_test_labels, 1, 0);
    dataset_free(&d);
    ck_assert_int_eq(dataset_default_classes(spec, LABEL_FINE), 10);
    ck_assert_int_eq(dataset_load_labelled(&d, spec, "train", LABEL_COARSE, 10, 0, err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, "--label coarse: only cifar100:DIR data has coarse labels"), "%s", err);
}
END_TEST

START_TEST(test_cifar100_good)
{
    write_cifar100();
    struct dataset d;
    char err[DDT_ERRLEN] = "", spec[128];
    snprintf(spec, sizeof spec, "cifar100:%s", dir);
    ck_assert_int_eq(dataset_default_classes(spec, LABEL_FINE), 100);
    ck_assert_int_eq(dataset_default_classes(spec, LABEL_COARSE), 20);
    ck_assert_msg(dataset_load_labelled(&d, spec, "train", LABEL_FINE, 100, 0, err, sizeof err) == 0,
                  "%s", err);
    check_records(&d, 4, c100_labels, 2, 1);
    ck_assert_int_eq(d.classes, 100);
    dataset_free(&d);
    ck_assert_msg(dataset_load_labelled(&d, spec, "train", LABEL_COARSE, 20, 3, err, sizeof err) == 0,
                  "%s", err);
    check_records(&d, 3, c100_labels, 2, 0);
    dataset_free(&d);
    ck_assert_msg(dataset_load(&d, spec, "test", 100, 0, err, sizeof err) == 0, "%s", err);
    check_records(&d, 2, c100_test_labels, 2, 1);
    dataset_free(&d);
}
END_TEST

/* One damage per case: what it does to the folder, what the message says. */
struct damage {
    bool hundred;
    enum dataset_label label;
    int classes;
    size_t keep;
    const char *file;     /* the file the damage is in; the message names it */
    const char *says;
};

static const struct damage damages[] = {
    { false, LABEL_FINE, 10, 0, "data_batch_4.bin",
      "6145 bytes is not a whole number of 3073-byte CIFAR-10 records" }, /* 0: a byte short */
    { false, LABEL_FINE, 10, 0, "data_batch_2.bin", "is not a whole number of 3073-byte" }, /* 1: trailing */
    { false, LABEL_FINE, 10, 0, "data_batch_5.bin", "empty file: expected 3073-byte CIFAR-10 records" },
    { false, LABEL_FINE, 10, 1, "data_batch_5.bin", "record 1 has label 10: CIFAR-10 labels are 0 to 9" },
    { false, LABEL_FINE, 5, 0, "data_batch_1.bin", "record 0 has label 7: allowed 0 to 4 (--classes 5)" },
    { false, LABEL_FINE, 10, 0, "data_batch_3.bin", "no data_batch_3.bin in that folder" },
    { false, LABEL_FINE, 10, 0, "data_batch_2.bin", "data_batch_2.bin: not a regular file (it is a directory)" },
    { true, LABEL_FINE, 100, 0, "train.bin", "record 2 has label 100: CIFAR-100 fine labels are 0 to 99" },
    { true, LABEL_COARSE, 20, 0, "train.bin", "record 3 has label 20: CIFAR-100 coarse labels are 0 to 19" },
    { true, LABEL_FINE, 100, 0, "train.bin", "6149 bytes is not a whole number of 3074-byte CIFAR-100 records" },
    { true, LABEL_FINE, 100, 0, "train.bin", "no train.bin in that folder" },
};

START_TEST(test_damaged)
{
    const struct damage *dm = &damages[_i];
    char path[256];
    if (dm->hundred)
        write_cifar100();
    else
        write_cifar10();
    tu_path(path, sizeof path, dir, dm->file);
    uint8_t lab[8];
    switch (_i) {
    case 0: /* one byte short of two records */
        write_records(dm->file, 0, 2, c10_labels, 1, 0);
        ck_assert_int_eq(truncate(path, 2 * 3073 - 1), 0);
        break;
    case 1:
        write_records(dm->file, 0, 3, c10_labels, 1, 5);
        break;
    case 2:
        write_records(dm->file, 0, 0, c10_labels, 1, 0);
        break;
    case 3: /* past the samples kept: checked all the same */
        memcpy(lab, (uint8_t[]){ 1, 10 }, 2);
        write_records(dm->file, 0, 2, lab, 1, 0);
        break;
    case 4: /* within the format, beyond --classes */
        memcpy(lab, (uint8_t[]){ 7 }, 1);
        write_records(dm->file, 0, 1, lab, 1, 0);
        break;
    case 5:
    case 10:
        ck_assert_int_eq(unlink(path), 0);
        break;
    case 6:
        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(mkdir(path, 0700), 0);
        break;
    case 7:
        memcpy(lab, (uint8_t[]){ 1, 1, 2, 2, 3, 100 }, 6);
        write_records(dm->file, 0, 3, lab, 2, 0);
        break;
    case 8:
        memcpy(lab, (uint8_t[]){ 1, 1, 2, 2, 3, 3, 20, 4 }, 8);
        write_records(dm->file, 0, 4, lab, 2, 0);
        break;
    case 9:
        write_records(dm->file, 0, 2, c100_labels, 2, 1);
        break;
    }
    struct dataset d;
    char err[DDT_ERRLEN] = "";
    ck_assert_int_eq(dataset_load_cifar(&d, dir, dm->hundred, "train", dm->label, dm->classes,
                                        dm->keep, err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, dm->says), "case %d: '%s' lacks '%s'", _i, err, dm->says);
    /* every message names the file, or the folder for a file not there */
    ck_assert_msg(strstr(err, strstr(dm->says, "no ") == dm->says ? dir : path), "case %d: %s", _i,
                  err);
    ck_assert_ptr_null(d.x);
    ck_assert_uint_eq(d.n, 0);
}
END_TEST

START_TEST(test_folder_errors)
{
    struct dataset d;
    char err[DDT_ERRLEN] = "", p[256];
    tu_path(p, sizeof p, dir, "nowhere");
    ck_assert_int_eq(dataset_load_cifar(&d, p, false, "train", LABEL_FINE, 10, 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, p) && strstr(err, "No such file"), "%s", err);
    write_records("plain", 0, 1, c10_labels, 1, 0);
    tu_path(p, sizeof p, dir, "plain");
    ck_assert_int_eq(dataset_load_cifar(&d, p, false, "test", LABEL_FINE, 10, 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "not a folder"), "%s", err);
    ck_assert_int_eq(dataset_load_cifar(&d, dir, true, "test", LABEL_FINE, 100, 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no test.bin in that folder") && strstr(err, "cifar-100-binary"), "%s",
                  err);
    write_cifar10();
    ck_assert_int_eq(dataset_load_cifar(&d, dir, false, "validation", LABEL_FINE, 10, 0, err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, "unknown split 'validation'"), "%s", err);
    ck_assert_int_eq(dataset_load_cifar(&d, dir, false, "train", LABEL_FINE, 0, 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "at least 1"), "%s", err);
}
END_TEST

/* --- per-channel statistics ------------------------------------------------- */

/* The double reference: over every pixel of channel c of every sample. */
static void reference_channel(const struct dataset *d, int c, double *mean, double *sd)
{
    size_t plane = (size_t)d->shape.h * d->shape.w;
    double s = 0, s2 = 0, count = (double)d->n * (double)plane;
    for (size_t i = 0; i < d->n; i++)
        for (size_t p = 0; p < plane; p++) {
            size_t k = i * d->dim + (size_t)c * plane + p;
            s += d->type == SAMPLE_U8 ? ((const uint8_t *)d->x)[k] : ((const float *)d->x)[k];
        }
    *mean = s / count;
    for (size_t i = 0; i < d->n; i++)
        for (size_t p = 0; p < plane; p++) {
            size_t k = i * d->dim + (size_t)c * plane + p;
            double v = d->type == SAMPLE_U8 ? ((const uint8_t *)d->x)[k] : ((const float *)d->x)[k];
            s2 += (v - *mean) * (v - *mean);
        }
    *sd = sqrt(s2 / count);
}

static void check_channel_stats(const struct dataset *d)
{
    static float mean[4096], inv[4096];
    dataset_channel_stats(d, mean, inv);
    size_t plane = (size_t)d->shape.h * d->shape.w;
    for (int c = 0; c < d->shape.c; c++) {
        double m, sd;
        reference_channel(d, c, &m, &sd);
        float want_inv = sd < 1e-6 ? 1.0f : (float)(1 / sd);
        /* both in double and rounded once to float: equal but for the last bit */
        for (size_t p = 0; p < plane; p++) {
            ck_assert_float_eq_tol(mean[(size_t)c * plane + p], (float)m, fabs(m) * 1e-6 + 1e-12);
            ck_assert_float_eq_tol(inv[(size_t)c * plane + p], want_inv, want_inv * 1e-6);
        }
    }
}

START_TEST(test_channel_stats_u8)
{
    enum { N = 7, C = 3, H = 4, W = 5 };
    static uint8_t x[N * C * H * W];
    int32_t y[N] = { 0 };
    for (size_t k = 0; k < sizeof x; k++)
        x[k] = (uint8_t)(k * 2654435761u >> 24);
    /* channel 1 constant: 1/std stays 1 */
    for (int i = 0; i < N; i++)
        memset(x + (size_t)i * C * H * W + H * W, 42, H * W);
    struct dataset d = { .type = SAMPLE_U8, .n = N, .dim = C * H * W, .shape = { C, H, W },
                         .classes = 1, .x = x, .y = y };
    check_channel_stats(&d);
    float mean[C * H * W], inv[C * H * W];
    dataset_channel_stats(&d, mean, inv);
    ck_assert_float_eq(mean[H * W + 3], 42.0f);
    ck_assert_float_eq(inv[H * W + 3], 1.0f);
}
END_TEST

START_TEST(test_channel_stats_f32)
{
    enum { N = 5, C = 2, H = 3, W = 3 };
    static float x[N * C * H * W];
    int32_t y[N] = { 0 };
    for (size_t k = 0; k < N * C * H * W; k++)
        x[k] = 1e6f + (float)((k * 2654435761u >> 20) % 1000) / 100.0f;
    struct dataset d = { .type = SAMPLE_F32, .n = N, .dim = C * H * W, .shape = { C, H, W },
                         .classes = 1, .x = x, .y = y };
    check_channel_stats(&d);
}
END_TEST

START_TEST(test_spec_input_shape)
{
    struct spec s;
    char err[256];
    ck_assert_msg(spec_parse(&s, "in:3072,fc:16,relu,fc:10", false, 0, err, sizeof err) == 0, "%s",
                  err);
    struct shape in = spec_input_shape(&s);
    ck_assert_int_eq(in.c, 3072);
    ck_assert_int_eq(in.h, 1);
    ck_assert_int_eq(in.w, 1);
    s.n = 0;
    ck_assert_int_eq(shape_size(spec_input_shape(&s)), 0);
}
END_TEST

/* --- augmentation ----------------------------------------------------------- */

START_TEST(test_augment_parse)
{
    struct augment a;
    char err[256];
    ck_assert_int_eq(augment_parse(&a, "none", err, sizeof err), 0);
    ck_assert(!augment_active(&a));
    ck_assert_int_eq(augment_parse(&a, "crop:4,flip", err, sizeof err), 0);
    ck_assert_int_eq(a.crop_pad, 4);
    ck_assert(a.flip);
    ck_assert_int_eq(augment_parse(&a, "flip", err, sizeof err), 0);
    ck_assert(a.flip && a.crop_pad == 0 && augment_active(&a));
    ck_assert_int_eq(augment_parse(&a, "flip,crop:2", err, sizeof err), 0);
    ck_assert(a.flip && a.crop_pad == 2);
    static const char *const bad[][2] = {
        { "crop:0", "the padding is not a whole number of pixels from 1 to 1024" },
        { "crop:-1", "the padding is not" },
        { "crop:4x", "the padding is not" },
        { "crop:2000", "the padding is not" },
        { "crop", "'crop' is not an augmentation" },
        { "flip,flip", "'flip' is given twice" },
        { "crop:2,crop:3", "'crop:3' is given twice" },
        { "rotate", "'rotate' is not an augmentation: allowed none, or crop:P and flip" },
        { "", "'' is not an augmentation" },
        { "none,flip", "'none' is not an augmentation" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(augment_parse(&a, bad[i][0], err, sizeof err), -1);
        ck_assert_msg(strstr(err, bad[i][1]) && strstr(err, "--augment: "), "'%s': %s", bad[i][0],
                      err);
        ck_assert(!augment_active(&a));
    }
}
END_TEST

START_TEST(test_augment_draws)
{
    struct augment a = { .crop_pad = 4, .flip = true };
    int flips = 0, moved = 0, seen[9] = { 0 };
    for (uint64_t s = 0; s < 2000; s++) {
        struct augment_draw d1 = augment_draw(&a, 7, 3, s), d2 = augment_draw(&a, 7, 3, s);
        ck_assert(d1.dy == d2.dy && d1.dx == d2.dx && d1.flip == d2.flip);
        ck_assert(d1.dy >= -4 && d1.dy <= 4 && d1.dx >= -4 && d1.dx <= 4);
        seen[d1.dy + 4]++;
        flips += d1.flip;
        struct augment_draw e = augment_draw(&a, 7, 4, s);
        moved += e.dy != d1.dy || e.dx != d1.dx || e.flip != d1.flip;
    }
    /* every shift occurs, about half flip, and the next epoch differs */
    for (int k = 0; k < 9; k++)
        ck_assert_msg(seen[k] > 100, "shift %d drawn %d times of 2000", k - 4, seen[k]);
    ck_assert_msg(flips > 900 && flips < 1100, "%d flips of 2000", flips);
    ck_assert_msg(moved > 1900, "only %d of 2000 samples change between epochs", moved);
    /* the seed is part of the key */
    int other = 0;
    for (uint64_t s = 0; s < 100; s++) {
        struct augment_draw d1 = augment_draw(&a, 7, 3, s), d2 = augment_draw(&a, 8, 3, s);
        other += d1.dy != d2.dy || d1.dx != d2.dx || d1.flip != d2.flip;
    }
    ck_assert_int_gt(other, 80);
    /* what is off is not drawn */
    struct augment none = { 0 };
    struct augment_draw z = augment_draw(&none, 7, 3, 5);
    ck_assert(z.dy == 0 && z.dx == 0 && !z.flip);
}
END_TEST

/* A 2 x 3 x 4 uint8 image set of 3 samples and per-feature statistics that
 * differ everywhere, so a pixel taken from the wrong place shows. */
enum { AC = 2, AH = 3, AW = 4, AD = AC * AH * AW, AN = 3 };
static uint8_t ax[AN * AD];
static int32_t ay[AN] = { 4, 5, 6 };
static float amean[AD], ainv[AD];

static struct dataset aug_set(void)
{
    for (int k = 0; k < AN * AD; k++)
        ax[k] = (uint8_t)(10 + k * 3);
    for (int f = 0; f < AD; f++) {
        amean[f] = 0.5f + (float)f;
        ainv[f] = 1.0f / (1.0f + (float)f / 8.0f);
    }
    return (struct dataset){ .type = SAMPLE_U8, .n = AN, .dim = AD, .shape = { AC, AH, AW },
                             .classes = 7, .x = ax, .y = ay };
}

START_TEST(test_augment_identity)
{
    struct dataset d = aug_set();
    struct augment_draw none = { 0, 0, false };
    float out[AD], want[AD];
    int32_t lab;
    uint32_t row = 1;
    augment_sample(out, &d, 1, &none, amean, ainv);
    dataset_gather(want, &lab, &d, &row, 1, amean, ainv);
    ck_assert_mem_eq(out, want, sizeof out);
    /* crop:P with P = 0 draws no shift */
    struct augment a0 = { 0 };
    for (uint64_t s = 0; s < 50; s++) {
        struct augment_draw dr = augment_draw(&a0, 1, 2, s);
        ck_assert(dr.dy == 0 && dr.dx == 0 && !dr.flip);
    }
}
END_TEST

START_TEST(test_augment_crop_and_flip)
{
    /* every shift in [-3, 3]^2 with and without the flip, pixel by pixel
     * against out(c, y, x) = src(c, y + dy, (flip ? W-1-x : x) + dx), raw 0
     * outside, normalised after */
    struct dataset d = aug_set();
    for (int dy = -3; dy <= 3; dy++)
        for (int dx = -3; dx <= 3; dx++)
            for (int fl = 0; fl < 2; fl++) {
                struct augment_draw dr = { dy, dx, fl };
                float out[AD];
                augment_sample(out, &d, 2, &dr, amean, ainv);
                for (int c = 0; c < AC; c++)
                    for (int y = 0; y < AH; y++)
                        for (int x = 0; x < AW; x++) {
                            int f = (c * AH + y) * AW + x;
                            int sy = y + dy, sx = (fl ? AW - 1 - x : x) + dx;
                            float raw = sy >= 0 && sy < AH && sx >= 0 && sx < AW
                                            ? (float)ax[2 * AD + (c * AH + sy) * AW + sx]
                                            : 0.0f;
                            ck_assert_float_eq(out[f], (raw - amean[f]) * ainv[f]);
                        }
            }
    /* the border explicitly: shifted down by one, the top row is padding */
    struct augment_draw down = { -1, 0, false };
    float out[AD];
    augment_sample(out, &d, 0, &down, amean, ainv);
    for (int x = 0; x < AW; x++)
        ck_assert_float_eq(out[x], (0.0f - amean[x]) * ainv[x]);
    ck_assert_float_eq(out[AW], ((float)ax[0] - amean[AW]) * ainv[AW]);
}
END_TEST

START_TEST(test_augment_flip_inverse)
{
    /* float images with mean 0 and 1/std 1: the flip of the flip is the image */
    enum { C = 3, H = 5, W = 7, D = C * H * W };
    float x[D], once[D], twice[D], zero[D], one[D];
    int32_t y = 0;
    for (int f = 0; f < D; f++) {
        x[f] = (float)f * 0.25f - 3.0f;
        zero[f] = 0.0f;
        one[f] = 1.0f;
    }
    struct dataset d = { .type = SAMPLE_F32, .n = 1, .dim = D, .shape = { C, H, W }, .classes = 1,
                         .x = x, .y = &y };
    struct augment_draw flip = { 0, 0, true };
    augment_sample(once, &d, 0, &flip, zero, one);
    ck_assert_float_eq(once[0], x[W - 1]);
    d.x = once;
    augment_sample(twice, &d, 0, &flip, zero, one);
    ck_assert_mem_eq(twice, x, sizeof x);
}
END_TEST

START_TEST(test_augment_rank_invariance)
{
    /* a sample's augmentation depends on its row, never on where it sits in
     * the slice: one rank's batch and two ranks' halves give the same rows */
    struct dataset d = aug_set();
    struct augment_pass p = { .how = { .crop_pad = 2, .flip = true }, .seed = 11, .epoch = 5 };
    uint32_t batch[4] = { 2, 0, 1, 2 }, half[2] = { 1, 2 };
    float all[4 * AD], part[2 * AD], alone[AD];
    int32_t lab[4], plab[2];
    augment_gather(all, lab, &d, batch, 4, amean, ainv, &p);
    augment_gather(part, plab, &d, half, 2, amean, ainv, &p);
    ck_assert_mem_eq(part, all + 2 * AD, sizeof part);
    ck_assert_mem_eq(all, all + 3 * AD, AD * sizeof(float)); /* row 2 twice */
    ck_assert_int_eq(lab[0], 6);
    ck_assert_int_eq(plab[0], 5);
    /* and each is its own draw applied */
    struct augment_draw dr = augment_draw(&p.how, 11, 5, 0);
    augment_sample(alone, &d, 0, &dr, amean, ainv);
    ck_assert_mem_eq(alone, all + AD, sizeof alone);
}
END_TEST

Suite *images_suite(void)
{
    Suite *s = suite_create("images");

    TCase *tc = tcase_create("cifar");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_cifar10_good);
    tcase_add_test(tc, test_cifar100_good);
    tcase_add_loop_test(tc, test_damaged, 0, (int)(sizeof damages / sizeof damages[0]));
    tcase_add_test(tc, test_folder_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("channel_stats");
    tcase_add_test(tc, test_channel_stats_u8);
    tcase_add_test(tc, test_channel_stats_f32);
    tcase_add_test(tc, test_spec_input_shape);
    suite_add_tcase(s, tc);

    tc = tcase_create("augment");
    tcase_add_test(tc, test_augment_parse);
    tcase_add_test(tc, test_augment_draws);
    tcase_add_test(tc, test_augment_identity);
    tcase_add_test(tc, test_augment_crop_and_flip);
    tcase_add_test(tc, test_augment_flip_inverse);
    tcase_add_test(tc, test_augment_rank_invariance);
    suite_add_tcase(s, tc);
    return s;
}
