/* Tests of the guards of blocking calls (comm_guard_enter): the watchdog's
 * thread tells on_stall at half the deadline and at all of it, with what a
 * collective can say of the missing ranks, and nothing of a call that ends
 * in time. No MPI: the guarded "call" is a sleep, and the fatal report,
 * which ends the job in ddtrain, is only recorded here. */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "comm_wait.h"
#include "suites.h"

#define MAX_CALLS 8

/* What on_stall heard, written by the watchdog's thread. */
static struct {
    pthread_mutex_t lock;
    int n;
    struct comm_stall s[MAX_CALLS];
    int missing[MAX_CALLS];  /* s[i].missing[0], when there was one */
} heard = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void record(void *user, const struct comm_stall *s)
{
    ck_assert_ptr_eq(user, &heard);
    pthread_mutex_lock(&heard.lock);
    if (heard.n < MAX_CALLS) {
        heard.s[heard.n] = *s;
        heard.missing[heard.n] = s->missing && s->nmissing > 0 ? s->missing[0] : -1;
    }
    heard.n++;
    pthread_mutex_unlock(&heard.lock);
}

static int calls(void)
{
    pthread_mutex_lock(&heard.lock);
    int n = heard.n;
    pthread_mutex_unlock(&heard.lock);
    return n;
}

static void nap(double seconds)
{
    struct timespec ts = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
    nanosleep(&ts, NULL);
}

/* Waits up to `limit` seconds for `n` calls; returns how many there were. */
static int await_calls(int n, double limit)
{
    for (double t = 0; t < limit && calls() < n; t += 0.01)
        nap(0.01);
    return calls();
}

static void start(struct comm_watch *w, double timeout, int rank, int nranks)
{
    pthread_mutex_lock(&heard.lock);
    heard.n = 0;
    pthread_mutex_unlock(&heard.lock);
    struct comm_watch_settings s = { .timeout = timeout, .step_multiple = 20,
                                     .on_stall = record, .user = &heard };
    char err[128] = "";
    ck_assert_msg(comm_watch_init(w, &s, rank, nranks, err, sizeof err) == 0, "%s", err);
    ck_assert(w->thread_on);
}

START_TEST(test_half_then_fatal)
{
    struct comm_watch w;
    start(&w, 0.8, 1, 3);
    w.step = 7;
    comm_guard_enter(&w, "the test's collective");
    ck_assert_int_eq(await_calls(2, 10), 2);
    nap(0.1); /* and no third */
    comm_guard_leave(&w);
    ck_assert_int_eq(calls(), 2);
    for (int i = 0; i < 2; i++) {
        const struct comm_stall *s = &heard.s[i];
        ck_assert_str_eq(s->where, "the test's collective");
        ck_assert_int_eq(s->step, 7);
        ck_assert_int_eq(s->rank, 1);
        ck_assert(s->off_main_thread);
        /* three ranks: a collective cannot say which one it lacks */
        ck_assert_ptr_null(s->missing);
        ck_assert_int_eq(s->nmissing, 0);
        ck_assert_double_eq(s->deadline, 0.8);
        ck_assert_int_eq(s->fatal, i == 1);
    }
    /* the thread looks every 0.25 s, then every eighth of the deadline */
    ck_assert_double_ge(heard.s[0].waited, 0.4);
    ck_assert_double_lt(heard.s[0].waited, 0.8);
    ck_assert_double_ge(heard.s[1].waited, 0.8);
    comm_watch_free(&w);
}
END_TEST

START_TEST(test_two_ranks_name_the_other)
{
    struct comm_watch w;
    start(&w, 0.1, 0, 2);
    comm_guard_enter(&w, "a collective of two");
    ck_assert_int_eq(await_calls(2, 10), 2);
    comm_guard_leave(&w);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(heard.s[i].nmissing, 1);
        ck_assert_int_eq(heard.missing[i], 1);
    }
    comm_watch_free(&w);
}
END_TEST

START_TEST(test_left_in_time_tells_nothing)
{
    struct comm_watch w;
    start(&w, 0.3, 0, 4);
    comm_guard_enter(&w, "a quick one");
    nap(0.05);
    comm_guard_leave(&w);
    /* many short calls for longer than the deadline: each is timed alone */
    for (int i = 0; i < 300; i++) {
        comm_guard_enter(&w, "one of many");
        nap(0.002);
        comm_guard_leave(&w);
    }
    nap(0.5);
    ck_assert_int_eq(calls(), 0);
    comm_watch_free(&w);
}
END_TEST

START_TEST(test_deadline_follows_the_steps)
{
    struct comm_watch w;
    start(&w, 0.05, 0, 3);
    for (int i = 0; i < 5; i++)
        comm_watch_step_time(&w, 0.05); /* 20 x 0.05 s = 1 s > 0.05 s */
    comm_guard_enter(&w, "after slow steps");
    nap(0.2); /* past the timeout, well before half of the scaled deadline */
    comm_guard_leave(&w);
    ck_assert_int_eq(calls(), 0);
    comm_guard_enter(&w, "after slow steps");
    ck_assert_int_eq(await_calls(2, 10), 2);
    comm_guard_leave(&w);
    ck_assert_double_eq_tol(heard.s[1].deadline, 1.0, 1e-12);
    comm_watch_free(&w);
}
END_TEST

START_TEST(test_off_without_a_timeout)
{
    struct comm_watch w, zero;
    struct comm_watch_settings s = { .timeout = 0, .on_stall = record, .user = &heard };
    char err[128];
    ck_assert_int_eq(comm_watch_init(&w, &s, 0, 2, err, sizeof err), 0);
    ck_assert(!w.thread_on);
    comm_guard_enter(&w, "unwatched");
    comm_guard_leave(&w);
    comm_guard_enter(NULL, "no watch at all");
    comm_guard_leave(NULL);
    comm_watch_free(&w);
    comm_watch_free(&w);
    memset(&zero, 0, sizeof zero);
    comm_watch_free(&zero);
}
END_TEST

Suite *watch_suite(void)
{
    Suite *s = suite_create("watch");
    TCase *tc = tcase_create("guard");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_half_then_fatal);
    tcase_add_test(tc, test_two_ranks_name_the_other);
    tcase_add_test(tc, test_left_in_time_tells_nothing);
    tcase_add_test(tc, test_deadline_follows_the_steps);
    tcase_add_test(tc, test_off_without_a_timeout);
    suite_add_tcase(s, tc);
    return s;
}
