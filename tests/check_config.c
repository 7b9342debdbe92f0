/* Tests of the option table parser, on a small table and on train's own. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "suites.h"
#include "train.h"

struct demo {
    int n;
    uint64_t seed;
    double rate;
    char name[CONFIG_STRLEN];
    bool flag;
    int color;
};

static const struct enum_name colors[] = { { "red", 1 }, { "blue", 2 }, { NULL, 0 } };

static const struct option_def demo_table[] = {
    { "n", OPT_INT, offsetof(struct demo, n), 1, 100, "10", NULL, 0, "a count" },
    { "seed", OPT_U64, offsetof(struct demo, seed), 0, 1e19, "1", NULL, 0, "a seed" },
    { "rate", OPT_DOUBLE, offsetof(struct demo, rate), 0, 10, "0.5", NULL, OPTF_POSITIVE, "a rate" },
    { "name", OPT_STRING, offsetof(struct demo, name), 1, 0, "x", NULL, 0, "a name" },
    { "flag", OPT_BOOL, offsetof(struct demo, flag), 0, 0, "false", NULL, 0, "a flag" },
    { "color", OPT_ENUM, offsetof(struct demo, color), 0, 0, "red", colors, 0, "a color" },
    { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL },
};

START_TEST(test_defaults)
{
    struct demo d;
    memset(&d, 0xff, sizeof d);
    config_defaults(demo_table, &d);
    ck_assert_int_eq(d.n, 10);
    ck_assert_uint_eq(d.seed, 1);
    ck_assert_double_eq(d.rate, 0.5);
    ck_assert_str_eq(d.name, "x");
    ck_assert(!d.flag);
    ck_assert_int_eq(d.color, 1);
}
END_TEST

struct set_case {
    const char *name, *value;
    int ok;
    const char *says; /* part of the message when not ok */
};

static const struct set_case set_cases[] = {
    { "n", "5", 1, NULL },
    { "n", "0", 0, "--n: '0' is not valid: allowed a whole number from 1 to 100" },
    { "n", "101", 0, "from 1 to 100" },
    { "n", "5x", 0, "'5x' is not valid" },
    { "n", "", 0, "is not valid" },
    { "n", "99999999999999999999", 0, "is not valid" },
    { "seed", "9999999999999999999", 1, NULL },
    { "seed", "18446744073709551615", 0, "from 0 to 10000000000000000000" },
    { "seed", "-1", 0, "--seed: '-1'" },
    { "rate", "0", 0, "allowed a number in (0, 10]" },
    { "rate", "1e-3", 1, NULL },
    { "rate", "nan", 0, "is not valid" },
    { "rate", "inf", 0, "is not valid" },
    { "name", "", 0, "may not be empty" },
    { "flag", "yes", 1, NULL },
    { "flag", "maybe", 0, "allowed true, false" },
    { "color", "blue", 1, NULL },
    { "color", "green", 0, "'green' is not one of the choices: allowed red, blue" },
    { "nope", "1", 0, "unknown option 'nope'" },
};

START_TEST(test_set)
{
    const struct set_case *c = &set_cases[_i];
    struct demo d;
    char err[DDT_ERRLEN] = "";
    config_defaults(demo_table, &d);
    int rc = config_set(demo_table, &d, c->name, c->value, err, sizeof err);
    if (c->ok) {
        ck_assert_msg(rc == 0, "%s=%s: %s", c->name, c->value, err);
    } else {
        ck_assert_int_eq(rc, -1);
        ck_assert_msg(strstr(err, c->says) != NULL, "message '%s' lacks '%s'", err, c->says);
    }
}
END_TEST

START_TEST(test_args_forms)
{
    struct demo d;
    char err[DDT_ERRLEN];
    char *pos[2];
    int npos;
    char *argv[] = { "prog", "sub", "--n", "7", "--rate=2", "--flag", "word", "--color", "blue", NULL };
    config_defaults(demo_table, &d);
    ck_assert_int_eq(config_parse_args(demo_table, &d, 9, argv, 2, pos, 2, &npos, err, sizeof err), 0);
    ck_assert_int_eq(d.n, 7);
    ck_assert_double_eq(d.rate, 2);
    ck_assert(d.flag);
    ck_assert_int_eq(d.color, 2);
    ck_assert_int_eq(npos, 1);
    ck_assert_str_eq(pos[0], "word");

    char *argv2[] = { "prog", "sub", "--flag", "--no-flag", NULL };
    ck_assert_int_eq(config_parse_args(demo_table, &d, 4, argv2, 2, pos, 2, &npos, err, sizeof err), 0);
    ck_assert(!d.flag);

    char *argv3[] = { "prog", "sub", "--n", NULL };
    ck_assert_int_eq(config_parse_args(demo_table, &d, 3, argv3, 2, pos, 2, &npos, err, sizeof err), -1);
    ck_assert(strstr(err, "--n needs a value") != NULL);

    char *argv4[] = { "prog", "sub", "--bogus", "1", NULL };
    ck_assert_int_eq(config_parse_args(demo_table, &d, 4, argv4, 2, pos, 2, &npos, err, sizeof err), -1);
    ck_assert(strstr(err, "unknown option '--bogus'") != NULL);

    char *argv5[] = { "prog", "sub", "a", "b", "c", NULL };
    ck_assert_int_eq(config_parse_args(demo_table, &d, 5, argv5, 2, pos, 2, &npos, err, sizeof err), -1);
    ck_assert(strstr(err, "unexpected argument 'c'") != NULL);

    char *argv6[] = { "prog", "sub", "--help", NULL };
    ck_assert_int_eq(config_parse_args(demo_table, &d, 3, argv6, 2, pos, 2, &npos, err, sizeof err), 1);
}
END_TEST

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_config_file)
{
    char path[] = "/tmp/ddtrain-config-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    write_file(path, "# a comment\n\n n = 42 \nrate=3 # trailing\nname = hello world\n");
    struct demo d;
    char err[DDT_ERRLEN];
    char *pos[1];
    int npos;
    char arg[64];
    snprintf(arg, sizeof arg, "--config=%s", path);
    /* the command line wins over the file, wherever --config stands */
    char *argv[] = { "prog", "sub", "--n", "3", arg, NULL };
    config_defaults(demo_table, &d);
    ck_assert_int_eq(config_parse_args(demo_table, &d, 5, argv, 2, pos, 0, &npos, err, sizeof err), 0);
    ck_assert_int_eq(d.n, 3);
    ck_assert_double_eq(d.rate, 3);
    ck_assert_str_eq(d.name, "hello world");

    write_file(path, "n = 4\nrate 3\n");
    ck_assert_int_eq(config_load_file(demo_table, &d, path, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "line 2: expected 'key = value'") != NULL, "%s", err);
    write_file(path, "n = 400\n");
    ck_assert_int_eq(config_load_file(demo_table, &d, path, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "line 1: --n: '400'") != NULL, "%s", err);
    write_file(path, "colour = red\n");
    ck_assert_int_eq(config_load_file(demo_table, &d, path, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "unknown option 'colour'") != NULL, "%s", err);
    unlink(path);
    ck_assert_int_eq(config_load_file(demo_table, &d, path, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "No such file") != NULL, "%s", err);
}
END_TEST

