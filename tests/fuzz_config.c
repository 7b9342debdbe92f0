/* Fuzz target "config": `key = value` config files (config_load_file) and
 * command lines (config_parse_args, each line of the input one argument,
 * with and without a --config of the same text), over the train options.
 * Whatever is accepted must survive the way a checkpoint carries the
 * configuration: every option formatted as `name = value`, split at " = "
 * and set again, gives the same text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "train.h"

static char cfg_path[4200];

static const char *const config_dict[] = {
    " = ", "=", "--", "--no-", "--config", "--config=", "#", "\n", "epochs", "lr", "model",
    "bn", "optimizer", "seed", "batch-size", "lr-decay", "classes", "dropout", "true", "off",
    "adam", "cosine", "-1", "0", "1e308", "1e-320", "nan", "inf", "0x10", "18446744073709551615",
    "18446744073709551616", "2147483648", "9223372036854775807", NULL
};

static int config_setup(struct fuzz_corpus *seeds, const char *dir)
{
    static const char *const texts[] = {
        "epochs = 3\nlr = 0.1\nmodel = 784-10\nbn = true\noptimizer = adam\n",
        "# a comment\n\n  batch-size=64  \nseed = 1800000000000000000 # big\nlr-decay = cosine\n",
        "--epochs\n2\n--no-bn\n--lr=0.5\nrun\n",
        "--dropout=0.5\n--data\nx.csv\n--\n--epochs\n",
    };
    snprintf(cfg_path, sizeof cfg_path, "%s/in.conf", dir);
    seeds->dict = config_dict;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        fuzz_corpus_add(seeds, texts[i], strlen(texts[i]));
    return 0;
}

/* What ckpt_parse_config does with the lines a checkpoint carries. */
static int round_trip(const struct train_config *cfg)
{
    struct train_config back = *cfg;
    char value[CONFIG_STRLEN + 32], again[CONFIG_STRLEN + 32], line[CONFIG_STRLEN + 64],
        err[DDT_ERRLEN];
    for (const struct option_def *o = train_options; o->name; o++) {
        config_format_value(o, cfg, value, sizeof value);
        snprintf(line, sizeof line, "%s = %s", o->name, value);
        char *eq = strstr(line, " = ");
        *eq = 0;
        if (config_set(train_options, &back, line, eq + 3, err, sizeof err)) {
            fprintf(stderr, "fuzz: config: accepted --%s '%s' does not read back: %s\n", o->name,
                    value, err);
            return -1;
        }
        config_format_value(o, &back, again, sizeof again);
        if (strcmp(value, again)) {
            fprintf(stderr, "fuzz: config: --%s '%s' reads back as '%s'\n", o->name, value,
                    again);
            return -1;
        }
    }
    return 0;
}

/* The input's lines as arguments after "ddtrain train" (at most 62). */
static int split_args(char *text, char **argv, int with_config)
{
    int argc = 0;
    argv[argc++] = "ddtrain";
    argv[argc++] = "train";
    if (with_config) {
        argv[argc++] = "--config";
        argv[argc++] = cfg_path;
    }
    for (char *p = text; p && argc < 63;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        argv[argc++] = p;
        p = nl ? nl + 1 : NULL;
    }
    argv[argc] = NULL;
    return argc;
}

static int parse_args(const uint8_t *p, size_t n, int with_config)
{
    char *text = malloc(n + 1), *argv[64], *pos[2], err[DDT_ERRLEN];
    if (!text)
        return -1;
    memcpy(text, p, n);
    text[n] = 0; /* an argument ends at a NUL, as in a real argv */
    int argc = split_args(text, argv, with_config), npos, rc;
    struct train_config cfg;
    config_defaults(train_options, &cfg);
    rc = config_parse_args(train_options, &cfg, argc, argv, 2, pos, 2, &npos, err, sizeof err);
    if (rc == 0 && (npos < 0 || npos > 2)) {
        fprintf(stderr, "fuzz: config: %d positional arguments for room for 2\n", npos);
        rc = -2;
    } else if (rc == 0) {
        rc = round_trip(&cfg) ? -2 : 1;
    } else {
        rc = 0;
    }
    free(text);
    return rc;
}

static int config_run(const uint8_t *p, size_t n)
{
    if (fuzz_write_file(cfg_path, p, n))
        return -1;
    struct train_config cfg;
    char err[DDT_ERRLEN];
    config_defaults(train_options, &cfg);
    int file_ok = config_load_file(train_options, &cfg, cfg_path, err, sizeof err) == 0;
    if (file_ok && round_trip(&cfg))
        return -1;
    int args = parse_args(p, n, 0), with_file = parse_args(p, n, 1);
    if (args < -1 || with_file < -1)
        return -1;
    return file_ok || args == 1;
}

const struct fuzz_target fuzz_config_target = {
    .name = "config",
    .iters = 6000,
    .setup = config_setup,
    .run = config_run,
};
