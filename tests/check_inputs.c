/* Tests of what the program reads and shows: only regular files are opened
 * (a FIFO or a directory fails at once, by type), binary content is named
 * as such, the checkpoint store cleans up after a killed writer, and
 * `inspect` prints bounded shapes and valid JSON whatever a checkpoint holds. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_util.h"
#include "ckpt.h"
#include "commands.h"
#include "dataset.h"
#include "regfile.h"
#include "suites.h"
#include "train.h" /* daemon/config.h: a bare "config.h" here is autoconf's */

static char dir[64];

static void setup(void)
{
    tu_tmpdir(dir, sizeof dir, "inputs");
}

static void teardown(void)
{
    tu_rmtree(dir);
}

/* ---- regular files only ------------------------------------------------------ */

/* _i: 0 a FIFO with no writer (an open without O_NONBLOCK would block and
 * the tcase timeout fail the test), 1 a directory. */
static void make_odd(char *path, size_t len, int kind)
{
    tu_path(path, len, dir, kind == 0 ? "fifo" : "folder");
    ck_assert_int_eq(kind == 0 ? mkfifo(path, 0600) : mkdir(path, 0700), 0);
}

static void assert_refused(const char *err, const char *path, int kind)
{
    ck_assert_msg(strstr(err, path) != NULL, "'%s' does not name %s", err, path);
    ck_assert_msg(strstr(err, "not a regular file") != NULL, "%s", err);
    ck_assert_msg(strstr(err, kind == 0 ? "FIFO" : "directory") != NULL, "%s", err);
}

START_TEST(test_regfile_refuses)
{
    char path[128], err[512] = "";
    make_odd(path, sizeof path, _i);
    ck_assert_int_eq(regfile_open(path, err, sizeof err), -1);
    assert_refused(err, path, _i);
    ck_assert_ptr_null(regfile_fopen(path, "r", err, sizeof err));
    tu_path(path, sizeof path, dir, "plain");
    tu_write_file(path, "x", 1);
    FILE *f = regfile_fopen(path, "r", err, sizeof err);
    ck_assert_msg(f != NULL, "%s", err);
    ck_assert_int_eq(fgetc(f), 'x');
    fclose(f);
    tu_path(path, sizeof path, dir, "nowhere");
    ck_assert_ptr_null(regfile_fopen(path, "r", err, sizeof err));
    ck_assert_msg(strstr(err, "No such file") && strstr(err, path), "%s", err);
}
END_TEST

START_TEST(test_readers_refuse)
{
    char path[128], err[DDT_ERRLEN] = "";
    make_odd(path, sizeof path, _i);
    Ddtrain__Checkpoint *msg = NULL;
    ck_assert_int_eq(ckpt_read_file(path, &msg, err, sizeof err), -1);
    assert_refused(err, path, _i);

    struct dataset d;
    err[0] = 0;
    ck_assert_int_eq(dataset_load_csv(&d, path, 3, 0, err, sizeof err), -1);
    assert_refused(err, path, _i);
    err[0] = 0;
    ck_assert_int_eq(dataset_load_idx(&d, path, path, 3, 0, err, sizeof err), -1);
    assert_refused(err, path, _i);

    struct { int n; } target;
    static const struct option_def none[] = { { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL } };
    err[0] = 0;
    ck_assert_int_eq(config_load_file(none, &target, path, err, sizeof err), -1);
    assert_refused(err, path, _i);
}
END_TEST

/* ---- binary content named as such ------------------------------------------------ */

START_TEST(test_config_nul)
{
    char path[128], err[DDT_ERRLEN] = "";
    tu_path(path, sizeof path, dir, "binary.conf");
    tu_write_file(path, "# fine\nab\0cd\n", 13);
    struct { int n; } target;
    static const struct option_def none[] = { { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL } };
    ck_assert_int_eq(config_load_file(none, &target, path, err, sizeof err), -1);
    ck_assert_msg(strstr(err, path) && strstr(err, "line 2 has a NUL byte") &&
                      strstr(err, "not a text file"),
                  "%s", err);
    /* a long text line keeps its own message */
    char line[1100];
    memset(line, 'a', sizeof line);
    tu_write_file(path, line, sizeof line);
    ck_assert_int_eq(config_load_file(none, &target, path, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "line 1: longer than 1022 characters"), "%s", err);
}
END_TEST

