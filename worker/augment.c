/* Random crop with zero padding and horizontal flip, drawn per sample from
 * the counter-based generator and applied while gathering a batch. */
#include "augment.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

/* Which draw of a sample's key: the crop's rows, its columns, the flip. */
enum { DRAW_DY = 0, DRAW_DX = 1, DRAW_FLIP = 2 };

/* One item [p, end) of the list into a; -1 with err on anything else. */
static int parse_item(struct augment *a, const char *text, const char *p, const char *end,
                      char *err, size_t errlen)
{
    int len = (int)(end - p);
    if (len == 4 && !strncmp(p, "flip", 4)) {
        if (a->flip)
            goto twice;
        a->flip = true;
        return 0;
    }
    if (len > 5 && !strncmp(p, "crop:", 5)) {
        if (a->crop_pad)
            goto twice;
        char num[16], *stop;
        if (len - 5 >= (int)sizeof num || p[5] < '0' || p[5] > '9')
            goto bad_pad;
        memcpy(num, p + 5, (size_t)(len - 5));
        num[len - 5] = 0;
        errno = 0;
        long v = strtol(num, &stop, 10);
        if (errno || *stop || v < 1 || v > AUGMENT_MAX_PAD)
            goto bad_pad;
        a->crop_pad = (int)v;
        return 0;
    bad_pad:
        snprintf(err, errlen, "--augment: '%s': in '%.*s' the padding is not a whole number of pixels from 1 to %d",
                 text, len, p, AUGMENT_MAX_PAD);
        return -1;
    }
    snprintf(err, errlen, "--augment: '%s': '%.*s' is not an augmentation: allowed none, or crop:P and flip (comma-separated, e.g. crop:4,flip)",
             text, len, p);
    return -1;
twice:
    snprintf(err, errlen, "--augment: '%s': '%.*s' is given twice", text, len, p);
    return -1;
}

int augment_parse(struct augment *a, const char *text, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    if (!strcmp(text, "none"))
        return 0;
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        if (parse_item(a, text, p, end, err, errlen)) {
            memset(a, 0, sizeof *a);
            return -1;
        }
        if (!*end)
            return 0;
        p = end + 1;
    }
}

bool augment_active(const struct augment *a)
{
    return a->crop_pad > 0 || a->flip;
}

struct augment_draw augment_draw(const struct augment *a, uint64_t seed, uint64_t epoch,
                                 uint64_t sample)
{
    struct augment_draw dr = { 0, 0, false };
    if (a->crop_pad > 0) {
        /* the crop's corner in the padded image, [0, 2P], as a shift */
        uint64_t span = 2 * (uint64_t)a->crop_pad + 1;
        dr.dy = (int)rng_below(span, seed, RNG_AUGMENT, epoch, sample, DRAW_DY) - a->crop_pad;
        dr.dx = (int)rng_below(span, seed, RNG_AUGMENT, epoch, sample, DRAW_DX) - a->crop_pad;
    }
    if (a->flip)
        dr.flip = rng_u64(seed, RNG_AUGMENT, epoch, sample, DRAW_FLIP) >> 63;
    return dr;
}

/* Source pixel (c, sy, sx) of the sample, or 0 outside the image. */
static float pixel(const struct dataset *d, size_t row, int c, int sy, int sx)
{
    if (sy < 0 || sy >= d->shape.h || sx < 0 || sx >= d->shape.w)
        return 0.0f;
    size_t at = row * d->dim + ((size_t)c * (size_t)d->shape.h + (size_t)sy) * (size_t)d->shape.w +
                (size_t)sx;
    return d->type == SAMPLE_U8 ? (float)((const uint8_t *)d->x)[at] : ((const float *)d->x)[at];
}

void augment_sample(float *out, const struct dataset *d, size_t row,
                    const struct augment_draw *dr, const float *mean, const float *inv_std)
{
    int C = d->shape.c, H = d->shape.h, W = d->shape.w;
    size_t f = 0;
    for (int c = 0; c < C; c++) {
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++, f++) {
                /* the crop first, then the mirror of the crop */
                int sx = (dr->flip ? W - 1 - x : x) + dr->dx;
                out[f] = (pixel(d, row, c, y + dr->dy, sx) - mean[f]) * inv_std[f];
            }
        }
    }
}

void augment_gather(float *out, int32_t *labels, const struct dataset *d, const uint32_t *idx,
                    int B, const float *mean, const float *inv_std,
                    const struct augment_pass *p)
{
    for (int i = 0; i < B; i++) {
        size_t row = idx[i];
        struct augment_draw dr = augment_draw(&p->how, p->seed, p->epoch, row);
        augment_sample(out + (size_t)i * d->dim, d, row, &dr, mean, inv_std);
        labels[i] = d->y[row];
    }
}
