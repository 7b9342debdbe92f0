/* The generic option parser behind the command line, config files and --help. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "regfile.h"

/* The longest config line, without its newline: what the fixed buffer of
 * earlier versions took; a longer one is refused rather than split. */
#define CONFIG_LINE_MAX 1022

const struct option_def *config_find(const struct option_def *table, const char *name)
{
    for (const struct option_def *o = table; o->name; o++)
        if (!strcmp(o->name, name))
            return o;
    return NULL;
}

const char *config_enum_name(const struct enum_name *names, int value)
{
    for (const struct enum_name *e = names; e->name; e++)
        if (e->value == value)
            return e->name;
    return "?";
}

static void enum_choices(const struct enum_name *names, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = 0;
    for (const struct enum_name *e = names; e->name && used < outlen; e++)
        used += (size_t)snprintf(out + used, outlen - used, "%s%s", e == names ? "" : ", ",
                                 e->name);
}

void config_format_double(char *out, size_t outlen, double v)
{
    /* the shortest text of any precision that reads back as v (17 digits
     * always do): 100 rather than 1e+02, 0.1 rather than 0.10000000000000001 */
    char best[40], text[40];
    snprintf(best, sizeof best, "%.17g", v);
    for (int digits = 1; digits < 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (strtod(text, NULL) == v && strlen(text) < strlen(best))
            snprintf(best, sizeof best, "%s", text);
    }
    snprintf(out, outlen, "%s", best);
}

static void range_text(const struct option_def *o, char *out, size_t outlen)
{
    const char *lo = (o->flags & OPTF_POSITIVE) ? "(" : "[";
    char a[32], b[32];
    config_format_double(a, sizeof a, o->min);
    config_format_double(b, sizeof b, o->max);
    if (o->type == OPT_DOUBLE)
        snprintf(out, outlen, "a number in %s%s, %s]", lo, a, b);
    else
        snprintf(out, outlen, "a whole number from %.0f to %.0f", o->min, o->max);
}

static int parse_bool(const char *v, bool *out)
{
    static const char *yes[] = { "1", "true", "yes", "on" }, *no[] = { "0", "false", "no", "off" };
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(v, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int in_range(const struct option_def *o, double v)
{
    if (o->flags & OPTF_POSITIVE)
        return v > o->min && v <= o->max;
    return v >= o->min && v <= o->max;
}

int config_set(const struct option_def *table, void *target, const char *name,
               const char *value, char *err, size_t errlen)
{
    const struct option_def *o = config_find(table, name);
    if (!o) {
        snprintf(err, errlen, "unknown option '%s' (see --help for the list)", name);
        return -1;
    }
    char *field = (char *)target + o->offset;
    char allowed[256];
    char *end;
    errno = 0;
    switch (o->type) {
    case OPT_INT: {
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || !in_range(o, (double)v))
            goto bad_number;
        *(int *)field = (int)v;
        return 0;
    }
    case OPT_U64: {
        if (value[0] == '-')
            goto bad_number;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end || !in_range(o, (double)v))
            goto bad_number;
        *(uint64_t *)field = (uint64_t)v;
        return 0;
    }
    case OPT_DOUBLE: {
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v) || !in_range(o, v))
            goto bad_number;
        *(double *)field = v;
        return 0;
    }
    case OPT_STRING:
        if (strlen(value) >= CONFIG_STRLEN) {
            snprintf(err, errlen, "--%s: the value is %zu characters long: allowed at most %d",
                     name, strlen(value), CONFIG_STRLEN - 1);
            return -1;
        }
        if (!value[0] && o->min > 0) {
            snprintf(err, errlen, "--%s: the value may not be empty", name);
            return -1;
        }
        snprintf(field, CONFIG_STRLEN, "%s", value);
        return 0;
    case OPT_BOOL:
        if (parse_bool(value, (bool *)field)) {
            snprintf(err, errlen, "--%s: '%s' is not a yes/no value: allowed true, false, yes, no, on, off, 1, 0",
                     name, value);
            return -1;
        }
        return 0;
    case OPT_ENUM:
        for (const struct enum_name *e = o->enums; e->name; e++) {
            if (!strcmp(e->name, value)) {
                *(int *)field = e->value;
                return 0;
            }
        }
        enum_choices(o->enums, allowed, sizeof allowed);
        snprintf(err, errlen, "--%s: '%s' is not one of the choices: allowed %s", name,
                 value, allowed);
        return -1;
    }
    return -1;
