/* Fuzz targets "idx" and "csv": the data set readers, directly and through
 * dataset_load (a folder of IDX files, a .csv file).
 *
 * An idx input is a pair of files in one buffer: a little-endian uint32 with
 * the images file's length, the images file, then the labels file. Seeds:
 * images (0x0803) and vectors (0x0802) with their labels, raw and gzip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dataset.h"
#include "fuzz.h"

#define CLASSES 3

static char idx_dir[4200], images_path[4300], labels_path[4300], csv_path[4200];

/* Checks what a reader accepted; -1 with a message when it is inconsistent. */
static int check_dataset(const struct dataset *d, const char *what)
{
    int bad = d->n == 0 || d->dim == 0 || !d->x || !d->y || d->classes != CLASSES;
    for (size_t i = 0; !bad && i < d->n; i++)
        bad = d->y[i] < 0 || d->y[i] >= CLASSES;
    if (bad)
        fprintf(stderr, "fuzz: %s accepted an inconsistent data set (n %zu, dim %zu)\n", what,
                d->n, d->dim);
    return bad ? -1 : 0;
}

/* ---- idx --------------------------------------------------------------------- */

static void be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void idx_file(struct fuzz_buf *out, uint32_t magic, const uint32_t *dims, int ndims)
{
    uint8_t head[16];
    size_t total = 1;
    be32(head, magic);
    for (int i = 0; i < ndims; i++) {
        be32(head + 4 + 4 * i, dims[i]);
        total *= dims[i];
    }
    fuzz_buf_set(out, head, 4 + 4 * (size_t)ndims);
    for (size_t i = 0; i < total; i++) {
        uint8_t v = magic == 0x801 ? (uint8_t)(i % CLASSES) : (uint8_t)(i * 37);
        fuzz_buf_insert(out, out->n, &v, 1);
    }
}

/* gzip of b, through a file as gzip tools write it. */
static int gzip_buf(struct fuzz_buf *b, const char *path)
{
    gzFile f = gzopen(path, "wb9");
    if (!f || gzwrite(f, b->p, (unsigned)b->n) != (int)b->n || gzclose(f) != Z_OK)
        return -1;
    return fuzz_read_file(path, b);
}

static void pack_pair(struct fuzz_buf *out, const struct fuzz_buf *img, const struct fuzz_buf *lab)
{
    uint8_t len[4];
    for (int i = 0; i < 4; i++)
        len[i] = (uint8_t)(img->n >> (8 * i));
    fuzz_buf_set(out, len, 4);
    fuzz_buf_insert(out, out->n, img->p, img->n);
    fuzz_buf_insert(out, out->n, lab->p, lab->n);
}

