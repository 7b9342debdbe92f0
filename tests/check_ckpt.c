/* Tests of checkpoint files and the store: round trip, every kind of damage,
 * keep-last-K, the latest pointer and the fallback past damaged files. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"
#include "suites.h"

static char dir[64];
static float w[1000], m1[1000];
static uint32_t shapes[3][2];
static Ddtrain__Tensor tensors[3];
static Ddtrain__Tensor *params[2], *opt[1];
static Ddtrain__ScheduleState sched;
static Ddtrain__Checkpoint msg;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/ddtrain-ckpt-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    for (int i = 0; i < 1000; i++) {
        w[i] = (float)i * 0.25f - 3.0f;
        m1[i] = (float)(i % 7);
    }
    ckpt_tensor_view(&tensors[0], shapes[0], "fc1.weight", w, 900, 30, 30);
    ckpt_tensor_view(&tensors[1], shapes[1], "fc1.bias", w + 900, 100, 100, 1);
    ckpt_tensor_view(&tensors[2], shapes[2], "fc1.weight.m", m1, 900, 30, 30);
    params[0] = &tensors[0];
    params[1] = &tensors[1];
    opt[0] = &tensors[2];
    ddtrain__schedule_state__init(&sched);
    sched.step = 1234;
    sched.seed = 99;
    ddtrain__checkpoint__init(&msg);
    msg.format_version = 1;
    msg.schedule = &sched;
    msg.model_spec = "in:30,fc:30";
    msg.n_params = 2;
    msg.params = params;
    msg.n_optimizer = 1;
    msg.optimizer = opt;
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void path_of(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

START_TEST(test_round_trip)
{
    char path[128], err[CKPT_ERRLEN];
    path_of(path, sizeof path, "a.ckpt");
    ck_assert_msg(ckpt_write_file(path, &msg, err) == 0, "%s", err);
    Ddtrain__Checkpoint *back;
    ck_assert_msg(ckpt_read_file(path, &back, err) == 0, "%s", err);
    ck_assert_uint_eq(back->schedule->step, 1234);
    ck_assert_str_eq(back->model_spec, "in:30,fc:30");
    const Ddtrain__Tensor *t = ckpt_find(back->params, back->n_params, "fc1.bias");
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->n_data, 100);
    ck_assert(memcmp(t->data, w + 900, 100 * sizeof(float)) == 0);
    ck_assert_ptr_null(ckpt_find(back->params, back->n_params, "nope"));
    ckpt_free(back);
    /* nothing but the file itself is left in the directory */
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        files += e->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(files, 1);
}
END_TEST

/* Damage: (offset from the start, or negative from the end; new byte or a
 * truncation length) and what the loader says. */
struct damage {
    const char *what;
    long offset;   /* byte to change; LONG_MIN: truncate to `length` */
    int byte;
    long length;
    const char *says;
};

static const struct damage damages[] = {
    { "magic", 0, 'X', 0, "wrong magic" },
    { "version", 8, 7, 0, "format version 7 is not supported" },
    { "payload bit", 100, -1, 0, "checksum mismatch" },
    { "trailer", -1, -1, 0, "checksum mismatch" },
    { "header only", -2, 0, 24, "truncated" },
    { "half", -2, 0, 2000, "truncated" },
    { "empty", -2, 0, 0, "shorter than the 24-byte header" },
    { "length field", 16, 0x11, 0, "the header announces" },
};

START_TEST(test_damage_detected)
{
    const struct damage *d = &damages[_i];
    char path[128], err[CKPT_ERRLEN] = "";
    path_of(path, sizeof path, "d.ckpt");
    ck_assert_int_eq(ckpt_write_file(path, &msg, err), 0);
    struct stat st;
    stat(path, &st);
    if (d->offset == -2) {
        ck_assert_int_eq(truncate(path, d->length), 0);
    } else {
        FILE *f = fopen(path, "r+b");
        long at = d->offset >= 0 ? d->offset : (long)st.st_size + d->offset;
        fseek(f, at, SEEK_SET);
        int old = fgetc(f);
        fseek(f, at, SEEK_SET);
        fputc(d->byte >= 0 ? d->byte : old ^ 0x01, f);
        fclose(f);
    }
    Ddtrain__Checkpoint *back = NULL;
    ck_assert_int_eq(ckpt_read_file(path, &back, err), -1);
    ck_assert_ptr_null(back);
    ck_assert_msg(strstr(err, d->says) != NULL, "%s: '%s' lacks '%s'", d->what, err, d->says);
    ck_assert_msg(strstr(err, path) != NULL, "%s: message does not name the file", d->what);
}
END_TEST

static void quiet(const char *m)
{
    (void)m;
}

static int warnings;
static void count_warning(const char *m)
{
    (void)m;
    warnings++;
}

START_TEST(test_store_keep_and_latest)
{
    char err[CKPT_ERRLEN], written[256], path[256];
    Ddtrain__Checkpoint *back;
    ck_assert_int_eq(ckpt_store_load_latest(dir, &back, path, sizeof path, quiet, err), 1);
    for (uint64_t s = 10; s <= 50; s += 10) {
        sched.step = s;
        ck_assert_int_eq(ckpt_store_save(dir, s, &msg, 3, written, sizeof written, err), 0);
    }
    char sub[128];
    snprintf(sub, sizeof sub, "%s/checkpoints", dir);
    DIR *d = opendir(sub);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        n += !strncmp(e->d_name, "step-", 5);
    closedir(d);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(ckpt_store_load_latest(dir, &back, path, sizeof path, quiet, err), 0);
    ck_assert_uint_eq(back->schedule->step, 50);
    ckpt_free(back);

    /* the newest damaged: a warning, then the one before it */
    snprintf(path, sizeof path, "%s/checkpoints/step-00000050.ckpt", dir);
    ck_assert_int_eq(truncate(path, 100), 0);
    warnings = 0;
    ck_assert_int_eq(ckpt_store_load_latest(dir, &back, path, sizeof path, count_warning, err), 0);
    ck_assert_int_eq(warnings, 1);
    ck_assert_uint_eq(back->schedule->step, 40);
    ck_assert(strstr(path, "step-00000040.ckpt") != NULL);
    ckpt_free(back);

    /* all damaged: an error that says so */
    for (int s = 30; s <= 40; s += 10) {
        snprintf(path, sizeof path, "%s/checkpoints/step-%08d.ckpt", dir, s);
        ck_assert_int_eq(truncate(path, 10), 0);
    }
    ck_assert_int_eq(ckpt_store_load_latest(dir, &back, path, sizeof path, quiet, err), -1);
    ck_assert(strstr(err, "no valid checkpoint") != NULL);
}
END_TEST

Suite *ckpt_suite(void)
{
    Suite *s = suite_create("ckpt");
    TCase *tc = tcase_create("file");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_round_trip);
    tcase_add_loop_test(tc, test_damage_detected, 0, (int)(sizeof damages / sizeof damages[0]));
    tcase_add_test(tc, test_store_keep_and_latest);
    suite_add_tcase(s, tc);
    return s;
}