bad_number:
    range_text(o, allowed, sizeof allowed);
    snprintf(err, errlen, "--%s: '%s' is not valid: allowed %s", name, value, allowed);
    return -1;
}

void config_defaults(const struct option_def *table, void *target)
{
    char err[DDT_ERRLEN];
    for (const struct option_def *o = table; o->name; o++) {
        /* a default that fails its own validation is a programming error
         * that the config unit tests catch; keep going so --help works */
        if (config_set(table, target, o->name, o->def, err, sizeof err))
            fprintf(stderr, "ddtrain: internal: default of --%s: %s\n", o->name, err);
    }
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = 0;
    return s;
}

int config_load_file(const struct option_def *table, void *target, const char *path,
                     char *err, size_t errlen)
{
    char sub[DDT_ERRLEN];
    FILE *f = regfile_fopen(path, "r", sub, sizeof sub);
    if (!f) {
        snprintf(err, errlen, "config file %s", sub);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0, rc = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (strlen(line) != (size_t)got) {
            snprintf(err, errlen, "config file %s line %d has a NUL byte: not a text file",
                     path, lineno);
            rc = -1;
            break;
        }
        if ((size_t)got - (line[got - 1] == '\n') > CONFIG_LINE_MAX) {
            snprintf(err, errlen, "config file %s line %d: longer than %d characters",
                     path, lineno, CONFIG_LINE_MAX);
            rc = -1;
            break;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "config file %s line %d: expected 'key = value', found '%s'",
                     path, lineno, s);
            rc = -1;
            break;
        }
        *eq = 0;
        char *key = trim(s), *value = trim(eq + 1);
        if (!strcmp(key, "config")) {
            snprintf(err, errlen, "config file %s line %d: config files may not include others",
                     path, lineno);
            rc = -1;
            break;
        }
        if (config_set(table, target, key, value, sub, sizeof sub)) {
            snprintf(err, errlen, "config file %s line %d: %s", path, lineno, sub);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "config file %s: read error: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

/* Splits "--name=value" / "--name value" / "--flag" / "--no-flag" at argv[*i].
 * Advances *i past what it consumed. */
static int one_arg(const struct option_def *table, void *target, int argc, char **argv, int *i,
                   char *err, size_t errlen)
{
    const char *arg = argv[*i] + 2;
    char name[128];
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    if (len == 0 || len >= sizeof name) {
        snprintf(err, errlen, "'%s' is not an option", argv[*i]);
        return -1;
    }
    memcpy(name, arg, len);
    name[len] = 0;
    const struct option_def *o = config_find(table, name);
    if (!o && !eq && !strncmp(name, "no-", 3)) {
        const struct option_def *neg = config_find(table, name + 3);
        if (neg && neg->type == OPT_BOOL) {
            (*i)++;
            return config_set(table, target, name + 3, "false", err, errlen);
        }
    }
    if (!o) {
        snprintf(err, errlen, "unknown option '--%s' (see --help for the list)", name);
        return -1;
    }
    if (eq) {
        (*i)++;
        return config_set(table, target, name, eq + 1, err, errlen);
    }
    if (o->type == OPT_BOOL) {
        (*i)++;
        return config_set(table, target, name, "true", err, errlen);
    }
    if (*i + 1 >= argc) {
        snprintf(err, errlen, "--%s needs a value", name);
        return -1;
    }
    *i += 2;
    return config_set(table, target, name, argv[*i - 1], err, errlen);
}

int config_parse_args(const struct option_def *table, void *target, int argc, char **argv,
                      int first, char **positional, int maxpos, int *npos, char *err, size_t errlen)
{
    *npos = 0;
    /* the config file first, so that the command line overrides it */
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
        const char *file = NULL;
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--config needs a file name");
                return -1;
            }
            file = argv[i + 1];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            file = argv[i] + 9;
        }
        if (file && config_load_file(table, target, file, err, errlen))
            return -1;
    }
    for (int i = first; i < argc;) {
        if (!strcmp(argv[i], "--config")) {
            i += 2;
            continue;
        }
        if (!strncmp(argv[i], "--config=", 9)) {
            i++;
            continue;
        }
        if (!strcmp(argv[i], "--")) {
            for (i++; i < argc; i++) {
                if (*npos == maxpos) {
                    snprintf(err, errlen, "unexpected argument '%s'", argv[i]);
                    return -1;
                }
                positional[(*npos)++] = argv[i];
            }
            break;
        }
        if (strncmp(argv[i], "--", 2)) {
            if (*npos == maxpos) {
                snprintf(err, errlen, "unexpected argument '%s'", argv[i]);
                return -1;
            }
            positional[(*npos)++] = argv[i++];
            continue;
        }
        if (one_arg(table, target, argc, argv, &i, err, errlen))
            return -1;
    }
    return 0;
}

