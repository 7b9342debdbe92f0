/* Tests of the counter-based generator and the sampler. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "sampler.h"
#include "suites.h"

START_TEST(test_rng_pure_function)
{
    ck_assert_uint_eq(rng_u64(1, 2, 3, 4, 5), rng_u64(1, 2, 3, 4, 5));
    ck_assert_uint_ne(rng_u64(1, 2, 3, 4, 5), rng_u64(1, 2, 3, 4, 6));
    ck_assert_uint_ne(rng_u64(1, 2, 3, 4, 5), rng_u64(2, 2, 3, 4, 5));
    ck_assert_uint_ne(rng_u64(1, RNG_SHUFFLE, 0, 0, 0), rng_u64(1, RNG_INIT, 0, 0, 0));
}
END_TEST

START_TEST(test_rng_uniform_moments)
{
    const int n = 200000;
    double s = 0, s2 = 0, lo = 1, hi = 0;
    for (int i = 0; i < n; i++) {
        double u = rng_uniform(7, 1, 0, (uint64_t)i, 0);
        s += u;
        s2 += u * u;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    ck_assert(lo >= 0.0 && hi < 1.0);
    ck_assert_double_eq_tol(s / n, 0.5, 0.005);
    ck_assert_double_eq_tol(s2 / n - (s / n) * (s / n), 1.0 / 12, 0.002);
}
END_TEST

START_TEST(test_rng_normal_moments)
{
    const int n = 200000;
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        double z = rng_normal(7, 2, 0, (uint64_t)i, 0);
        ck_assert(isfinite(z));
        s += z;
        s2 += z * z;
    }
    ck_assert_double_eq_tol(s / n, 0.0, 0.01);
    ck_assert_double_eq_tol(s2 / n, 1.0, 0.02);
}
END_TEST

START_TEST(test_rng_below_range)
{
    int counts[7] = { 0 };
    for (int i = 0; i < 70000; i++) {
        uint64_t v = rng_below(7, 3, 1, 0, (uint64_t)i, 0);
        ck_assert_uint_lt(v, 7);
        counts[v]++;
    }
    for (int k = 0; k < 7; k++)
        ck_assert_int_gt(counts[k], 9000);
}
END_TEST

START_TEST(test_permutation_is_permutation)
{
    const size_t n = 1000;
    uint32_t *p = malloc(n * sizeof *p), *q = malloc(n * sizeof *q);
    char *seen = calloc(n, 1);
    sampler_permutation(p, n, 42, 3);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_lt(p[i], n);
        ck_assert(!seen[p[i]]);
        seen[p[i]] = 1;
    }
    sampler_permutation(q, n, 42, 3);
    ck_assert(memcmp(p, q, n * sizeof *p) == 0);
    sampler_permutation(q, n, 42, 4);
    ck_assert(memcmp(p, q, n * sizeof *p) != 0);
    sampler_permutation(q, n, 43, 3);
    ck_assert(memcmp(p, q, n * sizeof *p) != 0);
    free(p);
    free(q);
    free(seen);
}
END_TEST

/* Slices tile the batch exactly, in rank order, sizes within one. */
static const int slice_cases[][2] = { { 256, 1 }, { 256, 2 }, { 255, 2 }, { 10, 4 }, { 7, 7 }, { 1000, 3 } };

/* rng.h promises that streams never collide: the analyses' subset is not
 * the order of any early training epoch (it was epoch RNG_SUBSET's), and
 * different purposes give different draws for the same counters. */
START_TEST(test_streams_differ)
{
    enum { N = 1000 };
    static uint32_t subset[N], epoch[N];
    for (uint64_t seed = 1; seed <= 3; seed++) {
        sampler_subset(subset, N, seed, 0);
        for (uint64_t e = 0; e < 16; e++) {
            sampler_permutation(epoch, N, seed, e);
            ck_assert_msg(memcmp(subset, epoch, sizeof subset) != 0,
                          "seed %d: the subset is epoch %d's order", (int)seed, (int)e);
        }
    }
    for (uint64_t p = RNG_SHUFFLE; p <= RNG_AUGMENT; p++)
        for (uint64_t q = p + 1; q <= RNG_AUGMENT; q++)
            ck_assert(rng_u64(1, p, 4, 7, 0) != rng_u64(1, q, 4, 7, 0));
}
END_TEST

START_TEST(test_slices_tile_batch)
{
    int B = slice_cases[_i][0], N = slice_cases[_i][1];
    int next = 0, lo = B, hi = 0;
    for (int r = 0; r < N; r++) {
        int first, count;
        sampler_slice(B, r, N, &first, &count);
        ck_assert_int_eq(first, next);
        next = first + count;
        lo = count < lo ? count : lo;
        hi = count > hi ? count : hi;
    }
    ck_assert_int_eq(next, B);
    ck_assert_int_le(hi - lo, 1);
}
END_TEST

Suite *rng_suite(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("rng");
    tcase_add_test(tc, test_rng_pure_function);
    tcase_add_test(tc, test_rng_uniform_moments);
    tcase_add_test(tc, test_rng_normal_moments);
    tcase_add_test(tc, test_rng_below_range);
    suite_add_tcase(s, tc);
    tc = tcase_create("sampler");
    tcase_add_test(tc, test_permutation_is_permutation);
    tcase_add_test(tc, test_streams_differ);
    tcase_add_loop_test(tc, test_slices_tile_batch, 0,
                        (int)(sizeof slice_cases / sizeof slice_cases[0]));
    suite_add_tcase(s, tc);
    return s;
}