/* What config_write prints reads back to the same values. */
START_TEST(test_write_round_trip)
{
    char path[] = "/tmp/ddtrain-config-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    struct train_config a, b;
    char err[DDT_ERRLEN];
    config_defaults(train_options, &a);
    ck_assert_int_eq(config_set(train_options, &a, "lr", "0.123456789012345", err, sizeof err), 0);
    ck_assert_int_eq(config_set(train_options, &a, "optimizer", "adamw", err, sizeof err), 0);
    ck_assert_int_eq(config_set(train_options, &a, "seed", "12345678901234", err, sizeof err), 0);
    config_write(train_options, &a, f);
    fclose(f);
    config_defaults(train_options, &b);
    ck_assert_msg(config_load_file(train_options, &b, path, err, sizeof err) == 0, "%s", err);
    for (const struct option_def *o = train_options; o->name; o++) {
        char va[CONFIG_STRLEN + 32], vb[CONFIG_STRLEN + 32];
        config_format_value(o, &a, va, sizeof va);
        config_format_value(o, &b, vb, sizeof vb);
        ck_assert_msg(!strcmp(va, vb), "--%s: wrote %s, read %s", o->name, va, vb);
    }
    unlink(path);
}
END_TEST

/* Every default in train's table passes its own validation. */
START_TEST(test_train_defaults_valid)
{
    struct train_config c;
    char err[DDT_ERRLEN];
    for (const struct option_def *o = train_options; o->name; o++) {
        ck_assert_ptr_nonnull(o->help);
        ck_assert_msg(config_set(train_options, &c, o->name, o->def, err, sizeof err) == 0, "--%s: %s",
                      o->name, err);
    }
}
END_TEST

/* Train's table writes the optimizer's and the model's own structs, and
 * what no option sets has its fixed value. */
START_TEST(test_train_targets_engine_structs)
{
    static struct train_config c;
    char err[DDT_ERRLEN];
    train_config_defaults(&c);
    ck_assert(c.optim.trust_exempt_vectors);
    ck_assert_int_eq(c.optim.kind, OPTIM_SGD);
    ck_assert_int_eq(c.optim.wd_mode, WD_L2);
    static const char *const set[][2] = {
        { "optimizer", "lamb" }, { "nesterov", "true" }, { "beta2", "0.99" },
        { "adam-eps", "1e-6" }, { "weight-decay", "0.01" }, { "wd-mode", "decoupled" },
        { "wd-exempt-bn-bias", "yes" }, { "trust-coef", "0.002" }, { "bn-group", "8" },
        { "bn-eps", "0.001" }, { "bn-momentum", "0.2" },
    };
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        ck_assert_msg(config_set(train_options, &c, set[i][0], set[i][1], err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.optim.kind, OPTIM_LAMB);
    ck_assert(c.optim.nesterov);
    ck_assert(c.optim.beta2 == 0.99);
    ck_assert(c.optim.eps == 1e-6);
    ck_assert(c.optim.weight_decay == 0.01);
    ck_assert_int_eq(c.optim.wd_mode, WD_DECOUPLED);
    ck_assert(c.optim.wd_exempt_bn_bias);
    ck_assert(c.optim.trust_coef == 0.002);
    ck_assert_int_eq(c.model_opts.bn_group, 8);
    ck_assert(c.model_opts.bn_eps == 0.001);
    ck_assert(c.model_opts.bn_momentum == 0.2);
}
END_TEST

Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, test_defaults);
    tcase_add_loop_test(tc, test_set, 0, (int)(sizeof set_cases / sizeof set_cases[0]));
    tcase_add_test(tc, test_args_forms);
    tcase_add_test(tc, test_config_file);
    tcase_add_test(tc, test_write_round_trip);
    tcase_add_test(tc, test_train_defaults_valid);
    tcase_add_test(tc, test_train_targets_engine_structs);
    suite_add_tcase(s, tc);
    return s;
}