/* The two files of an input; a length past the end leaves no labels. */
static void unpack_pair(const uint8_t *p, size_t n, struct fuzz_buf *img, struct fuzz_buf *lab)
{
    size_t len = n < 4 ? 0 : (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
    size_t body = n < 4 ? 0 : n - 4;
    if (len > body)
        len = body;
    fuzz_buf_set(img, p + (n < 4 ? n : 4), len);
    fuzz_buf_set(lab, p + (n < 4 ? n : 4) + len, body - len);
}

static const char *const idx_dict[] = { "\x00\x00\x08\x03", "\x00\x00\x08\x01", "\x00\x00\x08\x02",
                                        "\x1f\x8b\x08\x00", NULL };

static int idx_setup(struct fuzz_corpus *seeds, const char *dir)
{
    snprintf(idx_dir, sizeof idx_dir, "%s/idx", dir);
    snprintf(images_path, sizeof images_path, "%s/train-images-idx3-ubyte", idx_dir);
    snprintf(labels_path, sizeof labels_path, "%s/train-labels-idx1-ubyte", idx_dir);
    char cmd[4300], gz[4300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", idx_dir);
    snprintf(gz, sizeof gz, "%s/seed.gz", dir);
    if (system(cmd) != 0)
        return -1;
    seeds->dict = idx_dict;
    struct fuzz_buf img = { 0 }, lab = { 0 }, pair = { 0 };
    const uint32_t images[] = { 5, 3, 2 }, vectors[] = { 4, 6 }, five[] = { 5 }, four[] = { 4 };
    int rc = 0;
    for (int zipped = 0; zipped < 2 && rc == 0; zipped++) {
        for (int kind = 0; kind < 2 && rc == 0; kind++) {
            idx_file(&img, kind ? 0x802 : 0x803, kind ? vectors : images, kind ? 2 : 3);
            idx_file(&lab, 0x801, kind ? four : five, 1);
            if (zipped && (gzip_buf(&img, gz) || gzip_buf(&lab, gz)))
                rc = -1;
            pack_pair(&pair, &img, &lab);
            fuzz_corpus_add(seeds, pair.p, pair.n);
        }
    }
    fuzz_buf_free(&img);
    fuzz_buf_free(&lab);
    fuzz_buf_free(&pair);
    return rc;
}

/* Mostly one of the two files mutated, now and then the pair as one buffer. */
static void idx_mutate(struct fuzz_rng *r, const struct fuzz_corpus *seeds, struct fuzz_buf *out)
{
    const struct fuzz_buf *s = fuzz_pick(r, seeds);
    if (fuzz_below(r, 10) == 0) {
        fuzz_buf_set(out, s->p, s->n);
        fuzz_mutate_buf(r, seeds, out);
        return;
    }
    struct fuzz_buf img = { 0 }, lab = { 0 }, other_img = { 0 }, other_lab = { 0 };
    unpack_pair(s->p, s->n, &img, &lab);
    if (fuzz_below(r, 5) == 0) { /* labels of another seed */
        const struct fuzz_buf *o = fuzz_pick(r, seeds);
        unpack_pair(o->p, o->n, &other_img, &other_lab);
        fuzz_buf_set(&lab, other_lab.p, other_lab.n);
    }
    fuzz_mutate_buf(r, seeds, fuzz_below(r, 5) < 3 ? &img : &lab);
    pack_pair(out, &img, &lab);
    fuzz_buf_free(&img);
    fuzz_buf_free(&lab);
    fuzz_buf_free(&other_img);
    fuzz_buf_free(&other_lab);
}

static int idx_run(const uint8_t *p, size_t n)
{
    struct fuzz_buf img = { 0 }, lab = { 0 };
    unpack_pair(p, n, &img, &lab);
    int rc = fuzz_write_file(images_path, img.p, img.n) || fuzz_write_file(labels_path, lab.p, lab.n)
                 ? -1 : 0;
    fuzz_buf_free(&img);
    fuzz_buf_free(&lab);
    if (rc)
        return -1;
    struct dataset d;
    char err[DDT_ERRLEN];
    if (dataset_load_idx(&d, images_path, labels_path, CLASSES, 2, err, sizeof err) == 0) {
        rc = check_dataset(&d, "dataset_load_idx");
        dataset_free(&d);
        if (rc)
            return -1;
    }
    if (dataset_load(&d, idx_dir, "train", CLASSES, 0, err, sizeof err))
        return 0;
    rc = check_dataset(&d, "dataset_load (IDX folder)");
    dataset_free(&d);
    return rc ? -1 : 1;
}

const struct fuzz_target fuzz_idx_target = {
    .name = "idx",
    .iters = 3000,
    .setup = idx_setup,
    .mutate = idx_mutate,
    .run = idx_run,
};

/* ---- csv --------------------------------------------------------------------- */

static const char *const csv_dict[] = { ",", "\n", "\r\n", "-", "1e39", "1e-50", "nan", "inf",
                                        "0x1p3", "2147483648", "label", " ", "\t", NULL };

static int csv_setup(struct fuzz_corpus *seeds, const char *dir)
{
    static const char *const texts[] = {
        "label,a,b,c\n0,1.5,2,3\n1,-3e2,4,0\n2,0,0,1e-3\n",
        "2,0.25,1\n0,1,2\n\n1,3,4\n",
        "y,x\r\n1,0.5\r\n0,-0.5\r\n",
        " 0 , 1 , 2 \n\t1,\t3,4\t\n",
    };
    snprintf(csv_path, sizeof csv_path, "%s/train.csv", dir);
    seeds->dict = csv_dict;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        fuzz_corpus_add(seeds, texts[i], strlen(texts[i]));
    return 0;
}

static int csv_run(const uint8_t *p, size_t n)
{
    if (fuzz_write_file(csv_path, p, n))
        return -1;
    struct dataset d;
    char err[DDT_ERRLEN];
    int rc;
    if (dataset_load_csv(&d, csv_path, CLASSES, 2, err, sizeof err) == 0) {
        rc = check_dataset(&d, "dataset_load_csv") || d.n > 2;
        dataset_free(&d);
        if (rc)
            return -1;
    }
    if (dataset_load(&d, csv_path, "train", CLASSES, 0, err, sizeof err))
        return 0;
    rc = check_dataset(&d, "dataset_load (CSV)");
    for (size_t i = 0; rc == 0 && i < d.n * d.dim; i++)
        if (!(((const float *)d.x)[i] == ((const float *)d.x)[i]) ||
            ((const float *)d.x)[i] - ((const float *)d.x)[i] != 0) {
            fprintf(stderr, "fuzz: dataset_load (CSV) accepted a feature that is not finite\n");
            rc = -1;
        }
    dataset_free(&d);
    return rc ? -1 : 1;
}

const struct fuzz_target fuzz_csv_target = {
    .name = "csv",
    .iters = 6000,
    .setup = csv_setup,
    .run = csv_run,
};
