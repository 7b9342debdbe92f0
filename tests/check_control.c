/* Tests of the control socket: status, requests, mode 0600, one coordinator
 * per run directory, paths too long for a socket address, and clients that
 * try to hold it (silent, trickling, a full backlog). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check_util.h"
#include "control.h"
#include "suites.h"

static char dir[256];

static void setup(void)
{
    tu_tmpdir(dir, sizeof dir, "ctl");
}

static void teardown(void)
{
    tu_rmtree(dir);
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

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_until(int64_t when_ms)
{
    int64_t left = when_ms - now_ms();
    if (left > 0)
        poll(NULL, 0, (int)left);
}

static void socket_path(struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    snprintf(sa->sun_path, sizeof sa->sun_path, "%s/%s", dir, CONTROL_SOCKET_NAME);
}

/* A client that connects and then does what the test says, byte by byte. */
static int raw_connect(void)
{
    struct sockaddr_un sa;
    socket_path(&sa);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect: %s",
                  strerror(errno));
    return fd;
}

/* Did the server hang up on fd (end of file, no reply) within ms? */
static int hung_up_within(int fd, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    if (poll(&pfd, 1, ms) != 1)
        return 0;
    char byte;
    return read(fd, &byte, 1) == 0;
}

/* A real status request, answered within limit_ms. */
static void status_within(int limit_ms)
{
    char err[512];
    Ddtrain__ControlReply *r;
    int64_t t0 = now_ms();
    ck_assert_msg(control_request(dir, DDTRAIN__CONTROL_REQUEST__KIND__STATUS, &r, limit_ms, err,
                                  sizeof err) == 0, "status: %s", err);
    ck_assert(r->ok);
    ck_assert_uint_eq(r->step, 7);
    ddtrain__control_reply__free_unpacked(r, NULL);
    ck_assert_int_lt(now_ms() - t0, limit_ms);
}

static struct control served;

static void serve_setup(void)
{
    setup();
    char err[512];
    ck_assert_msg(control_start(&served, dir, err, sizeof err) == 0, "%s", err);
    struct control_status s = { .step = 7 };
    control_publish(&served, &s);
}

static void serve_teardown(void)
{
    control_stop(&served);
    teardown();
}

/* Silent clients, as many as the listen backlog held before, do not delay a
 * real request, and each is dropped at its deadline. */
START_TEST(test_silent_clients)
{
    int fds[8];
    for (int i = 0; i < 8; i++)
        fds[i] = raw_connect();
    status_within(1000);
    for (int i = 0; i < 8; i++) {
        ck_assert_msg(hung_up_within(fds[i], CONTROL_REQUEST_MS + 1000),
                      "silent client %d was not dropped at its deadline", i);
        close(fds[i]);
    }
}
END_TEST

/* Past the cap on connections the oldest is dropped to make room, long
 * before its deadline. */
START_TEST(test_more_clients_than_the_cap)
{
    enum { N = CONTROL_MAX_CLIENTS + 4 };
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = raw_connect();
    status_within(1000);
    ck_assert_msg(hung_up_within(fds[0], CONTROL_REQUEST_MS / 4),
                  "the oldest connection was not dropped for a new one");
    for (int i = 0; i < N; i++)
        close(fds[i]);
}
END_TEST

/* A request trickled byte by byte: others are answered meanwhile, and the
 * stop is dropped at the deadline, unanswered and not carried out, though no
 * single gap is long. gap_ms per loop iteration: the whole message's gaps
 * add up past CONTROL_REQUEST_MS. */
static const int trickle_gap_ms[] = { 700, 1500 };

START_TEST(test_trickling_stop)
{
    static const uint8_t stop[6] = { 2, 0, 0, 0, 0x08, DDTRAIN__CONTROL_REQUEST__KIND__STOP };
    int gap = trickle_gap_ms[_i];
    int fd = raw_connect();
    int64_t t0 = now_ms();
    for (int i = 0; i < (int)sizeof stop; i++) {
        if (send(fd, stop + i, 1, MSG_NOSIGNAL) != 1)
            break; /* already dropped */
        status_within(500);
        sleep_until(t0 + (int64_t)(i + 1) * gap);
    }
    ck_assert_msg(hung_up_within(fd, 1000), "the trickling client got a reply or was kept");
    close(fd);
    int ckpt, stop_taken;
    control_take(&served, &ckpt, &stop_taken);
    ck_assert_msg(!stop_taken && !ckpt, "a request cut off by its deadline was carried out");
    status_within(500);
}
END_TEST

/* A complete stop whose client hangs up before the reply could be written
 * (the test holds the lock the reply waits for) is not carried out: the
 * client saw no reply. */
START_TEST(test_stop_of_a_client_gone)
{
    static const uint8_t stop[6] = { 2, 0, 0, 0, 0x08, DDTRAIN__CONTROL_REQUEST__KIND__STOP };
    pthread_mutex_lock(&served.lock);
    int fd = raw_connect();
    ck_assert_int_eq(send(fd, stop, sizeof stop, MSG_NOSIGNAL), (ssize_t)sizeof stop);
    poll(NULL, 0, 200); /* the server reads it and waits for the lock */
    close(fd);
    pthread_mutex_unlock(&served.lock);
    status_within(500); /* served after the stop's connection */
    int ckpt, stop_taken;
    control_take(&served, &ckpt, &stop_taken);
    ck_assert_msg(!stop_taken, "a stop whose client left before the reply was carried out");
}
END_TEST

/* A full backlog (a listener that never accepts) does not hold the client
 * past its timeout. */
START_TEST(test_connect_timeout)
{
    struct sockaddr_un sa;
    socket_path(&sa);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(lfd, 0);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(lfd, 0), 0);
    int fill[16], n = 0;
    for (; n < 16; n++) {
        fill[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (connect(fill[n], (struct sockaddr *)&sa, sizeof sa) != 0) {
            ck_assert_int_eq(errno, EAGAIN);
            close(fill[n]);
            break;
        }
    }
    ck_assert_int_lt(n, 16); /* the backlog is full */
    char err[512];
    Ddtrain__ControlReply *r;
    int64_t t0 = now_ms();
    ck_assert_int_eq(control_request(dir, DDTRAIN__CONTROL_REQUEST__KIND__STATUS, &r, 500, err,
                                     sizeof err), -1);
    int64_t took = now_ms() - t0;
    ck_assert_msg(took >= 450 && took < 1500, "the client gave up after %lld ms, asked 500",
                  (long long)took);
    ck_assert_msg(strstr(err, "did not accept the connection") != NULL, "%s", err);
    for (int i = 0; i < n; i++)
        close(fill[i]);
    close(lfd);
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

    TCase *busy = tcase_create("busy");
    tcase_add_checked_fixture(busy, serve_setup, serve_teardown);
    tcase_set_timeout(busy, 20);
    tcase_add_test(busy, test_silent_clients);
    tcase_add_test(busy, test_more_clients_than_the_cap);
    tcase_add_test(busy, test_stop_of_a_client_gone);
    tcase_add_loop_test(busy, test_trickling_stop, 0,
                        (int)(sizeof trickle_gap_ms / sizeof trickle_gap_ms[0]));
    suite_add_tcase(s, busy);

    TCase *client = tcase_create("client");
    tcase_add_checked_fixture(client, setup, teardown);
    tcase_set_timeout(client, 10);
    tcase_add_test(client, test_connect_timeout);
    suite_add_tcase(s, client);
    return s;
}
