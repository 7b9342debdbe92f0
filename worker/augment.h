/* Training-time image augmentation (--augment): a random crop after zero
 * padding and a random horizontal flip, applied to a sample as it is
 * gathered into the batch, before normalisation, with draws keyed by the
 * sample and the epoch alone. */
#ifndef DDT_AUGMENT_H
#define DDT_AUGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

/* What to do to a training image. All zero: nothing. */
struct augment {
    int crop_pad;  /* P > 0: pad each side with P zero pixels, crop back at a random offset */
    bool flip;     /* mirror left to right with probability 1/2 */
};

/* One training gather's augmentation: what, and the key of its draws. */
struct augment_pass {
    struct augment how;
    uint64_t seed, epoch;
};

/* What one sample gets: the crop's shift (the output pixel (y, x) comes from
 * (y + dy, x + dx) of the source, zero outside it; each in [-P, P]) and
 * whether the cropped image is then mirrored. */
struct augment_draw {
    int dy, dx;
    bool flip;
};

/* Parses "none", "crop:P", "flip", "crop:P,flip" or "flip,crop:P" (P from 1
 * to AUGMENT_MAX_PAD). Returns -1 with err filled when text is none of them. */
#define AUGMENT_MAX_PAD 1024
int augment_parse(struct augment *a, const char *text, char *err, size_t errlen);

/* Does a do anything? */
bool augment_active(const struct augment *a);

/* The draw of the sample at row `sample` of the training set in `epoch`:
 * a function of (seed, RNG_AUGMENT, epoch, sample), so the same sample is
 * augmented the same way at any rank count, position in the batch or
 * resume. */
struct augment_draw augment_draw(const struct augment *a, uint64_t seed, uint64_t epoch,
                                 uint64_t sample);

/* out (dim) = (augmented sample row of d - mean) * inv_std: pixels shifted
 * in from outside the image are raw 0 (as torchvision's RandomCrop pads
 * before Normalize), so they become (0 - mean) * inv_std. d->shape is the
 * image's C x H x W. */
void augment_sample(float *out, const struct dataset *d, size_t row,
                    const struct augment_draw *dr, const float *mean, const float *inv_std);

/* dataset_gather with every sample augmented by its draw of p. */
void augment_gather(float *out, int32_t *labels, const struct dataset *d, const uint32_t *idx,
                    int B, const float *mean, const float *inv_std,
                    const struct augment_pass *p);

#endif
