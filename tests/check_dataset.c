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

#include "check_util.h"
#include "dataset.h"
#include "suites.h"

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

static char dir[64];

static void setup(void)
{
    tu_tmpdir(dir, sizeof dir, "data");
}

static void teardown(void)
{
    tu_rmtree(dir);
}

/* DIR/name into a caller's buffer. */
static const char *at(char *buf, size_t len, const char *name)
{
    return tu_path(buf, len, dir, name);
}

static void put_be32(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Writes bytes to DIR/name, gzip-compressed when gz. */
static void write_bytes(const char *name, const void *data, size_t len, int gz)
{
    char path[256];
    at(path, sizeof path, name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        if (len)
            ck_assert_int_eq(gzwrite(f, data, (unsigned)len), (int)len);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        tu_write_file(path, data, len);
    }
}

static void write_text(const char *name, const char *text)
{
    write_bytes(name, text, strlen(text), 0);
}

/* n 2x3 images (pixel k of image i = 10 i + k) with labels i % 3, as
 * SUB/PREFIX-{images-idx3,labels-idx1}-ubyte[.gz]; bad_label puts a 7 last. */
static void write_idx_pair(const char *sub, const char *prefix, int n, int gz, int bad_label)
{
    unsigned char img[16 + 64 * 6], lab[8 + 64];
    ck_assert_int_le(n, 64);
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
    char name[128];
    snprintf(name, sizeof name, "%s%s%s-images-idx3-ubyte%s", sub, *sub ? "/" : "", prefix,
             gz ? ".gz" : "");
    write_bytes(name, img, 16 + (size_t)n * 6, gz);
    snprintf(name, sizeof name, "%s%s%s-labels-idx1-ubyte%s", sub, *sub ? "/" : "", prefix,
             gz ? ".gz" : "");
    write_bytes(name, lab, 8 + (size_t)n, gz);
}

static void check_pair_contents(const struct dataset *d, size_t n)
{
    ck_assert_int_eq(d->type, SAMPLE_U8);
    ck_assert_uint_eq(d->n, n);
    ck_assert_uint_eq(d->dim, 6);
    ck_assert_int_eq(d->classes, 3);
    const uint8_t *x = d->x;
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(d->y[i], (int)(i % 3));
        for (size_t k = 0; k < 6; k++)
            ck_assert_int_eq(x[i * 6 + k], (int)(10 * i + k));
    }
}

/* --- IDX ------------------------------------------------------------------- */

/* _i: 0 raw, 1 gzip. */
START_TEST(test_idx_good)
{
    write_idx_pair("", "train", 5, _i, 0);
    struct dataset d;
    char err[DDT_ERRLEN] = "", ip[256], lp[256];
    snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte%s", dir, _i ? ".gz" : "");
    snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte%s", dir, _i ? ".gz" : "");
    ck_assert_msg(dataset_load_idx(&d, ip, lp, 3, 0, err, sizeof err) == 0, "%s", err);
    check_pair_contents(&d, 5);
    dataset_free(&d);
    ck_assert_ptr_null(d.x);
    ck_assert_ptr_null(d.y);
    ck_assert_uint_eq(d.n, 0);
    /* only the first samples are held; more than there are is all */
    ck_assert_msg(dataset_load_idx(&d, ip, lp, 3, 2, err, sizeof err) == 0, "%s", err);
    check_pair_contents(&d, 2);
    dataset_free(&d);
    ck_assert_msg(dataset_load_idx(&d, ip, lp, 3, 9, err, sizeof err) == 0, "%s", err);
    check_pair_contents(&d, 5);
    dataset_free(&d);
    /* a bad label past the kept samples is still found */
    write_idx_pair("", "train", 5, _i, 1);
    ck_assert_int_eq(dataset_load_idx(&d, ip, lp, 3, 2, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "sample 4 has label 7") != NULL, "%s", err);
}
END_TEST

