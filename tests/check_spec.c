/* Tests of the model spec parser. */
#include <string.h>

#include "spec.h"
#include "suites.h"

struct good_case {
    const char *text;
    int bn;
    float dropout;
    const char *canonical;
};

static const struct good_case good[] = {
    { "784-10", 0, 0, "in:784,fc:10" },
    { "784-1024-1024-10", 0, 0, "in:784,fc:1024,relu,fc:1024,relu,fc:10" },
    { "784-1024-1024-10", 1, 0, "in:784,fc:1024,bn,relu,fc:1024,bn,relu,fc:10" },
    { "784-64-10", 1, 0.5f, "in:784,fc:64,bn,relu,dropout:0.5,fc:10" },
    { "in:4,fc:3,relu,fc:2", 1, 0.5f, "in:4,fc:3,relu,fc:2" },
    { "in:4,fc:3,bn,relu,dropout:0.25,fc:2", 0, 0, "in:4,fc:3,bn,relu,dropout:0.25,fc:2" },
};

START_TEST(test_spec_good)
{
    const struct good_case *c = &good[_i];
    struct spec s;
    char err[256], out[512];
    ck_assert_msg(spec_parse(&s, c->text, c->bn, c->dropout, err, sizeof err) == 0, "%s: %s",
                  c->text, err);
    spec_format(&s, out, sizeof out);
    ck_assert_str_eq(out, c->canonical);
    /* the canonical form parses back to itself */
    struct spec again;
    ck_assert_int_eq(spec_parse(&again, out, 0, 0, err, sizeof err), 0);
    ck_assert_int_eq(again.n, s.n);
    ck_assert_int_eq(spec_input_width(&s), spec_input_width(&again));
    ck_assert_int_eq(spec_output_width(&s), spec_output_width(&again));
}
END_TEST

struct bad_case {
    const char *text;
    const char *says;
};

static const struct bad_case bad[] = {
    { "", "empty" },
    { "784", "at least an input and an output" },
    { "784--10", "not a layer width" },
    { "784-0-10", "not a layer width" },
    { "784-x-10", "not a layer width" },
    { "784-10-", "not a layer width" },
    { "784-99999999999-10", "not a layer width" },
    { "fc:10", "must start with in:N" },
    { "in:4,relu", "must end with fc:K" },
    { "in:4,conv:3,fc:2", "'conv:3' is not a layer" },
    { "in:4,fc:0,fc:2", "width must be a whole number" },
    { "in:4,dropout:1,fc:2", "dropout rate must be" },
    { "in:4,dropout:-0.1,fc:2", "dropout rate must be" },
    { "in:4,fc:3,in:3,fc:2", "in:N may only come first" },
    { "in:4,bn:3,fc:2", "'bn:3' is not a layer" },
};

START_TEST(test_spec_bad)
{
    const struct bad_case *c = &bad[_i];
    struct spec s;
    char err[256] = "";
    ck_assert_int_eq(spec_parse(&s, c->text, 1, 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, c->says) != NULL, "'%s': message '%s' lacks '%s'", c->text, err,
                  c->says);
}
END_TEST

Suite *spec_suite(void)
{
    Suite *s = suite_create("spec");
    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, test_spec_good, 0, (int)(sizeof good / sizeof good[0]));
    tcase_add_loop_test(tc, test_spec_bad, 0, (int)(sizeof bad / sizeof bad[0]));
    suite_add_tcase(s, tc);
    return s;
}
