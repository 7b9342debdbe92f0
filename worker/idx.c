/* IDX files (the MNIST family's format), raw or gzip-compressed, read with zlib. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dataset.h"
#include "regfile.h"

#define IDX_IMAGES 0x00000803u  /* unsigned bytes, (n, rows, cols) */
#define IDX_VECTORS 0x00000802u /* unsigned bytes, (n, dim) */
#define IDX_LABELS 0x00000801u  /* unsigned bytes, (n) */

/* gzread takes an unsigned and returns an int, so big payloads go in slices. */
#define IDX_SLICE (1u << 30)

/* One open IDX file after its header has been read. */
struct idx_file {
    const char *path;
    gzFile f;
    uint32_t magic;
    int ndims;
    uint32_t dims[3];
    size_t count;   /* dims[0] */
    size_t per;     /* product of the other dimensions (1 for labels) */
    size_t payload; /* count * per bytes of data announced by the header */
};

static void idx_close(struct idx_file *x)
{
    if (x->f)
        gzclose(x->f);
    x->f = NULL;
}

/* zlib's own messages already start with the path; keep only the reason. */
static const char *gz_reason(const struct idx_file *x, int saved_errno)
{
    int code;
    const char *msg = gzerror(x->f, &code);
    if (code == Z_ERRNO)
        return strerror(saved_errno);
    size_t n = strlen(x->path);
    if (!strncmp(msg, x->path, n) && msg[n] == ':' && msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

/* Reads up to len bytes; *got is how many arrived before the end of the file. */
static int idx_read(struct idx_file *x, void *buf, size_t len, size_t *got, char *err,
                    size_t errlen)
{
    uint8_t *p = buf;
    *got = 0;
    while (*got < len) {
        size_t want = len - *got < IDX_SLICE ? len - *got : IDX_SLICE;
        int n = gzread(x->f, p + *got, (unsigned)want);
        if (n < 0) {
            int saved = errno;
            snprintf(err, errlen, "%s: read error: %s", x->path, gz_reason(x, saved));
            return -1;
        }
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Swapped arguments are the likeliest cause of a wrong magic, so say so. */
static const char *magic_hint(uint32_t found, uint32_t expected)
{
    if (expected == IDX_LABELS && (found == IDX_IMAGES || found == IDX_VECTORS))
        return " (this looks like an images file)";
    if (expected != IDX_LABELS && found == IDX_LABELS)
        return " (this looks like a labels file)";
    return "";
}

/* Opens path and reads its header; want_alt is a second accepted magic or 0. */
static int idx_open(struct idx_file *x, const char *path, uint32_t want, uint32_t want_alt,
                    char *err, size_t errlen)
{
    memset(x, 0, sizeof *x);
    x->path = path;
    int fd = regfile_open(path, err, errlen);
    if (fd < 0)
        return -1;
    x->f = gzdopen(fd, "rb");
    if (!x->f) {
        /* zlib could not allocate its state */
        close(fd);
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(ENOMEM));
        return -1;
    }
    /* zlib's 8 KiB default makes inflating 47 MB of pixels needlessly slow */
    gzbuffer(x->f, 1u << 17);
    uint8_t head[4 + 4 * 3];
    size_t got;
    if (idx_read(x, head, 4, &got, err, errlen))
        goto fail;
    if (got == 0) {
        snprintf(err, errlen, "%s: empty file: expected an IDX header with magic 0x%08x", path,
                 want);
        goto fail;
    }
    if (got < 4) {
        snprintf(err, errlen, "%s: truncated: %zu bytes is too short for an IDX header", path,
                 got);
        goto fail;
    }
    x->magic = be32(head);
    if (x->magic != want && (want_alt == 0 || x->magic != want_alt)) {
        char alt[32] = "";
        if (want_alt)
            snprintf(alt, sizeof alt, " or 0x%08x", want_alt);
        snprintf(err, errlen,
                 "%s: wrong magic 0x%08x: expected 0x%08x%s (IDX of unsigned bytes)%s", path,
                 x->magic, want, alt, magic_hint(x->magic, want));
        goto fail;
    }
    x->ndims = head[3];
    size_t dims_len = 4 * (size_t)x->ndims;
    if (idx_read(x, head + 4, dims_len, &got, err, errlen))
        goto fail;
    if (got < dims_len) {
        snprintf(err, errlen, "%s: truncated: the header needs %zu bytes, the file has %zu",
                 path, 4 + dims_len, 4 + got);
        goto fail;
    }
    size_t total = 1;
    for (int i = 0; i < x->ndims; i++) {
        x->dims[i] = be32(head + 4 + 4 * i);
        if (x->dims[i] == 0) {
            snprintf(err, errlen, "%s: dimension %d is 0: the file holds no data", path,
                     i + 1);
            goto fail;
        }
        if (total > SIZE_MAX / x->dims[i]) {
            snprintf(err, errlen, "%s: the dimensions overflow the address space", path);
            goto fail;
        }
        total *= x->dims[i];
    }
    x->count = x->dims[0];
    x->per = total / x->count;
    x->payload = total;
    return 0;
fail:
    idx_close(x);
    return -1;
}

/* Fills buf with the payload's first keep bytes, reads the rest of it
 * (checked, not kept) and checks nothing follows it. */
static int idx_payload(struct idx_file *x, void *buf, size_t keep, char *err, size_t errlen)
{
    size_t got, total;
    if (idx_read(x, buf, keep, &got, err, errlen))
        return -1;
    total = got;
    uint8_t rest[1u << 16];
    while (total < x->payload && got > 0) {
        size_t want = x->payload - total < sizeof rest ? x->payload - total : sizeof rest;
        if (idx_read(x, rest, want, &got, err, errlen))
            return -1;
        total += got;
    }
    if (total < x->payload) {
        snprintf(err, errlen, "%s: truncated: expected %zu bytes of data, found %zu", x->path,
                 x->payload, total);
        return -1;
    }
    /* count the excess so the message says how far off the header is */
    size_t extra = 0;
    do {
        if (idx_read(x, rest, sizeof rest, &got, err, errlen))
            return -1;
        extra += got;
    } while (got == sizeof rest);
    if (extra) {
        snprintf(err, errlen, "%s: trailing bytes: expected %zu bytes of data, found %zu",
                 x->path, x->payload, x->payload + extra);
        return -1;
    }
    return 0;
}

/* A raw regular file's length is known before anything is read: check it
 * against the header (with idx_payload's messages) before allocating, so a
 * damaged header cannot make us allocate what the file does not hold. A
 * gzip stream is only checked as it inflates. */
static int idx_check_length(const struct idx_file *x, char *err, size_t errlen)
{
    struct stat st;
    if (!gzdirect(x->f) || stat(x->path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    size_t head = 4 + 4 * (size_t)x->ndims;
    size_t data = (uint64_t)st.st_size > head ? (size_t)st.st_size - head : 0;
    if (data != x->payload) {
        snprintf(err, errlen, "%s: %s: expected %zu bytes of data, found %zu", x->path,
                 data < x->payload ? "truncated" : "trailing bytes", x->payload, data);
        return -1;
    }
    return 0;
}

int dataset_load_idx(struct dataset *d, const char *images_path, const char *labels_path,
                     int classes, size_t max_samples, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    struct idx_file img = { 0 }, lab = { 0 };
    uint8_t *raw_labels = NULL;
    if (classes < 1) {
        snprintf(err, errlen, "%s: the number of classes must be at least 1, not %d",
                 labels_path, classes);
        return -1;
    }
    /* headers first, so a mismatch is reported before megabytes are inflated */
    if (idx_open(&img, images_path, IDX_IMAGES, IDX_VECTORS, err, errlen) ||
        idx_open(&lab, labels_path, IDX_LABELS, 0, err, errlen))
        goto fail;
    if (img.count != lab.count) {
        snprintf(err, errlen, "%s holds %zu images but %s holds %zu labels", images_path,
                 img.count, labels_path, lab.count);
        goto fail;
    }
    /* a sample's shape and the model's widths are ints */
    if (img.per > INT_MAX) {
        snprintf(err, errlen, "%s: %zu values per sample: allowed at most %d", images_path,
                 img.per, INT_MAX);
        goto fail;
    }
    size_t all = img.count;
    size_t n = max_samples > 0 && max_samples < all ? max_samples : all;
    if (idx_check_length(&lab, err, errlen))
        goto fail;
    raw_labels = malloc(all);
    d->y = malloc(n * sizeof *d->y);
    if (!raw_labels || !d->y) {
        snprintf(err, errlen, "%s: out of memory for %zu labels", labels_path, n);
        goto fail;
    }
    if (idx_payload(&lab, raw_labels, all, err, errlen))
        goto fail;
    for (size_t i = 0; i < all; i++) {
        if (raw_labels[i] >= classes) {
            snprintf(err, errlen, "%s: sample %zu has label %d: allowed 0 to %d (--classes %d)",
                     labels_path, i, raw_labels[i], classes - 1, classes);
            goto fail;
        }
        if (i < n)
            d->y[i] = raw_labels[i];
    }
    free(raw_labels);
    raw_labels = NULL;
    idx_close(&lab);
    if (idx_check_length(&img, err, errlen))
        goto fail;
    d->x = malloc(n * img.per);
    if (!d->x) {
        snprintf(err, errlen, "%s: out of memory for %zu bytes of pixels", images_path,
                 n * img.per);
        goto fail;
    }
    if (idx_payload(&img, d->x, n * img.per, err, errlen))
        goto fail;
    idx_close(&img);
    d->type = SAMPLE_U8;
    d->n = n;
    d->dim = img.per;
    /* images are one channel of rows x cols; vectors are flat */
    d->shape = img.magic == IDX_IMAGES ? (struct shape){ 1, (int)img.dims[1], (int)img.dims[2] }
                                       : (struct shape){ (int)img.per, 1, 1 };
    d->classes = classes;
    return 0;
fail:
    idx_close(&img);
    idx_close(&lab);
    free(raw_labels);
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
    return -1;
}