START_TEST(test_csv_nul)
{
    char path[128], err[DDT_ERRLEN] = "";
    tu_path(path, sizeof path, dir, "data.csv");
    tu_write_file(path, "1,2,3\n0,1\0,2\n", 13);
    struct dataset d;
    ck_assert_int_eq(dataset_load_csv(&d, path, 3, 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, path) && strstr(err, "line 2 has a NUL byte"), "%s", err);
}
END_TEST

/* ---- checkpoints: the store's temporaries, empty payloads ------------------------ */

static float values[4] = { 1, 2, 3, 4 };

/* A one-tensor checkpoint message, with its tensor's shape and name given. */
static void small_checkpoint(Ddtrain__Checkpoint *msg, Ddtrain__Tensor *t, Ddtrain__Tensor **ts,
                             uint32_t *shape, size_t n_shape, const char *name)
{
    ddtrain__tensor__init(t);
    t->name = (char *)name;
    t->n_shape = n_shape;
    t->shape = shape;
    t->n_data = 4;
    t->data = values;
    t->crc32 = ckpt_tensor_crc(values, 4);
    ts[0] = t;
    ddtrain__checkpoint__init(msg);
    msg->format_version = 1;
    msg->model_spec = "in:4,fc:1";
    msg->n_params = 1;
    msg->params = ts;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

START_TEST(test_store_removes_temps)
{
    char ckdir[128], path[256], err[DDT_ERRLEN], written[256];
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints", dir);
    ck_assert_int_eq(mkdir(ckdir, 0700), 0);
    static const char *stale[] = { "step-00000005.ckpt.tmp.4242", "latest.tmp.17" };
    static const char *kept[] = { "step-00000005.ckpt.tmp.x", "notes.tmp.1", "step-5.ckpt.tmp.",
                                  "latest.tmp.1.bak", "mine.ckpt.tmp.3" };
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", ckdir, stale[i]);
        tu_write_file(path, "partial", 7);
    }
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", ckdir, kept[i]);
        tu_write_file(path, "other", 5);
    }
    /* at start (the coordinator calls it when it opens the run directory) */
    ck_assert_int_eq(ckpt_store_remove_temps(dir), 2);
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", ckdir, stale[i]);
        ck_assert_msg(!exists(path), "%s was left", path);
    }
    /* and when a save prunes old checkpoints */
    snprintf(path, sizeof path, "%s/step-00000009.ckpt.tmp.99", ckdir);
    tu_write_file(path, "partial", 7);
    Ddtrain__Checkpoint msg;
    Ddtrain__Tensor t, *ts[1];
    uint32_t shape[1] = { 4 };
    small_checkpoint(&msg, &t, ts, shape, 1, "w");
    ck_assert_msg(ckpt_store_save(dir, 10, &msg, 2, written, sizeof written, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(!exists(path), "%s was left by the save", path);
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", ckdir, kept[i]);
        ck_assert_msg(exists(path), "%s is not the store's and was removed", path);
    }
    ck_assert(exists(written));
}
END_TEST

static char warned[DDT_ERRLEN + 128];

static void keep_warning(const char *m)
{
    snprintf(warned, sizeof warned, "%s", m);
}