void config_format_value(const struct option_def *o, const void *target, char *out,
                         size_t outlen)
{
    const char *field = (const char *)target + o->offset;
    switch (o->type) {
    case OPT_INT:
        snprintf(out, outlen, "%d", *(const int *)field);
        break;
    case OPT_U64:
        snprintf(out, outlen, "%" PRIu64, *(const uint64_t *)field);
        break;
    case OPT_DOUBLE:
        config_format_double(out, outlen, *(const double *)field);
        break;
    case OPT_STRING:
        snprintf(out, outlen, "%s", field);
        break;
    case OPT_BOOL:
        snprintf(out, outlen, "%s", *(const bool *)field ? "true" : "false");
        break;
    case OPT_ENUM:
        snprintf(out, outlen, "%s", config_enum_name(o->enums, *(const int *)field));
        break;
    }
}

void config_write(const struct option_def *table, const void *target, FILE *out)
{
    char value[CONFIG_STRLEN + 32];
    for (const struct option_def *o = table; o->name; o++) {
        config_format_value(o, target, value, sizeof value);
        fprintf(out, "%s = %s\n", o->name, value);
    }
}

void config_kind(const struct option_def *o, char *out, size_t outlen)
{
    switch (o->type) {
    case OPT_INT:
    case OPT_U64:
    case OPT_DOUBLE:
        range_text(o, out, outlen);
        break;
    case OPT_STRING:
        snprintf(out, outlen, "text");
        break;
    case OPT_BOOL:
        snprintf(out, outlen, "flag (--%s / --no-%s)", o->name, o->name);
        break;
    case OPT_ENUM: {
        char choices[256 - 8];
        enum_choices(o->enums, choices, sizeof choices);
        snprintf(out, outlen, "one of %s", choices);
        break;
    }
    }
}

static void help_option(const struct option_def *o, FILE *out)
{
    char kind[256];
    config_kind(o, kind, sizeof kind);
    fprintf(out, "  --%-20s %s\n  %-22s   %s; default %s\n", o->name, o->help, "", kind,
            o->def[0] ? o->def : "(empty)");
}

void config_help(const struct option_def *table, FILE *out)
{
    for (const struct option_def *o = table; o->name; o++)
        help_option(o, out);
    fprintf(out, "  --%-20s %s\n", "config FILE", CONFIG_FILE_HELP);
}

/* Is name one of the space-separated words of names? */
static bool names_has(const char *names, const char *name)
{
    size_t n = strlen(name);
    for (const char *w = names; *w;) {
        size_t len = strcspn(w, " ");
        if (len == n && !strncmp(w, name, n))
            return true;
        w += len;
        w += strspn(w, " ");
    }
    return false;
}

int config_group_of(const struct option_group *groups, const char *name)
{
    int g = 0;
    for (; groups[g].title; g++)
        if (names_has(groups[g].names, name))
            return g;
    return g;
}

void config_help_grouped(const struct option_def *table, const struct option_group *groups,
                         FILE *out)
{
    int ngroups = 0;
    while (groups[ngroups].title)
        ngroups++;
    for (int g = 0; g < ngroups; g++) {
        fprintf(out, "%s%s:\n", g ? "\n" : "", groups[g].title);
        /* in the order the group names them */
        for (const char *w = groups[g].names; *w;) {
            size_t len = strcspn(w, " ");
            for (const struct option_def *o = table; o->name; o++)
                if (strlen(o->name) == len && !strncmp(o->name, w, len))
                    help_option(o, out);
            w += len;
            w += strspn(w, " ");
        }
    }
    bool other = false;
    for (const struct option_def *o = table; o->name; o++)
        if (config_group_of(groups, o->name) == ngroups) {
            if (!other)
                fprintf(out, "\nother:\n");
            other = true;
            help_option(o, out);
        }
    fprintf(out, "\n  --%-20s %s\n", "config FILE", CONFIG_FILE_HELP);
}
