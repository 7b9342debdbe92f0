/* Tests of the signal requests: each raise() is taken exactly once, several
 * before one take count as one, the two kinds stay apart, and a second SIGINT
 * ends the process with 130. */
#include <signal.h>

#include "signals.h"
#include "suites.h"

/* Takes whatever is pending, so each test starts from no request. */
static void setup(void)
{
    signals_install();
    signals_take_checkpoint();
    signals_take_stop();
}

START_TEST(test_checkpoint_taken_once)
{
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert_int_eq(signals_take_checkpoint(), 1);
    ck_assert_int_eq(signals_take_checkpoint(), 0);
    ck_assert_int_eq(signals_take_stop(), 0);
}
END_TEST

START_TEST(test_two_before_a_take_count_as_one)
{
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert_int_eq(signals_take_checkpoint(), 1);
    ck_assert_int_eq(signals_take_checkpoint(), 0);
}
END_TEST

START_TEST(test_each_after_a_take_is_seen)
{
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert_int_eq(signals_take_checkpoint(), 1);
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert_int_eq(signals_take_checkpoint(), 1);
    ck_assert_int_eq(signals_take_checkpoint(), 0);
}
END_TEST

static const int stop_signals[] = { SIGTERM, SIGUSR2, SIGINT };

START_TEST(test_stop_signals)
{
    ck_assert_int_eq(raise(stop_signals[_i]), 0);
    ck_assert_int_eq(signals_take_stop(), 1);
    ck_assert_int_eq(signals_take_stop(), 0);
    ck_assert_int_eq(signals_take_checkpoint(), 0);
}
END_TEST

START_TEST(test_stop_and_checkpoint_apart)
{
    ck_assert_int_eq(raise(SIGTERM), 0);
    ck_assert_int_eq(raise(SIGUSR1), 0);
    ck_assert_int_eq(raise(SIGTERM), 0);
    ck_assert_int_eq(signals_take_stop(), 1);
    ck_assert_int_eq(signals_take_checkpoint(), 1);
    ck_assert_int_eq(signals_take_stop(), 0);
    ck_assert_int_eq(signals_take_checkpoint(), 0);
}
END_TEST

START_TEST(test_second_interrupt_exits)
{
    raise(SIGINT);
    ck_assert_int_eq(signals_take_stop(), 1);
    raise(SIGINT);
    ck_abort_msg("a second SIGINT should have ended the process");
}
END_TEST

Suite *signals_suite(void)
{
    Suite *s = suite_create("signals");
    TCase *tc = tcase_create("take");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_checkpoint_taken_once);
    tcase_add_test(tc, test_two_before_a_take_count_as_one);
    tcase_add_test(tc, test_each_after_a_take_is_seen);
    tcase_add_loop_test(tc, test_stop_signals, 0, (int)(sizeof stop_signals / sizeof stop_signals[0]));
    tcase_add_test(tc, test_stop_and_checkpoint_apart);
    tcase_add_exit_test(tc, test_second_interrupt_exits, 130);
    suite_add_tcase(s, tc);
    return s;
}
