/* Tests of the data readers on files they write: IDX raw and gzip, every kind
 * of damage, CSV with and without a header, --data resolution, feature
 * statistics and batch normalisation, and the real Fashion-MNIST if present. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dataset.h"
#include "suites.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/ddtrain-data-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void put_be32(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Writes bytes to DIR/name, gzip-compressed when gz. */
static void write_bytes(const char *name, const unsigned char *data, size_t len, int gz)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(gzwrite(f, data, (unsigned)len), (int)len);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        fclose(f);
    }
}

/* An images file of n 2x3 images (pixel = 10 i + k) and a labels file. */
static void write_idx_pair(const char *prefix, int n, int gz, int bad_label)
{
    unsigned char img[16 + 64 * 6], lab[8 + 64];
    put_be32(img, 0x0803);
    put_be32(img + 4, (unsigned)n);
    put_be32(img + 8, 2);
    put_be32(img + 12, 3);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 6; k++)
            img[16 + i * 6 + k] = (unsigned char)(10 * i + k);
    put_be32(lab, 0x0801);
    put_be32(lab + 4, (unsigned)n);
    for (int i = 0; i < n; i++)
        lab[8 + i] = (unsigned char)(i % 3);
    if (bad_label)
        lab[8 + n - 1] = 7;
    char name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", prefix, gz ? ".gz" : "");
    write_bytes(name, img, 16 + (size_t)n * 6, gz);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", prefix, gz ? ".gz" : "");
    write_bytes(name, lab, 8 + (size_t)n, gz);
}

START_TEST(test_idx_good)
{
    int gz = _i;
    write_idx_pair("train", 5, gz, 0);
    write_idx_pair("t10k", 2, gz, 0);
    struct dataset d;
    char err[DDT_ERRLEN];
    ck_assert_msg(dataset_load(&d, dir, "train", 3, err) == 0, "%s", err);
    ck_assert_uint_eq(d.n, 5);
    ck_assert_uint_eq(d.dim, 6);
    ck_assert_int_eq(d.type, SAMPLE_U8);
    ck_assert_int_eq(((uint8_t *)d.x)[4 * 6 + 5], 45);
    ck_assert_int_eq(d.y[4], 1);
    dataset_free(&d);
    ck_assert_msg(dataset_load(&d, dir, "test", 3, err) == 0, "%s", err);
    ck_assert_uint_eq(d.n, 2);
    dataset_free(&d);
}
END_TEST

struct damage {
    const char *what;
    unsigned char bytes[32];
    size_t len;
    const char *says;
};

/* Damaged image files, each paired with good labels for 2 samples. */
static const struct damage damages[] = {
    { "wrong magic", { 0, 0, 8, 9, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2 }, 18, "wrong magic 0x00000809" },
    { "float type", { 0, 0, 0x0d, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2 }, 18, "wrong magic" },
    { "truncated data", { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3 }, 19, "truncated: expected 8 bytes of data, found 3" },
    { "trailing bytes", { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3 }, 19, "trailing bytes" },
    { "truncated header", { 0, 0, 8, 3, 0, 0, 0, 2 }, 8, "truncated: the header needs 16 bytes" },
    { "zero dimension", { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1 }, 16, "dimension 2 is 0" },
    { "count mismatch", { 0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3 }, 19, "holds 3 images but" },
    { "empty", { 0 }, 0, "truncated" },
};

START_TEST(test_idx_damaged)
{
    const struct damage *dm = &damages[_i];
    unsigned char lab[10] = { 0, 0, 8, 1, 0, 0, 0, 2, 0, 1 };
    write_bytes("train-images-idx3-ubyte", dm->bytes, dm->len, 0);
    write_bytes("train-labels-idx1-ubyte", lab, sizeof lab, 0);
    struct dataset d;
    char err[DDT_ERRLEN] = "", path[256];
    ck_assert_int_eq(dataset_load(&d, dir, "train", 3, err), -1);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    ck_assert_msg(strstr(err, dm->says) != NULL, "%s: '%s'", dm->what, err);
    ck_assert_msg(strstr(err, path) != NULL, "%s: no path in '%s'", dm->what, err);
}
END_TEST

START_TEST(test_idx_label_out_of_range)
{
    write_idx_pair("train", 4, 1, 1);
    struct dataset d;
    char err[DDT_ERRLEN];
    ck_assert_int_eq(dataset_load(&d, dir, "train", 3, err), -1);
    ck_assert_msg(strstr(err, "label 3 is 7: allowed 0 to 2") != NULL, "%s", err);
    ck_assert(strstr(err, "train-labels-idx1-ubyte.gz") != NULL);
}
END_TEST

START_TEST(test_idx_missing)
{
    struct dataset d;
    char err[DDT_ERRLEN];
    ck_assert_int_eq(dataset_load(&d, dir, "train", 10, err), -1);
    ck_assert_msg(strstr(err, "train-images-idx3-ubyte[.gz]") != NULL, "%s", err);
    char nowhere[128];
    snprintf(nowhere, sizeof nowhere, "%s/nowhere", dir);
    ck_assert_int_eq(dataset_load(&d, nowhere, "train", 10, err), -1);
    ck_assert_msg(strstr(err, "No such file") != NULL && strstr(err, nowhere), "%s", err);
    /* a damaged gzip stream */
    unsigned char junk[40] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff };
    write_bytes("train-images-idx3-ubyte.gz", junk, sizeof junk, 0);
    write_bytes("train-labels-idx1-ubyte.gz", junk, sizeof junk, 0);
    ck_assert_int_eq(dataset_load(&d, dir, "train", 10, err), -1);
    ck_assert_msg(strstr(err, "train-images-idx3-ubyte.gz") != NULL, "%s", err);
}
END_TEST

