/* Tests of the control socket: status, requests, mode 0600, one coordinator
 * per run directory, and paths too long for a socket address. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "suites.h"

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/ddtrain-ctl-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void serve_and_ask(const char *run_dir)
{
    struct control c;
    char err[512];
    ck_assert_msg(control_start(&c, run_dir, err, sizeof err) == 0, "%s", err);
    struct control_status s = { .step = 42, .epoch = 3, .global_batch = 256, .lr = 0.5 };
    snprintf(s.last_checkpoint, sizeof s.last_checkpoint, "x.ckpt");
    control_publish(&c, &s);
    Ddtrain__ControlReply *r;
    ck_assert_msg(control_request(run_dir, DDTRAIN__CONTROL_REQUEST__KIND__STATUS, &r, 2000, err,
                                  sizeof err) == 0, "%s", err);
    ck_assert(r->ok);
    ck_assert_uint_eq(r->step, 42);
    ck_assert_uint_eq(r->global_batch, 256);
    ck_assert_str_eq(r->last_checkpoint, "x.ckpt");
    ddtrain__control_reply__free_unpacked(r, NULL);

    int ckpt, stop;
    control_take(&c, &ckpt, &stop);
    ck_assert(!ckpt && !stop);
    ck_assert_int_eq(control_request(run_dir, DDTRAIN__CONTROL_REQUEST__KIND__CHECKPOINT, &r,
                                     2000, err, sizeof err), 0);
    ddtrain__control_reply__free_unpacked(r, NULL);
    ck_assert_int_eq(control_request(run_dir, DDTRAIN__CONTROL_REQUEST__KIND__STOP, &r, 2000,
                                     err, sizeof err), 0);
    ddtrain__control_reply__free_unpacked(r, NULL);
    control_take(&c, &ckpt, &stop);
    ck_assert(ckpt && stop);
    control_take(&c, &ckpt, &stop);
    ck_assert(!ckpt && !stop);

    /* one coordinator per run directory */
    struct control second;
    ck_assert_int_eq(control_start(&second, run_dir, err, sizeof err), -1);
    ck_assert(strstr(err, "another coordinator") != NULL);
    control_stop(&c);
    ck_assert_int_eq(control_request(run_dir, DDTRAIN__CONTROL_REQUEST__KIND__STATUS, &r, 500,
                                     err, sizeof err), -1);
    ck_assert(strstr(err, "no coordinator answers") != NULL);
}

START_TEST(test_status_and_requests)
{
    serve_and_ask(dir);
    char sock[300];
    snprintf(sock, sizeof sock, "%s/%s", dir, CONTROL_SOCKET_NAME);
    ck_assert_int_ne(access(sock, F_OK), 0); /* removed on stop */
}
END_TEST

START_TEST(test_socket_mode)
{
    struct control c;
    char err[512], sock[300];
    ck_assert_int_eq(control_start(&c, dir, err, sizeof err), 0);
    snprintf(sock, sizeof sock, "%s/%s", dir, CONTROL_SOCKET_NAME);
    struct stat st;
    ck_assert_int_eq(stat(sock, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    control_stop(&c);
}
END_TEST

/* A stale socket file of a dead run is replaced. */
START_TEST(test_stale_socket)
{
    struct control c;
    char err[512], sock[300];
    snprintf(sock, sizeof sock, "%s/%s", dir, CONTROL_SOCKET_NAME);
    FILE *f = fopen(sock, "w");
    fclose(f);
    ck_assert_msg(control_start(&c, dir, err, sizeof err) == 0, "%s", err);
    control_stop(&c);
}
END_TEST

/* Run directories deeper than a socket address can name still work. */
START_TEST(test_long_path)
{
    char deep[256];
    snprintf(deep, sizeof deep, "%s/%s", dir,
             "a-very-long-directory-name-that-goes-on-and-on/and-on-and-on-past-the-limit-of-sun-path");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", deep);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_gt((int)strlen(deep), 108);
    serve_and_ask(deep);
}
END_TEST

Suite *control_suite(void)
{
    Suite *s = suite_create("control");
    TCase *tc = tcase_create("socket");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_status_and_requests);
    tcase_add_test(tc, test_socket_mode);
    tcase_add_test(tc, test_stale_socket);
    tcase_add_test(tc, test_long_path);
    suite_add_tcase(s, tc);
    return s;
}
