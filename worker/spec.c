/* Parsing and printing of model spec strings (grammar in spec.h). */
#include "spec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int push(struct spec *s, enum spec_kind kind, int width, float p, char *err, int errlen)
{
    if (s->n == SPEC_MAX_ITEMS) {
        snprintf(err, errlen, "more than %d layers", SPEC_MAX_ITEMS);
        return -1;
    }
    s->items[s->n++] = (struct spec_item){ .kind = kind, .width = width, .p = p };
    return 0;
}

/* A positive layer width from [p, end); rejects signs, junk and absurd sizes. */
static int parse_width(const char *p, const char *end, int *out)
{
    if (p == end || *p < '0' || *p > '9')
        return -1;
    errno = 0;
    char *e;
    long v = strtol(p, &e, 10);
    if (errno || e != end || v < 1 || v > (1L << 24))
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_mlp(struct spec *s, const char *text, bool bn, float dropout, char *err,
                     int errlen)
{
    int widths[SPEC_MAX_ITEMS];
    int nw = 0;
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, '-');
        if (!end)
            end = p + strlen(p);
        if (nw == SPEC_MAX_ITEMS) {
            snprintf(err, errlen, "more than %d layers", SPEC_MAX_ITEMS);
            return -1;
        }
        if (parse_width(p, end, &widths[nw]) != 0) {
            snprintf(err, errlen, "'%.*s' at position %d is not a layer width (a whole number from 1 to 16777216)",
                     (int)(end - p), p, (int)(p - text) + 1);
            return -1;
        }
        nw++;
        if (!*end)
            break;
        p = end + 1;
    }
    if (nw < 2) {
        snprintf(err, errlen, "an MLP spec needs at least an input and an output width, as in 784-10");
        return -1;
    }
    if (push(s, SPEC_INPUT, widths[0], 0, err, errlen))
        return -1;
    for (int i = 1; i < nw; i++) {
        if (push(s, SPEC_LINEAR, widths[i], 0, err, errlen))
            return -1;
        if (i == nw - 1)
            break;
        if (bn && push(s, SPEC_BN, 0, 0, err, errlen))
            return -1;
        if (push(s, SPEC_RELU, 0, 0, err, errlen))
            return -1;
        if (dropout > 0 && push(s, SPEC_DROPOUT, 0, dropout, err, errlen))
            return -1;
    }
    return 0;
}

static int parse_item(struct spec *s, const char *p, const char *end, int pos, char *err,
                      int errlen)
{
    const char *colon = memchr(p, ':', (size_t)(end - p));
    size_t namelen = (size_t)((colon ? colon : end) - p);
    const char *arg = colon ? colon + 1 : end;
    int width;
    if (namelen == 2 && !strncmp(p, "in", 2) && colon) {
        if (parse_width(arg, end, &width))
            goto bad_width;
        return push(s, SPEC_INPUT, width, 0, err, errlen);
    }
    if (namelen == 2 && !strncmp(p, "fc", 2) && colon) {
        if (parse_width(arg, end, &width))
            goto bad_width;
        return push(s, SPEC_LINEAR, width, 0, err, errlen);
    }
    if (namelen == 2 && !strncmp(p, "bn", 2) && !colon)
        return push(s, SPEC_BN, 0, 0, err, errlen);
    if (namelen == 4 && !strncmp(p, "relu", 4) && !colon)
        return push(s, SPEC_RELU, 0, 0, err, errlen);
    if (namelen == 7 && !strncmp(p, "dropout", 7) && colon) {
        char buf[64];
        size_t len = (size_t)(end - arg);
        if (len == 0 || len >= sizeof buf)
            goto bad_p;
        memcpy(buf, arg, len);
        buf[len] = 0;
        errno = 0;
        char *e;
        double v = strtod(buf, &e);
        if (errno || *e || !(v >= 0 && v < 1))
            goto bad_p;
        return push(s, SPEC_DROPOUT, 0, (float)v, err, errlen);
    }
    snprintf(err, errlen,
             "item %d '%.*s' is not a layer (known: in:N, fc:N, bn, relu, dropout:P)", pos,
             (int)(end - p), p);
    return -1;
bad_width:
    snprintf(err, errlen, "item %d '%.*s': the width must be a whole number from 1 to 16777216",
             pos, (int)(end - p), p);
    return -1;
bad_p:
    snprintf(err, errlen, "item %d '%.*s': the dropout rate must be a number in [0, 1)", pos,
             (int)(end - p), p);
    return -1;
}

static int check_list(const struct spec *s, char *err, int errlen)
{
    if (s->n < 2 || s->items[0].kind != SPEC_INPUT) {
        snprintf(err, errlen, "a layer list must start with in:N and have at least one fc:N");
        return -1;
    }
    for (int i = 1; i < s->n; i++) {
        if (s->items[i].kind == SPEC_INPUT) {
            snprintf(err, errlen, "item %d: in:N may only come first", i + 1);
            return -1;
        }
    }
    if (s->items[s->n - 1].kind != SPEC_LINEAR) {
        snprintf(err, errlen, "a layer list must end with fc:K, K being the class count");
        return -1;
    }
    return 0;
}

int spec_parse(struct spec *s, const char *text, bool bn, float dropout, char *err,
               int errlen)
{
    memset(s, 0, sizeof *s);
    if (!text || !*text) {
        snprintf(err, errlen, "the model spec is empty");
        return -1;
    }
    if (text[0] >= '0' && text[0] <= '9' && !strchr(text, ':'))
        return parse_mlp(s, text, bn, dropout, err, errlen);

    const char *p = text;
    int pos = 1;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        if (parse_item(s, p, end, pos, err, errlen))
            return -1;
        if (!*end)
            break;
        p = end + 1;
        pos++;
    }
    return check_list(s, err, errlen);
}

void spec_format(const struct spec *s, char *out, int outlen)
{
    int used = 0;
    out[0] = 0;
    for (int i = 0; i < s->n && used < outlen; i++) {
        const struct spec_item *it = &s->items[i];
        const char *sep = i ? "," : "";
        switch (it->kind) {
        case SPEC_INPUT:
            used += snprintf(out + used, outlen - used, "%sin:%d", sep, it->width);
            break;
        case SPEC_LINEAR:
            used += snprintf(out + used, outlen - used, "%sfc:%d", sep, it->width);
            break;
        case SPEC_BN:
            used += snprintf(out + used, outlen - used, "%sbn", sep);
            break;
        case SPEC_RELU:
            used += snprintf(out + used, outlen - used, "%srelu", sep);
            break;
        case SPEC_DROPOUT:
            used += snprintf(out + used, outlen - used, "%sdropout:%g", sep, it->p);
            break;
        }
    }
}

int spec_input_width(const struct spec *s)
{
    return s->n ? s->items[0].width : 0;
}

int spec_output_width(const struct spec *s)
{
    for (int i = s->n - 1; i >= 0; i--)
        if (s->items[i].kind == SPEC_LINEAR)
            return s->items[i].width;
    return 0;
}