START_TEST(test_idx_vectors)
{
    /* 0x0802: three vectors of 4 */
    unsigned char img[12 + 12] = { 0, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 4 };
    unsigned char lab[8 + 3] = { 0, 0, 8, 1, 0, 0, 0, 3, 1, 0, 1 };
    for (int k = 0; k < 12; k++)
        img[12 + k] = (unsigned char)(200 + k);
    write_bytes("v-images", img, sizeof img, 1);
    write_bytes("v-labels", lab, sizeof lab, 0);
    struct dataset d;
    char err[DDT_ERRLEN] = "", ip[256], lp[256];
    ck_assert_msg(dataset_load_idx(&d, at(ip, sizeof ip, "v-images"), at(lp, sizeof lp, "v-labels"),
                                   2, 0, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_uint_eq(d.n, 3);
    ck_assert_uint_eq(d.dim, 4);
    ck_assert_int_eq(((uint8_t *)d.x)[11], 211);
    ck_assert_int_eq(d.y[0], 1);
    ck_assert_int_eq(d.y[1], 0);
    dataset_free(&d);
}
END_TEST

struct damage {
    const char *what;
    unsigned char bytes[32];
    size_t len;
    const char *says;
};

/* Damaged images files, each paired with good labels for 2 samples. */
static const struct damage image_damages[] = {
    { "wrong magic", { 0, 0, 8, 9, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2 }, 18,
      "wrong magic 0x00000809: expected 0x00000803 or 0x00000802" },
    { "float type", { 0, 0, 0x0d, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2 }, 18,
      "wrong magic 0x00000d03" },
    { "labels as images", { 0, 0, 8, 1, 0, 0, 0, 2, 0, 1 }, 10, "looks like a labels file" },
    { "truncated data", { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3 }, 19,
      "truncated: expected 8 bytes of data, found 3" },
    { "no data", { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2 }, 16,
      "truncated: expected 8 bytes of data, found 0" },
    { "trailing bytes", { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3 }, 19,
      "trailing bytes: expected 2 bytes of data, found 3" },
    { "truncated header", { 0, 0, 8, 3, 0, 0, 0, 2 }, 8, "truncated: the header needs 16 bytes" },
    { "truncated magic", { 0, 0 }, 2, "truncated: 2 bytes is too short" },
    { "zero dimension", { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1 }, 16, "dimension 2 is 0" },
    { "zero count", { 0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1 }, 16, "dimension 1 is 0" },
    { "overflowing dimensions",
      { 0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 16,
      "overflow" },
    { "count mismatch", { 0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3 }, 19,
      "holds 3 images but" },
    { "empty", { 0 }, 0, "empty file" },
};

#define N_IMAGE_DAMAGES (int)(sizeof image_damages / sizeof image_damages[0])

/* _i: damage _i / 2, gzip-compressed when _i is odd. */
START_TEST(test_idx_damaged_images)
{
    const struct damage *dm = &image_damages[_i / 2];
    int gz = _i % 2;
    unsigned char lab[10] = { 0, 0, 8, 1, 0, 0, 0, 2, 0, 1 };
    const char *iname = gz ? "images.gz" : "images";
    write_bytes(iname, dm->bytes, dm->len, gz);
    write_bytes("labels", lab, sizeof lab, 0);
    /* keeping only the first sample still reads and checks the whole file */
    for (size_t keep = 0; keep < 2; keep++) {
        struct dataset d;
        char err[DDT_ERRLEN] = "", ip[256], lp[256];
        ck_assert_int_eq(dataset_load_idx(&d, at(ip, sizeof ip, iname),
                                          at(lp, sizeof lp, "labels"), 3, keep, err, sizeof err),
                         -1);
        ck_assert_msg(strstr(err, dm->says) != NULL, "%s (gz %d, keep %zu): '%s'", dm->what, gz,
                      keep, err);
        ck_assert_msg(strncmp(err, ip, strlen(ip)) == 0, "%s: does not start with the path: '%s'",
                      dm->what, err);
        ck_assert_ptr_null(d.x);
        ck_assert_ptr_null(d.y);
    }
}
END_TEST

/* Damaged labels files, each paired with good images of 2 samples of 1x1. */
static const struct damage label_damages[] = {
    { "images as labels", { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2 }, 18,
      "wrong magic 0x00000803: expected 0x00000801 (IDX of unsigned bytes) (this looks like an images file)" },
    { "truncated", { 0, 0, 8, 1, 0, 0, 0, 2, 0 }, 9, "truncated: expected 2 bytes of data, found 1" },
    { "trailing", { 0, 0, 8, 1, 0, 0, 0, 2, 0, 1, 2, 2, 2 }, 13,
      "trailing bytes: expected 2 bytes of data, found 5" },
    { "out of range", { 0, 0, 8, 1, 0, 0, 0, 2, 0, 200 }, 10, "sample 1 has label 200: allowed 0 to 2" },
    { "empty", { 0 }, 0, "empty file" },
};

#define N_LABEL_DAMAGES (int)(sizeof label_damages / sizeof label_damages[0])

START_TEST(test_idx_damaged_labels)
{
    const struct damage *dm = &label_damages[_i / 2];
    int gz = _i % 2;
    unsigned char img[18] = { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 5, 6 };
    const char *lname = gz ? "labels.gz" : "labels";
    write_bytes("images", img, sizeof img, 0);
    write_bytes(lname, dm->bytes, dm->len, gz);
    for (size_t keep = 0; keep < 2; keep++) {
        struct dataset d;
        char err[DDT_ERRLEN] = "", ip[256], lp[256];
        ck_assert_int_eq(dataset_load_idx(&d, at(ip, sizeof ip, "images"),
                                          at(lp, sizeof lp, lname), 3, keep, err, sizeof err),
                         -1);
        ck_assert_msg(strstr(err, dm->says) != NULL, "%s (gz %d, keep %zu): '%s'", dm->what, gz,
                      keep, err);
        ck_assert_msg(strncmp(err, lp, strlen(lp)) == 0, "%s: does not start with the path: '%s'",
                      dm->what, err);
    }
}
END_TEST

START_TEST(test_idx_count_mismatch)
{
    write_idx_pair("", "a", 4, 1, 0);
    write_idx_pair("", "b", 3, 1, 0);
    struct dataset d;
    char err[DDT_ERRLEN] = "", ip[256], lp[256];
    at(ip, sizeof ip, "a-images-idx3-ubyte.gz");
    at(lp, sizeof lp, "b-labels-idx1-ubyte.gz");
    ck_assert_int_eq(dataset_load_idx(&d, ip, lp, 3, 0, err, sizeof err), -1);
    char want[600];
    snprintf(want, sizeof want, "%s holds 4 images but %s holds 3 labels", ip, lp);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_idx_label_out_of_range)
{
    write_idx_pair("", "train", 4, 1, 1);
    struct dataset d;
    char err[DDT_ERRLEN] = "", ip[256], lp[256];
    at(ip, sizeof ip, "train-images-idx3-ubyte.gz");
    at(lp, sizeof lp, "train-labels-idx1-ubyte.gz");
    ck_assert_int_eq(dataset_load_idx(&d, ip, lp, 3, 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "sample 3 has label 7: allowed 0 to 2") != NULL, "%s", err);
    ck_assert_msg(strncmp(err, lp, strlen(lp)) == 0, "%s", err);
    /* the same files are fine with enough classes */
    ck_assert_msg(dataset_load_idx(&d, ip, lp, 8, 0, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(d.y[3], 7);
    dataset_free(&d);
    ck_assert_int_eq(dataset_load_idx(&d, ip, lp, 0, 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "at least 1") != NULL, "%s", err);
}
END_TEST

START_TEST(test_idx_unreadable)
{
    write_idx_pair("", "train", 2, 0, 0);
    struct dataset d;
    char err[DDT_ERRLEN] = "", ip[256], lp[256], nowhere[256];
    at(ip, sizeof ip, "train-images-idx3-ubyte");
    at(lp, sizeof lp, "train-labels-idx1-ubyte");
    at(nowhere, sizeof nowhere, "nowhere");
    ck_assert_int_eq(dataset_load_idx(&d, nowhere, lp, 3, 0, err, sizeof err), -1);
    ck_assert_msg(strncmp(err, nowhere, strlen(nowhere)) == 0 && strstr(err, "No such file"), "%s",
                  err);
    ck_assert_int_eq(dataset_load_idx(&d, ip, nowhere, 3, 0, err, sizeof err), -1);
    ck_assert_msg(strncmp(err, nowhere, strlen(nowhere)) == 0 && strstr(err, "No such file"), "%s",
                  err);
    /* a folder is refused by its type, before any read */
    ck_assert_int_eq(dataset_load_idx(&d, dir, lp, 3, 0, err, sizeof err), -1);
    ck_assert_msg(strncmp(err, dir, strlen(dir)) == 0 &&
                      strstr(err, "not a regular file (it is a directory)"),
                  "%s", err);
    /* a damaged gzip stream */
    unsigned char junk[40] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff };
    write_bytes("junk.gz", junk, sizeof junk, 0);
    char jp[256];
    at(jp, sizeof jp, "junk.gz");
    ck_assert_int_eq(dataset_load_idx(&d, jp, lp, 3, 0, err, sizeof err), -1);
    ck_assert_msg(strncmp(err, jp, strlen(jp)) == 0 && strstr(err, "read error"), "%s", err);
    /* a gzip stream cut short in the middle of the pixels */
    unsigned char big[16 + 4000];
    memset(big, 0, sizeof big);
    put_be32(big, 0x0803);
    put_be32(big + 4, 2);
    put_be32(big + 8, 40);
    put_be32(big + 12, 50);
    for (size_t k = 16; k < sizeof big; k++)
        big[k] = (unsigned char)(k * 7919 % 251);
    write_bytes("cut.gz", big, sizeof big, 1);
    char cp[256];
    at(cp, sizeof cp, "cut.gz");
    struct stat st;
    ck_assert_int_eq(stat(cp, &st), 0);
    ck_assert_int_eq(truncate(cp, st.st_size / 2), 0);
    ck_assert_int_eq(dataset_load_idx(&d, cp, lp, 3, 0, err, sizeof err), -1);
    ck_assert_msg(strncmp(err, cp, strlen(cp)) == 0, "%s", err);
}
END_TEST

/* --- CSV ------------------------------------------------------------------- */

START_TEST(test_csv_good)
{
    const char *texts[] = {
        "label,a,b\n1, 0.5, -2\n0,1e-3,4\n\n2,3,3\n",
        "1,0.5,-2\r\n0,1e-3,4\r\n  \r\n2,3,3", /* no header, CRLF, no final newline */
    };
    for (int t = 0; t < 2; t++) {
        write_text("train.csv", texts[t]);
        struct dataset d;
        char err[DDT_ERRLEN] = "", path[256];
        ck_assert_msg(dataset_load_csv(&d, at(path, sizeof path, "train.csv"), 3, 0, err, sizeof err) == 0, "%s",
                      err);
        ck_assert_int_eq(d.type, SAMPLE_F32);
        ck_assert_uint_eq(d.n, 3);
        ck_assert_uint_eq(d.dim, 2);
        ck_assert_int_eq(d.classes, 3);
        const float want[6] = { 0.5f, -2.0f, 1e-3f, 4.0f, 3.0f, 3.0f };
        for (int k = 0; k < 6; k++)
            ck_assert_float_eq(((float *)d.x)[k], want[k]);
        ck_assert_int_eq(d.y[0], 1);
        ck_assert_int_eq(d.y[1], 0);
        ck_assert_int_eq(d.y[2], 2);
        dataset_free(&d);
        ck_assert_msg(dataset_load_csv(&d, path, 3, 2, err, sizeof err) == 0, "%s", err);
        ck_assert_uint_eq(d.n, 2);
        ck_assert_float_eq(((float *)d.x)[3], 4.0f);
        ck_assert_int_eq(d.y[1], 0);
        dataset_free(&d);
    }
}
END_TEST

struct csv_bad {
    const char *text;
    const char *says;
};

static const struct csv_bad csv_bads[] = {
    { "1,2,3\n0,1\n", "line 2: 2 fields, expected 3" },
    { "label,a,b\n1,2\n", "line 2: 2 fields, expected 3" },
    { "1,2,3\n0,1,2,3\n", "line 2: 4 fields, expected 3" },
    { "1,2,x\n", "line 1 column 3: 'x' is not a finite number" },
    { "1,2,\n", "line 1 column 3: '' is not a finite number" },
    { "1,2,3\n\n1,2,3.5.1\n", "line 3 column 3: '3.5.1' is not a finite number" },
    { "1,2,nan\n", "'nan' is not a finite number" },
    { "1,2,1e39\n", "'1e39' is not a finite number" },
    { "5,2,3\n", "line 1 column 1: label 5 is out of range: allowed 0 to 2" },
    { "-1,2,3\n", "label -1 is out of range" },
    { "1,2\nabc,3\n", "line 2 column 1: 'abc' is not a whole-number label" },
    { "1.0,2\n", "line 1 column 1: '1.0' is not a whole-number label" },
    { "99999999999999999999,2\n", "is not a whole-number label" },
    { "", "empty: no data rows" },
    { "\n\n", "empty: no data rows" },
    { "label,x\n", "empty: no data rows" },
    { "1\n", "line 1: no feature columns" },
};

START_TEST(test_csv_bad)
{
    write_text("train.csv", csv_bads[_i].text);
    struct dataset d;
    char err[DDT_ERRLEN] = "", path[256];
    at(path, sizeof path, "train.csv");
    /* keeping only the first row still checks every row */
    for (size_t keep = 0; keep < 2; keep++) {
        ck_assert_int_eq(dataset_load_csv(&d, path, 3, keep, err, sizeof err), -1);
        ck_assert_msg(strstr(err, csv_bads[_i].says) != NULL, "'%s' (keep %zu): %s",
                      csv_bads[_i].text, keep, err);
        ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "%s", err);
        ck_assert_ptr_null(d.x);
    }
}
END_TEST

START_TEST(test_csv_tiny_values)
{
    /* underflow is not an error: the value is just 0 */
    write_text("train.csv", "0,1e-400,-0,0x10\n");
    struct dataset d;
    char err[DDT_ERRLEN] = "", path[256];
    ck_assert_msg(dataset_load_csv(&d, at(path, sizeof path, "train.csv"), 1, 0, err, sizeof err) == 0, "%s", err);
    ck_assert_float_eq(((float *)d.x)[0], 0.0f);
    ck_assert_float_eq(((float *)d.x)[2], 16.0f);
    dataset_free(&d);
}
END_TEST

START_TEST(test_csv_unreadable)
{
    struct dataset d;
    char err[DDT_ERRLEN] = "", path[256];
    ck_assert_int_eq(dataset_load_csv(&d, at(path, sizeof path, "nowhere.csv"), 3, 0, err, sizeof err), -1);
    ck_assert_msg(strncmp(err, path, strlen(path)) == 0 && strstr(err, "No such file"), "%s", err);
}
END_TEST

/* --- dataset_load ---------------------------------------------------------- */

/* _i: 0 a folder of .gz files, 1 a folder of raw files. */
START_TEST(test_load_folder)
{
    char sub[256];
    ck_assert_int_eq(mkdir(at(sub, sizeof sub, "d"), 0700), 0);
    write_idx_pair("d", "train", 5, _i == 0, 0);
    write_idx_pair("d", "t10k", 2, _i == 0, 0);
    struct dataset d;
    char err[DDT_ERRLEN] = "";
    ck_assert_msg(dataset_load(&d, sub, "train", 3, 0, err, sizeof err) == 0, "%s", err);
    check_pair_contents(&d, 5);
    dataset_free(&d);
    ck_assert_msg(dataset_load(&d, sub, "test", 3, 0, err, sizeof err) == 0, "%s", err);
    check_pair_contents(&d, 2);
    dataset_free(&d);
    /* errors from the reader name the file it picked */
    write_idx_pair("d", "train", 5, _i == 0, 1);
    ck_assert_int_eq(dataset_load(&d, sub, "train", 3, 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, _i == 0 ? "train-labels-idx1-ubyte.gz: sample 4 has label 7"
                                      : "train-labels-idx1-ubyte: sample 4 has label 7"),
                  "%s", err);
}
END_TEST

START_TEST(test_load_mixed_folder)
{
    /* gzip images beside raw labels */
    write_idx_pair("", "train", 4, 1, 0);
    char p[256];
    ck_assert_int_eq(unlink(at(p, sizeof p, "train-labels-idx1-ubyte.gz")), 0);
    unsigned char lab[8 + 4] = { 0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 2, 0 };
    write_bytes("train-labels-idx1-ubyte", lab, sizeof lab, 0);
    struct dataset d;
    char err[DDT_ERRLEN] = "";
    ck_assert_msg(dataset_load(&d, dir, "train", 3, 0, err, sizeof err) == 0, "%s", err);
    check_pair_contents(&d, 4);
    dataset_free(&d);
}
END_TEST

START_TEST(test_load_errors)
{
    struct dataset d;
    char err[DDT_ERRLEN] = "", p[256];
    /* an empty folder: say which file is missing */
    ck_assert_int_eq(dataset_load(&d, dir, "train", 10, 0, err, sizeof err), -1);
    ck_assert_msg(strncmp(err, dir, strlen(dir)) == 0 && strstr(err, "no train-images-idx3-ubyte[.gz]"),
                  "%s", err);
    write_idx_pair("", "t10k", 2, 0, 0);
    ck_assert_int_eq(unlink(at(p, sizeof p, "t10k-labels-idx1-ubyte")), 0);
    ck_assert_int_eq(dataset_load(&d, dir, "test", 10, 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no t10k-labels-idx1-ubyte[.gz]"), "%s", err);
    /* no such folder */
    ck_assert_int_eq(dataset_load(&d, at(p, sizeof p, "nowhere"), "train", 10, 0, err, sizeof err), -1);
    ck_assert_msg(strncmp(err, p, strlen(p)) == 0 && strstr(err, "No such file"), "%s", err);
    /* a plain file that is not .csv */
    write_text("data.txt", "1,2\n");
    ck_assert_int_eq(dataset_load(&d, at(p, sizeof p, "data.txt"), "train", 10, 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "neither a folder of IDX files nor a .csv file"), "%s", err);
    /* a split that does not exist */
    ck_assert_int_eq(dataset_load(&d, dir, "validation", 10, 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "unknown split 'validation'"), "%s", err);
}
END_TEST

START_TEST(test_load_csv_splits)
{
    char p[256];
    /* only the file name's last "train" changes, not the folder's */
    ck_assert_int_eq(mkdir(at(p, sizeof p, "train"), 0700), 0);
    write_text("train/my-train-train.csv", "0,1\n1,2\n1,3\n");
    write_text("train/my-train-test.csv", "h,x\n1,9\n");
    struct dataset d;
    char err[DDT_ERRLEN] = "";
    at(p, sizeof p, "train/my-train-train.csv");
    ck_assert_msg(dataset_load(&d, p, "train", 2, 0, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(d.n, 3);
    dataset_free(&d);
    ck_assert_msg(dataset_load(&d, p, "test", 2, 0, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(d.n, 1);
    ck_assert_float_eq(((float *)d.x)[0], 9.0f);
    dataset_free(&d);
    /* no "train" in the name: no way to find the test split */
    write_text("data.csv", "0,1\n");
    ck_assert_int_eq(dataset_load(&d, at(p, sizeof p, "data.csv"), "test", 2, 0, err, sizeof err), -1);
    ck_assert_msg(strncmp(err, p, strlen(p)) == 0 && strstr(err, "no 'train'"), "%s", err);
    /* the test file named but absent */
    write_text("only-train.csv", "0,1\n");
    ck_assert_int_eq(dataset_load(&d, at(p, sizeof p, "only-train.csv"), "test", 2, 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "only-test.csv") && strstr(err, "No such file"), "%s", err);
    /* a test set named apart (--test-data) is the file as it is */
    ck_assert_msg(dataset_load_test(&d, at(p, sizeof p, "data.csv"), LABEL_FINE, 2, 0, err,
                                    sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(d.n, 1);
    dataset_free(&d);
}
END_TEST

/* --- statistics and batches ----------------------------------------------- */

START_TEST(test_stats_u8)
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
}
END_TEST

START_TEST(test_stats_f32_far_from_zero)
{
    /* sum(x^2)/n - mean^2 would lose the variance of 2/3 in 1e14 */
    float x[3] = { 1e7f, 1e7f + 1, 1e7f + 2 };
    int32_t y[3] = { 0, 0, 0 };
    struct dataset d = { .type = SAMPLE_F32, .n = 3, .dim = 1, .classes = 1, .x = x, .y = y };
    float mean, inv;
    dataset_feature_stats(&d, &mean, &inv);
    ck_assert_float_eq(mean, 1e7f + 1);
    ck_assert_float_eq_tol(inv, (float)sqrt(1.5), 1e-6);
}
END_TEST

START_TEST(test_stats_many_features)
{
    /* more features than one block of accumulators, against a direct sum */
    enum { N = 7, DIM = 600 };
    static uint8_t x[N * DIM];
    int32_t y[N] = { 0 };
    for (size_t k = 0; k < sizeof x; k++)
        x[k] = (uint8_t)(k * 2654435761u >> 24);
    struct dataset d = { .type = SAMPLE_U8, .n = N, .dim = DIM, .classes = 1, .x = x, .y = y };
    static float mean[DIM], inv[DIM];
    dataset_feature_stats(&d, mean, inv);
    for (int f = 0; f < DIM; f++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < N; i++)
            s += x[i * DIM + f];
        double m = s / N;
        for (int i = 0; i < N; i++)
            s2 += (x[i * DIM + f] - m) * (x[i * DIM + f] - m);
        double sd = sqrt(s2 / N);
        ck_assert_float_eq_tol(mean[f], (float)m, 1e-4);
        ck_assert_float_eq_tol(inv[f], sd < 1e-6 ? 1.0f : (float)(1 / sd), 1e-6);
    }
}
END_TEST

START_TEST(test_stats_empty)
{
    struct dataset d = { .type = SAMPLE_F32, .n = 0, .dim = 2, .classes = 1 };
    float mean[2] = { 5, 5 }, inv[2] = { 5, 5 };
    dataset_feature_stats(&d, mean, inv);
    ck_assert_float_eq(mean[1], 0.0f);
    ck_assert_float_eq(inv[1], 1.0f);
}
END_TEST

START_TEST(test_gather_u8)
{
    uint8_t x[3 * 2] = { 0, 7, 2, 7, 4, 7 };
    int32_t y[3] = { 0, 1, 2 };
    struct dataset d = { .type = SAMPLE_U8, .n = 3, .dim = 2, .classes = 3, .x = x, .y = y };
    float mean[2] = { 2.0f, 7.0f }, inv[2] = { 0.5f, 1.0f };
    uint32_t idx[3] = { 2, 0, 2 };
    float out[6];
    int32_t lab[3];
    dataset_gather(out, lab, &d, idx, 3, mean, inv);
    const float want[6] = { 1.0f, 0.0f, -1.0f, 0.0f, 1.0f, 0.0f };
    for (int k = 0; k < 6; k++)
        ck_assert_float_eq(out[k], want[k]);
    ck_assert_int_eq(lab[0], 2);
    ck_assert_int_eq(lab[1], 0);
    ck_assert_int_eq(lab[2], 2);
    /* after the stats the batch of everything has mean 0 and std 1 */
    dataset_feature_stats(&d, mean, inv);
    uint32_t all[3] = { 0, 1, 2 };
    dataset_gather(out, lab, &d, all, 3, mean, inv);
    double s = 0, s2 = 0;
    for (int i = 0; i < 3; i++) {
        s += out[2 * i];
        s2 += out[2 * i] * out[2 * i];
        ck_assert_float_eq(out[2 * i + 1], 0.0f);
    }
    ck_assert_double_eq_tol(s / 3, 0.0, 1e-6);
    ck_assert_double_eq_tol(s2 / 3, 1.0, 1e-6);
}
END_TEST

START_TEST(test_gather_f32)
{
    float x[2 * 3] = { 1, 2, 3, -1, -2, -3 };
    int32_t y[2] = { 4, 5 };
    struct dataset d = { .type = SAMPLE_F32, .n = 2, .dim = 3, .classes = 6, .x = x, .y = y };
    float mean[3] = { 1, 0, -1 }, inv[3] = { 2, 1, 0.5f };
    uint32_t idx[1] = { 1 };
    float out[3];
    int32_t lab[1];
    dataset_gather(out, lab, &d, idx, 1, mean, inv);
    ck_assert_float_eq(out[0], -4.0f);
    ck_assert_float_eq(out[1], -2.0f);
    ck_assert_float_eq(out[2], -1.0f);
    ck_assert_int_eq(lab[0], 5);
}
END_TEST

/* --- the real thing -------------------------------------------------------- */

START_TEST(test_fashion_mnist)
{
    struct stat st;
    if (stat(FASHION_MNIST_DIR, &st) != 0)
        return; /* dataset-fashion-mnist is not installed here */
    struct dataset d;
    char err[DDT_ERRLEN] = "";
    ck_assert_msg(dataset_load(&d, "fashion-mnist", "test", 10, 0, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(d.type, SAMPLE_U8);
    ck_assert_uint_eq(d.n, 10000);
    ck_assert_uint_eq(d.dim, 784);
    ck_assert_int_eq(d.classes, 10);
    int counts[10] = { 0 };
    for (size_t i = 0; i < d.n; i++)
        counts[d.y[i]]++;
    for (int k = 0; k < 10; k++)
        ck_assert_int_eq(counts[k], 1000);
    static float mean[784], inv[784];
    dataset_feature_stats(&d, mean, inv);
    double avg = 0;
    for (int f = 0; f < 784; f++)
        avg += mean[f] / 784;
    ck_assert_msg(avg > 60 && avg < 80, "mean pixel %g", avg); /* about 73 */
    dataset_free(&d);
}
END_TEST

/* --val-fraction: the held-out rows move to the end in place, each group in
 * its original order, rows and labels together; the split is the seed's,
 * disjoint, and round(F n) rows. */
START_TEST(test_hold_out)
{
    enum { N = 50, DIM = 3 };
    struct dataset d = { .type = SAMPLE_U8, .n = N, .dim = DIM, .classes = 100 };
    d.shape = (struct shape){ DIM, 1, 1 };
    uint8_t *x = malloc(N * DIM);
    d.y = malloc(N * sizeof *d.y);
    ck_assert(x && d.y);
    for (int i = 0; i < N; i++) {
        d.y[i] = i;
        for (int f = 0; f < DIM; f++)
            x[i * DIM + f] = (uint8_t)(i * DIM + f);
    }
    d.x = x;
    struct dataset held, again;
    char err[256];
    ck_assert_int_eq(dataset_hold_out_fraction(&d, &held, 0.2, 7, err, sizeof err), 0);
    ck_assert_uint_eq(held.n, 10);
    ck_assert_uint_eq(d.n, 40);
    ck_assert(held.view && !d.view);
    int seen[N] = { 0 };
    for (size_t i = 0; i < N; i++) {
        int32_t row = d.y[i]; /* the whole array: kept rows, then held ones */
        ck_assert_int_eq(x[i * DIM + 2], row * DIM + 2);
        seen[row]++;
        if (i > 0 && i != 40)
            ck_assert_int_lt(d.y[i - 1], row);
    }
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(seen[i], 1);
    ck_assert_ptr_eq(held.y, d.y + 40);
    /* the same seed on a fresh copy holds out the same rows */
    struct dataset e = d;
    e.n = N;
    e.x = malloc(N * DIM);
    e.y = malloc(N * sizeof *e.y);
    for (int i = 0; i < N; i++) {
        e.y[i] = i;
        for (int f = 0; f < DIM; f++)
            ((uint8_t *)e.x)[i * DIM + f] = (uint8_t)(i * DIM + f);
    }
    ck_assert_int_eq(dataset_hold_out_fraction(&e, &again, 0.2, 7, err, sizeof err), 0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(again.y[i], held.y[i]);
    dataset_free(&again);
    dataset_free(&e);
    /* nothing to hold out, or nothing left: refused */
    ck_assert_int_eq(dataset_hold_out_fraction(&d, &again, 0.001, 7, err, sizeof err), -1);
    ck_assert(strstr(err, "holds out 0"));
    dataset_free(&held);
    ck_assert_ptr_null(held.x);
    dataset_free(&d);
}
END_TEST

Suite *dataset_suite(void)
{
    Suite *s = suite_create("dataset");

    TCase *tc = tcase_create("idx");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_idx_good, 0, 2);
    tcase_add_test(tc, test_idx_vectors);
    tcase_add_loop_test(tc, test_idx_damaged_images, 0, 2 * N_IMAGE_DAMAGES);
    tcase_add_loop_test(tc, test_idx_damaged_labels, 0, 2 * N_LABEL_DAMAGES);
    tcase_add_test(tc, test_idx_count_mismatch);
    tcase_add_test(tc, test_idx_label_out_of_range);
    tcase_add_test(tc, test_idx_unreadable);
    suite_add_tcase(s, tc);

    tc = tcase_create("csv");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_csv_good);
    tcase_add_loop_test(tc, test_csv_bad, 0, (int)(sizeof csv_bads / sizeof csv_bads[0]));
    tcase_add_test(tc, test_csv_tiny_values);
    tcase_add_test(tc, test_csv_unreadable);
    suite_add_tcase(s, tc);

    tc = tcase_create("load");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_load_folder, 0, 2);
    tcase_add_test(tc, test_load_mixed_folder);
    tcase_add_test(tc, test_load_errors);
    tcase_add_test(tc, test_load_csv_splits);
    suite_add_tcase(s, tc);

    tc = tcase_create("stats");
    tcase_add_test(tc, test_stats_u8);
    tcase_add_test(tc, test_stats_f32_far_from_zero);
    tcase_add_test(tc, test_stats_many_features);
    tcase_add_test(tc, test_stats_empty);
    tcase_add_test(tc, test_gather_u8);
    tcase_add_test(tc, test_gather_f32);
    tcase_add_test(tc, test_hold_out);
    suite_add_tcase(s, tc);

    tc = tcase_create("fashion-mnist");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fashion_mnist);
    suite_add_tcase(s, tc);
    return s;
}
