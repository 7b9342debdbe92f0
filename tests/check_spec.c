/* Tests of the model spec parser and the table of layer kinds. */
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
    { "in:4,lstm:3,fc:2", "'lstm:3' is not a layer" },
    { "in:4,fc:0,fc:2", "width must be a whole number" },
    { "in:4,dropout:1,fc:2", "dropout rate must be" },
    { "in:4,dropout:-0.1,fc:2", "dropout rate must be" },
    { "in:4,fc:3,in:3,fc:2", "in:N may only come first" },
    { "in:4,bn:3,fc:2", "'bn:3' is not a layer" },
    { "in:4,fc,fc:2", "'fc' is not a layer (known: in:N, fc:N, bn, relu, dropout:P, conv:OCkK[sS][pP][b0], maxpool:K[sS], avgpool:K[sS], gap, res:OC[sS])" },
    { "in:4,relu:1,fc:2", "'relu:1' is not a layer" },
    { "in:4,,fc:2", "item 2 '' is not a layer" },
    { "in:,fc:2", "item 1 'in:': the width must be" },
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

/* The table finds its kinds by their exact names and nothing else. */
START_TEST(test_kind_table)
{
    ck_assert_ptr_eq(layer_kind_find("fc", 2), &layer_fc);
    ck_assert_ptr_eq(layer_kind_find("dropout", 7), &layer_dropout);
    ck_assert_ptr_eq(layer_kind_find("in", 2), &layer_input);
    ck_assert_ptr_eq(layer_kind_find("conv", 4), &layer_conv);
    ck_assert_ptr_null(layer_kind_find("f", 1));
    ck_assert_ptr_null(layer_kind_find("fcx", 3));
    ck_assert_ptr_null(layer_kind_find("", 0));
    char usage[256];
    layer_kind_usage(usage, sizeof usage);
    ck_assert_str_eq(usage, "in:N, fc:N, bn, relu, dropout:P, conv:OCkK[sS][pP][b0], maxpool:K[sS], avgpool:K[sS], gap, res:OC[sS]");
}
END_TEST

/* Shapes propagate item by item: fc flattens to C x 1 x 1, elementwise
 * layers keep their input's. */
START_TEST(test_spec_shapes)
{
    struct spec s;
    char err[256];
    ck_assert_int_eq(spec_parse(&s, "in:784,fc:256,bn,relu,dropout:0.5,fc:10", 0, 0, err, sizeof err), 0);
    struct shape sh[SPEC_MAX_ITEMS];
    ck_assert_msg(spec_shapes(&s, sh, err, sizeof err) == 0, "%s", err);
    static const int c[] = { 784, 256, 256, 256, 256, 10 };
    ck_assert_int_eq(s.n, 6);
    for (int i = 0; i < s.n; i++) {
        ck_assert_int_eq(sh[i].c, c[i]);
        ck_assert_int_eq(sh[i].h, 1);
        ck_assert_int_eq(sh[i].w, 1);
    }
    /* relu, dropout and bn (over channels) keep a spatial shape, fc flattens it */
    struct shape in = { 3, 4, 5 }, out;
    ck_assert_int_eq(layer_relu.out_shape(&s.items[3].arg, in, &out, err, sizeof err), 0);
    ck_assert(out.c == 3 && out.h == 4 && out.w == 5);
    ck_assert_int_eq(layer_dropout.out_shape(&s.items[4].arg, in, &out, err, sizeof err), 0);
    ck_assert(out.c == 3 && out.h == 4 && out.w == 5);
    ck_assert_int_eq(layer_fc.out_shape(&s.items[1].arg, in, &out, err, sizeof err), 0);
    ck_assert(out.c == 256 && out.h == 1 && out.w == 1);
    ck_assert_int_eq(layer_bn.out_shape(&s.items[2].arg, in, &out, err, sizeof err), 0);
    ck_assert(out.c == 3 && out.h == 4 && out.w == 5);
}
END_TEST

Suite *spec_suite(void)
{
    Suite *s = suite_create("spec");
    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, test_spec_good, 0, (int)(sizeof good / sizeof good[0]));
    tcase_add_loop_test(tc, test_spec_bad, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, test_kind_table);
    tcase_add_test(tc, test_spec_shapes);
    suite_add_tcase(s, tc);
    return s;
}
