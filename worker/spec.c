/* Parsing and printing of model spec strings (grammar in spec.h); the items
 * are rows of the table of layer kinds (layer.c). */
#include "spec.h"

#include <stdio.h>
#include <string.h>

static int push(struct spec *s, const struct layer_kind *kind, struct layer_arg arg, char *err,
                size_t errlen)
{
    if (s->n == SPEC_MAX_ITEMS) {
        snprintf(err, errlen, "more than %d layers", SPEC_MAX_ITEMS);
        return -1;
    }
    s->items[s->n++] = (struct spec_item){ .kind = kind, .arg = arg };
    return 0;
}

/* Widths separated by '-', as widths[0..*nw). */
static int parse_widths(int *widths, int *nw, const char *text, char *err, size_t errlen)
{
    const char *p = text;
    *nw = 0;
    for (;;) {
        const char *end = strchr(p, '-');
        if (!end)
            end = p + strlen(p);
        if (*nw == SPEC_MAX_ITEMS) {
            snprintf(err, errlen, "more than %d layers", SPEC_MAX_ITEMS);
            return -1;
        }
        if (layer_parse_width(p, end, &widths[*nw]) != 0) {
            snprintf(err, errlen, "'%.*s' at position %d is not a layer width (a whole number from 1 to 16777216)",
                     (int)(end - p), p, (int)(p - text) + 1);
            return -1;
        }
        (*nw)++;
        if (!*end)
            return 0;
        p = end + 1;
    }
}

static int parse_mlp(struct spec *s, const char *text, bool bn, float dropout, char *err,
                     size_t errlen)
{
    int widths[SPEC_MAX_ITEMS];
    int nw;
    if (parse_widths(widths, &nw, text, err, errlen))
        return -1;
    if (nw < 2) {
        snprintf(err, errlen, "an MLP spec needs at least an input and an output width, as in 784-10");
        return -1;
    }
    const struct layer_arg none = { 0 };
    if (push(s, &layer_input, (struct layer_arg){ .width = widths[0] }, err, errlen))
        return -1;
    for (int i = 1; i < nw; i++) {
        if (push(s, &layer_fc, (struct layer_arg){ .width = widths[i] }, err, errlen))
            return -1;
        if (i == nw - 1)
            break;
        if (bn && push(s, &layer_bn, none, err, errlen))
            return -1;
        if (push(s, &layer_relu, none, err, errlen))
            return -1;
        if (dropout > 0 && push(s, &layer_dropout, (struct layer_arg){ .p = dropout }, err, errlen))
            return -1;
    }
    return 0;
}

/* Item pos, [p, end): "name" or "name:arg", as the kind's row says. */
static int parse_item(struct spec *s, const char *p, const char *end, int pos, char *err,
                      size_t errlen)
{
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *arg = colon ? colon + 1 : end;
    const struct layer_kind *kind = layer_kind_find(p, (int)((colon ? colon : end) - p));
    if (!kind || !kind->parse_arg != !colon) {
        char known[256];
        layer_kind_usage(known, sizeof known);
        snprintf(err, errlen, "item %d '%.*s' is not a layer (known: %s)", pos, (int)(end - p), p,
                 known);
        return -1;
    }
    struct layer_arg a = { 0 };
    char why[128];
    if (kind->parse_arg && kind->parse_arg(&a, arg, (int)(end - arg), why, sizeof why)) {
        snprintf(err, errlen, "item %d '%.*s': %s", pos, (int)(end - p), p, why);
        return -1;
    }
    return push(s, kind, a, err, errlen);
}

static int check_list(const struct spec *s, char *err, size_t errlen)
{
    if (s->n < 2 || s->items[0].kind != &layer_input) {
        snprintf(err, errlen, "a layer list must start with in:N and have at least one fc:N");
        return -1;
    }
    for (int i = 1; i < s->n; i++) {
        if (s->items[i].kind == &layer_input) {
            snprintf(err, errlen, "item %d: in:N may only come first", i + 1);
            return -1;
        }
    }
    if (s->items[s->n - 1].kind != &layer_fc) {
        snprintf(err, errlen, "a layer list must end with fc:K, K being the class count");
        return -1;
    }
    return 0;
}

/* One item in canonical form ("fc:1024"). */
static int format_item(const struct spec_item *it, char *out, int outlen)
{
    char arg[64] = "";
    if (it->kind->format_arg)
        it->kind->format_arg(&it->arg, arg, sizeof arg);
    return snprintf(out, (size_t)outlen, "%s%s%s", it->kind->name, arg[0] ? ":" : "", arg);
}

int spec_shapes(const struct spec *s, struct shape *shapes, char *err, size_t errlen)
{
    struct shape none = { 0, 0, 0 };
    for (int i = 0; i < s->n; i++) {
        const struct spec_item *it = &s->items[i];
        char why[160];
        if (it->kind->out_shape(&it->arg, i ? shapes[i - 1] : none, &shapes[i], why, sizeof why)) {
            char item[80];
            format_item(it, item, sizeof item);
            snprintf(err, errlen, "item %d '%s': %s", i + 1, item, why);
            return -1;
        }
    }
    return 0;
}

int spec_parse(struct spec *s, const char *text, bool bn, float dropout, char *err,
               size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (!text || !*text) {
        snprintf(err, errlen, "the model spec is empty");
        return -1;
    }
    int rc;
    if (text[0] >= '0' && text[0] <= '9' && !strchr(text, ':')) {
        rc = parse_mlp(s, text, bn, dropout, err, errlen);
    } else {
        const char *p = text;
        for (int pos = 1;; pos++) {
            const char *end = strchr(p, ',');
            if (!end)
                end = p + strlen(p);
            if (parse_item(s, p, end, pos, err, errlen))
                return -1;
            if (!*end)
                break;
            p = end + 1;
        }
        rc = check_list(s, err, errlen);
    }
    struct shape shapes[SPEC_MAX_ITEMS];
    return rc ? rc : spec_shapes(s, shapes, err, errlen);
}

void spec_format(const struct spec *s, char *out, int outlen)
{
    int used = 0;
    out[0] = 0;
    for (int i = 0; i < s->n && used < outlen; i++) {
        char item[96];
        format_item(&s->items[i], item, sizeof item);
        used += snprintf(out + used, (size_t)(outlen - used), "%s%s", i ? "," : "", item);
    }
}

int spec_input_width(const struct spec *s)
{
    return s->n ? s->items[0].arg.width : 0;
}

int spec_output_width(const struct spec *s)
{
    for (int i = s->n - 1; i >= 0; i--)
        if (s->items[i].kind == &layer_fc)
            return s->items[i].arg.width;
    return 0;
}

struct shape spec_input_shape(const struct spec *s)
{
    struct shape none = { 0, 0, 0 }, out = none;
    char why[160];
    /* the input kind's own rule, whatever its argument holds */
    if (!s->n || s->items[0].kind->out_shape(&s->items[0].arg, none, &out, why, sizeof why))
        return none;
    return out;
}