static void write_text(const char *name, const char *text)
{
    write_bytes(name, (const unsigned char *)text, strlen(text), 0);
}

START_TEST(test_csv_good)
{
    write_text("train.csv", "label,a,b\n1, 0.5, -2\n0,1e-3,4\n\n2,3,3\n");
    write_text("test.csv", "2,1,1\n");
    struct dataset d;
    char err[DDT_ERRLEN], path[128];
    snprintf(path, sizeof path, "%s/train.csv", dir);
    ck_assert_msg(dataset_load(&d, path, "train", 3, err) == 0, "%s", err);
    ck_assert_uint_eq(d.n, 3);
    ck_assert_uint_eq(d.dim, 2);
    ck_assert_int_eq(d.type, SAMPLE_F32);
    ck_assert_float_eq(((float *)d.x)[1], -2.0f);
    ck_assert_int_eq(d.y[2], 2);
    dataset_free(&d);
    ck_assert_msg(dataset_load(&d, path, "test", 3, err) == 0, "%s", err);
    ck_assert_uint_eq(d.n, 1);
    dataset_free(&d);
}
END_TEST

struct csv_bad {
    const char *text;
    const char *says;
};

static const struct csv_bad csv_bads[] = {
    { "1,2,3\n0,1\n", "line 2: 2 fields, expected 3" },
    { "1,2,x\n", "line 1 column 3: 'x' is not a finite number" },
    { "1,2,nan\n", "'nan' is not a finite number" },
    { "5,2,3\n", "label 5 is out of range: allowed 0 to 2" },
    { "1,2\nabc,3\n", "line 2 column 1: 'abc' is not a whole-number label" },
    { "", "empty: no data rows" },
    { "label,x\n", "empty: no data rows" },
    { "1\n", "no feature columns" },
};

START_TEST(test_csv_bad)
{
    write_text("train.csv", csv_bads[_i].text);
    struct dataset d;
    char err[DDT_ERRLEN], path[128];
    snprintf(path, sizeof path, "%s/train.csv", dir);
    ck_assert_int_eq(dataset_load(&d, path, "train", 3, err), -1);
    ck_assert_msg(strstr(err, csv_bads[_i].says) != NULL, "'%s': %s", csv_bads[_i].text, err);
    ck_assert(strstr(err, path) != NULL);
}
END_TEST

START_TEST(test_stats_and_gather)
{
    uint8_t x[3 * 2] = { 0, 7, 2, 7, 4, 7 };
    int32_t y[3] = { 0, 1, 2 };
    struct dataset d = { .type = SAMPLE_U8, .n = 3, .dim = 2, .classes = 3, .x = x, .y = y };
    float mean[2], inv[2];
    dataset_feature_stats(&d, mean, inv);
    ck_assert_float_eq_tol(mean[0], 2.0f, 1e-6);
    ck_assert_float_eq_tol(inv[0], (float)(1 / sqrt(8.0 / 3)), 1e-6);
    ck_assert_float_eq_tol(mean[1], 7.0f, 1e-6);
    ck_assert_float_eq(inv[1], 1.0f); /* constant feature */
    uint32_t idx[2] = { 2, 0 };
    float out[4];
    int32_t lab[2];
    dataset_gather(out, lab, &d, idx, 2, mean, inv);
    ck_assert_float_eq_tol(out[0], (4 - 2) * inv[0], 1e-6);
    ck_assert_float_eq(out[1], 0.0f);
    ck_assert_float_eq_tol(out[2], -2 * inv[0], 1e-6);
    ck_assert_int_eq(lab[0], 2);
    ck_assert_int_eq(lab[1], 0);
    dataset_truncate(&d, 2);
    ck_assert_uint_eq(d.n, 2);
}
END_TEST

START_TEST(test_fashion_mnist)
{
    struct stat st;
    if (stat("/usr/share/datasets/fashion-mnist", &st) != 0)
        return; /* the package is not installed here */
    struct dataset d;
    char err[DDT_ERRLEN];
    ck_assert_msg(dataset_load(&d, "fashion-mnist", "test", 10, err) == 0, "%s", err);
    ck_assert_uint_eq(d.n, 10000);
    ck_assert_uint_eq(d.dim, 784);
    int counts[10] = { 0 };
    for (size_t i = 0; i < d.n; i++)
        counts[d.y[i]]++;
    for (int k = 0; k < 10; k++)
        ck_assert_int_eq(counts[k], 1000);
    dataset_free(&d);
    ck_assert_int_eq(dataset_load(&d, "fashion-mnist", "train", 5, err), -1);
    ck_assert_msg(strstr(err, "allowed 0 to 4") != NULL, "%s", err);
}
END_TEST

Suite *dataset_suite(void)
{
    Suite *s = suite_create("dataset");
    TCase *tc = tcase_create("readers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_idx_good, 0, 2);
    tcase_add_loop_test(tc, test_idx_damaged, 0, (int)(sizeof damages / sizeof damages[0]));
    tcase_add_test(tc, test_idx_label_out_of_range);
    tcase_add_test(tc, test_idx_missing);
    tcase_add_test(tc, test_csv_good);
    tcase_add_loop_test(tc, test_csv_bad, 0, (int)(sizeof csv_bads / sizeof csv_bads[0]));
    tcase_add_test(tc, test_stats_and_gather);
    tcase_add_test(tc, test_fashion_mnist);
    suite_add_tcase(s, tc);
    return s;
}
