/* Options as one table: name, type, target field, bounds, default, help.
 * One parser serves the command line, `key = value` config files and --help. */
#ifndef DDT_CONFIG_H
#define DDT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "errbuf.h"

enum opt_type { OPT_INT = 1, OPT_U64, OPT_DOUBLE, OPT_STRING, OPT_BOOL, OPT_ENUM };

struct enum_name {
    const char *name;
    int value;
};

/* Flags on an option. */
enum {
    OPTF_MATH = 1 << 0,     /* changes the run's math: may not change on resume */
    OPTF_POSITIVE = 1 << 1, /* numbers: the lower bound is exclusive */
};

struct option_def {
    const char *name;
    enum opt_type type;
    size_t offset;               /* of the field in the target struct */
    double min, max;             /* numbers: allowed range */
    const char *def;             /* default, as text */
    const struct enum_name *enums; /* OPT_ENUM: {NULL, 0}-terminated */
    unsigned flags;
    const char *help;
};

#define CONFIG_STRLEN 256

/* What --config FILE does, which every table takes besides its rows. */
#define CONFIG_FILE_HELP "read `key = value` lines first (the command line wins)"

/* Sets every field to its default. */
void config_defaults(const struct option_def *table, void *target);

/* Sets one option from text; on error fills err ("--name: 'value' is ...: allowed ...")
 * and returns -1. */
int config_set(const struct option_def *table, void *target, const char *name,
               const char *value, char *err, size_t errlen);

/* Reads `key = value` lines (# comments, blank lines) from path. */
int config_load_file(const struct option_def *table, void *target, const char *path,
                     char *err, size_t errlen);

/* Parses argv[first..argc): --name value, --name=value, --flag, --no-flag,
 * and --config FILE (read before the rest, so the command line wins).
 * Non-option words are collected into positional[] (at most maxpos) and
 * counted in *npos. Returns 0, -1 on error (err filled) or 1 for --help. */
int config_parse_args(const struct option_def *table, void *target, int argc, char **argv,
                      int first, char **positional, int maxpos, int *npos, char *err,
                      size_t errlen);

/* Writes every option as `name = value` lines. */
void config_write(const struct option_def *table, const void *target, FILE *out);

/* v with the fewest significant digits that read back exactly (0.1, not
 * 0.10000000000000001): every double a person reads (config.txt, inspect,
 * --help) goes through it. */
void config_format_double(char *out, size_t outlen, double v);

/* Formats one option's current value. */
void config_format_value(const struct option_def *opt, const void *target, char *out,
                         size_t outlen);

/* What an option takes, as --help says it: "a number in (0, 100]",
 * "one of sgd, adam", "text", "flag (--x / --no-x)". */
void config_kind(const struct option_def *o, char *out, size_t outlen);

/* Prints --help text: each option, its type or choices, default, help. */
void config_help(const struct option_def *table, FILE *out);

/* A topic of --help and the man page: its title and its options' names,
 * separated by spaces, in the order they are shown. */
struct option_group {
    const char *title;
    const char *names;
};

/* The group (an index into groups, {NULL}-terminated) that names option
 * `name`, or the count of groups when none does (shown last, as "other"). */
int config_group_of(const struct option_group *groups, const char *name);

/* config_help under one heading per group ("data:"), each group's options in
 * the order of its names; an option no group names comes last, under
 * "other:". */
void config_help_grouped(const struct option_def *table, const struct option_group *groups,
                         FILE *out);

const struct option_def *config_find(const struct option_def *table, const char *name);

/* Name of an enum value, for messages and output. */
const char *config_enum_name(const struct enum_name *names, int value);

#endif