START_TEST(test_empty_payload)
{
    /* a header announcing 0 bytes, and the CRC-32 of nothing (0) */
    static const unsigned char empty[CKPT_HEADER_BYTES + 4] = { 'D', 'D', 'T', 'C', 'K', 'P', 'T',
                                                                '\n', 1 };
    char ckdir[128], path[256], err[DDT_ERRLEN];
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints", dir);
    ck_assert_int_eq(mkdir(ckdir, 0700), 0);
    snprintf(path, sizeof path, "%s/step-00000001.ckpt", ckdir);
    tu_write_file(path, empty, sizeof empty);
    /* the store skips it as damaged, with the reason */
    Ddtrain__Checkpoint *msg = NULL;
    char found[256];
    warned[0] = 0;
    ck_assert_int_eq(ckpt_store_load_latest(dir, &msg, found, sizeof found, keep_warning, err, sizeof err), -1);
    ck_assert_ptr_null(msg);
    ck_assert_msg(strstr(err, "no valid checkpoint"), "%s", err);
    ck_assert_msg(strstr(warned, path) && strstr(warned, "payload is empty"), "%s", warned);
    /* the file itself is well-formed: what it holds is nothing */
    ck_assert_msg(ckpt_read_file(path, &msg, err, sizeof err) == 0, "%s", err);
    ck_assert(ckpt_is_empty(msg));
    ckpt_free(msg);
}
END_TEST

/* ---- inspect ----------------------------------------------------------------- */

/* Runs `ddtrain inspect ARGS` with its standard output in file out. */
static int run_inspect(const char *out, int argc, char **argv)
{
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    int rc = inspect_main(argc, argv, 2);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    return rc;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    return text;
}

START_TEST(test_inspect_many_dims)
{
    /* 300 dimensions of ten digits: 3300 characters for a 64-byte field */
    static uint32_t shape[300];
    for (int i = 0; i < 300; i++)
        shape[i] = 4000000000u;
    Ddtrain__Checkpoint msg;
    Ddtrain__Tensor t, *ts[1];
    small_checkpoint(&msg, &t, ts, shape, 300, "w");
    char path[128], out[128], err[DDT_ERRLEN];
    tu_path(path, sizeof path, dir, "dims.ckpt");
    tu_path(out, sizeof out, dir, "dims.txt");
    ck_assert_msg(ckpt_write_file(path, &msg, err, sizeof err) == 0, "%s", err);
    char *argv[] = { "ddtrain", "inspect", path, NULL };
    ck_assert_int_eq(run_inspect(out, 3, argv), 0);
    char *text = slurp(out);
    ck_assert_msg(strstr(text, "4000000000x4000000000x") && strstr(text, "...") &&
                      strstr(text, " crc32 "),
                  "%s", text);
}
END_TEST

/* A JSON value at p (RFC 8259, without checking UTF-8): where it ends, or
 * NULL when it is not one. */
static const char *json_value(const char *p);

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

static const char *json_str(const char *p)
{
    for (p++; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20)
            return NULL; /* the end of the text included */
        if (*p != '\\')
            continue;
        p++;
        if (*p == 'u') {
            for (int k = 1; k <= 4; k++)
                if (!strchr("0123456789abcdefABCDEF", p[k]) || !p[k])
                    return NULL;
            p += 4;
        } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
            return NULL;
        }
    }
    return p + 1;
}

