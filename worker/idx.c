/* IDX files (the MNIST family's format), raw or gzip-compressed. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dataset.h"

/* A whole file, decompressed when it is gzip (zlib reads plain files as is). */
static int read_all(const char *path, uint8_t **data, size_t *len, char *err)
{
    *data = NULL;
    *len = 0;
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        snprintf(err, DDT_ERRLEN, "%s: %s", path, strerror(errno));
        return -1;
    }
    fclose(probe);
    gzFile f = gzopen(path, "rb");
    if (!f) {
        snprintf(err, DDT_ERRLEN, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    gzbuffer(f, 1 << 17);
    size_t cap = 1 << 20, used = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            snprintf(err, DDT_ERRLEN, "%s: out of memory", path);
            gzclose(f);
            return -1;
        }
        if (used == cap) {
            uint8_t *more = realloc(buf, cap * 2);
            if (!more) {
                free(buf);
                buf = NULL;
                continue;
            }
            buf = more;
            cap *= 2;
        }
        size_t want = cap - used > (1u << 30) ? (1u << 30) : cap - used;
        int got = gzread(f, buf + used, (unsigned)want);
        if (got < 0) {
            int code;
            const char *msg = gzerror(f, &code);
            snprintf(err, DDT_ERRLEN, "%s: damaged compressed data: %s", path, msg);
            free(buf);
            gzclose(f);
            return -1;
        }
        if (got == 0)
            break;
        used += (size_t)got;
    }
    gzclose(f);
    /* give back what a doubling buffer over-allocated */
    uint8_t *fit = realloc(buf, used ? used : 1);
    *data = fit ? fit : buf;
    *len = used;
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Parses an IDX header: magic 0x0000 08 NDIM (unsigned bytes). Fills the
 * dimensions and the number of data bytes it announces. */
static int parse_header(const char *path, const uint8_t *data, size_t len, int want_dims_lo,
                        int want_dims_hi, uint32_t *dims, int *ndims, size_t *payload, char *err)
{
    if (len < 4) {
        snprintf(err, DDT_ERRLEN, "%s: truncated: %zu bytes is too short for an IDX header", path,
                 len);
        return -1;
    }
    uint32_t magic = be32(data);
    int nd = data[3];
    if (data[0] != 0 || data[1] != 0 || data[2] != 0x08 || nd < want_dims_lo || nd > want_dims_hi) {
        snprintf(err, DDT_ERRLEN,
                 "%s: wrong magic 0x%08x: expected an IDX file of unsigned bytes with %d to %d dimensions (0x%08x..0x%08x)",
                 path, magic, want_dims_lo, want_dims_hi, 0x0800u | (unsigned)want_dims_lo,
                 0x0800u | (unsigned)want_dims_hi);
        return -1;
    }
    size_t header = 4 + 4 * (size_t)nd;
    if (len < header) {
        snprintf(err, DDT_ERRLEN, "%s: truncated: the header needs %zu bytes, the file has %zu",
                 path, header, len);
        return -1;
    }
    size_t total = 1;
    for (int i = 0; i < nd; i++) {
        dims[i] = be32(data + 4 + 4 * i);
        if (dims[i] == 0) {
            snprintf(err, DDT_ERRLEN, "%s: dimension %d is 0: the file holds no data", path, i + 1);
            return -1;
        }
        if (total > SIZE_MAX / dims[i]) {
            snprintf(err, DDT_ERRLEN, "%s: the dimensions overflow the address space", path);
            return -1;
        }
        total *= dims[i];
    }
    if (len - header != total) {
        snprintf(err, DDT_ERRLEN, "%s: %s: expected %zu bytes of data, found %zu", path,
                 len - header < total ? "truncated" : "trailing bytes after the data", total,
                 len - header);
        return -1;
    }
    *ndims = nd;
    *payload = header;
    return 0;
}

int dataset_load_idx(struct dataset *d, const char *images_path, const char *labels_path,
                     int classes, char *err)
{
    memset(d, 0, sizeof *d);
    uint8_t *img = NULL, *lab = NULL;
    size_t ilen, llen, ioff, loff;
    uint32_t idims[4], ldims[4];
    int ind, lnd;
    if (read_all(images_path, &img, &ilen, err) ||
        parse_header(images_path, img, ilen, 2, 3, idims, &ind, &ioff, err) ||
        read_all(labels_path, &lab, &llen, err) ||
        parse_header(labels_path, lab, llen, 1, 1, ldims, &lnd, &loff, err))
        goto fail;
    if (idims[0] != ldims[0]) {
        snprintf(err, DDT_ERRLEN, "%s holds %u images but %s holds %u labels", images_path,
                 idims[0], labels_path, ldims[0]);
        goto fail;
    }
    size_t n = idims[0], dim = 1;
    for (int i = 1; i < ind; i++)
        dim *= idims[i];
    d->y = malloc(n * sizeof *d->y);
    if (!d->y) {
        snprintf(err, DDT_ERRLEN, "%s: out of memory", labels_path);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        int v = lab[loff + i];
        if (v >= classes) {
            snprintf(err, DDT_ERRLEN, "%s: label %zu is %d: allowed 0 to %d (--classes %d)",
                     labels_path, i, v, classes - 1, classes);
            goto fail;
        }
        d->y[i] = v;
    }
    free(lab);
    /* keep the pixels where they are: move them to the front of the buffer */
    memmove(img, img + ioff, n * dim);
    uint8_t *fit = realloc(img, n * dim);
    d->x = fit ? fit : img;
    d->type = SAMPLE_U8;
    d->n = n;
    d->dim = dim;
    d->classes = classes;
    return 0;
fail:
    free(img);
    free(lab);
    free(d->y);
    memset(d, 0, sizeof *d);
    return -1;
}