/* Members of an object (pairs) or elements of an array, up to close. */
static const char *json_items(const char *p, char close, int pairs)
{
    p = json_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (pairs) {
            if (*p != '"' || !(p = json_str(p)))
                return NULL;
            p = json_ws(p);
            if (*p++ != ':')
                return NULL;
        }
        if (!(p = json_value(p)))
            return NULL;
        p = json_ws(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *json_value(const char *p)
{
    p = json_ws(p);
    if (*p == '{')
        return json_items(p, '}', 1);
    if (*p == '[')
        return json_items(p, ']', 0);
    if (*p == '"')
        return json_str(p);
    for (const char *lit = "true\0false\0null\0"; *lit; lit += strlen(lit) + 1)
        if (!strncmp(p, lit, strlen(lit)))
            return p + strlen(lit);
    char *end;
    strtod(p, &end);
    return end == p ? NULL : end;
}

START_TEST(test_inspect_json_escapes)
{
    static const char *bad = "we\"ird\\name\x01\ttab";
    uint32_t shape[2] = { 2, 2 };
    Ddtrain__Checkpoint msg;
    Ddtrain__Tensor t, *ts[1];
    small_checkpoint(&msg, &t, ts, shape, 2, bad);
    msg.model_spec = "in:4,\"fc\":1";
    char path[128], out[128], err[DDT_ERRLEN];
    tu_path(path, sizeof path, dir, "a\"b\\c\n.ckpt");
    tu_path(out, sizeof out, dir, "out.json");
    ck_assert_msg(ckpt_write_file(path, &msg, err, sizeof err) == 0, "%s", err);
    char *argv[] = { "ddtrain", "inspect", path, "--json", NULL };
    ck_assert_int_eq(run_inspect(out, 4, argv), 0);
    char *text = slurp(out);
    const char *end = json_value(text);
    ck_assert_msg(end && *json_ws(end) == 0, "invalid JSON: %s", text);
    ck_assert_msg(strstr(text, "\"name\":\"we\\\"ird\\\\name\\u0001\\ttab\""), "%s", text);
    ck_assert_msg(strstr(text, "a\\\"b\\\\c\\n.ckpt\""), "%s", text);
    ck_assert_msg(strstr(text, "\"model_spec\":\"in:4,\\\"fc\\\":1\""), "%s", text);
}
END_TEST

START_TEST(test_inspect_show_config)
{
    uint32_t shape[1] = { 4 };
    Ddtrain__Checkpoint msg;
    Ddtrain__Tensor t, *ts[1];
    small_checkpoint(&msg, &t, ts, shape, 1, "w");
    char *lines[] = { "seed = 7", "run-dir = runs/\"quoted\"\\x", "note = \x1f" };
    Ddtrain__RunConfig cfg = DDTRAIN__RUN_CONFIG__INIT;
    cfg.n_lines = 3;
    cfg.lines = lines;
    msg.config = &cfg;
    char path[128], out[128], err[DDT_ERRLEN];
    tu_path(path, sizeof path, dir, "c.ckpt");
    tu_path(out, sizeof out, dir, "c.txt");
    ck_assert_msg(ckpt_write_file(path, &msg, err, sizeof err) == 0, "%s", err);
    char *argv[] = { "ddtrain", "inspect", path, "--show-config", NULL };
    ck_assert_int_eq(run_inspect(out, 4, argv), 0);
    ck_assert_msg(strstr(slurp(out), "\nseed = 7\n"), "%s", slurp(out));
    /* the JSON output is still one valid document with it */
    char *jargv[] = { "ddtrain", "inspect", path, "--show-config", "--json", NULL };
    ck_assert_int_eq(run_inspect(out, 5, jargv), 0);
    const char *text = slurp(out), *end = json_value(text);
    ck_assert_msg(end && *json_ws(end) == 0, "invalid JSON: %s", text);
    ck_assert_msg(strstr(text, "\"config\":[\"seed = 7\",\"run-dir = runs/\\\"quoted\\\"\\\\x\","
                               "\"note = \\u001f\"]"),
                  "%s", text);
}
END_TEST

Suite *inputs_suite(void)
{
    Suite *s = suite_create("inputs");
    TCase *tc = tcase_create("regular files");
    tcase_add_checked_fixture(tc, setup, teardown);
    /* a reader that blocks on the FIFO fails by this timeout, not by hanging */
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_regfile_refuses, 0, 2);
    tcase_add_loop_test(tc, test_readers_refuse, 0, 2);
    tcase_add_test(tc, test_config_nul);
    tcase_add_test(tc, test_csv_nul);
    suite_add_tcase(s, tc);

    tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_store_removes_temps);
    tcase_add_test(tc, test_empty_payload);
    suite_add_tcase(s, tc);

    tc = tcase_create("inspect");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_inspect_many_dims);
    tcase_add_test(tc, test_inspect_json_escapes);
    tcase_add_test(tc, test_inspect_show_config);
    suite_add_tcase(s, tc);
    return s;
}
