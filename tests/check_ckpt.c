/* Tests of checkpoint files and the store: round trip, every kind of damage,
 * keep-last-K, the latest pointer and the fallback past damaged files; and
 * crafted checkpoints (valid CRCs, hostile contents) refused on restore. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_util.h"
#include "ckpt.h"
#include "ckpt_restore.h"
#include "model.h"
#include "schedule.h"
#include "spec.h"
#include "suites.h"
#include "train.h"

static char dir[64];
static float w[1000], m1[1000];
static uint32_t shapes[3][2];
static Ddtrain__Tensor tensors[3];
static Ddtrain__Tensor *params[2], *opt[1];
static Ddtrain__ScheduleState sched;
static Ddtrain__Checkpoint msg;

static void setup(void)
{
    tu_tmpdir(dir, sizeof dir, "ckpt");
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
    tu_rmtree(dir);
}

START_TEST(test_round_trip)
{
    char path[128], err[DDT_ERRLEN];
    tu_path(path, sizeof path, dir, "a.ckpt");
    ck_assert_msg(ckpt_write_file(path, &msg, err, sizeof err) == 0, "%s", err);
    Ddtrain__Checkpoint *back;
    ck_assert_msg(ckpt_read_file(path, &back, err, sizeof err) == 0, "%s", err);
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
    { "flags", 12, 1, 0, "header flags 0x00000001 are not known (this ddtrain knows no flags: allowed 0)" },
};

START_TEST(test_damage_detected)
{
    const struct damage *d = &damages[_i];
    char path[128], err[DDT_ERRLEN] = "";
    tu_path(path, sizeof path, dir, "d.ckpt");
    ck_assert_int_eq(ckpt_write_file(path, &msg, err, sizeof err), 0);
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
    ck_assert_int_eq(ckpt_read_file(path, &back, err, sizeof err), -1);
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
    char err[DDT_ERRLEN], written[256], path[256];
    Ddtrain__Checkpoint *back;
    ck_assert_int_eq(ckpt_store_load_latest(dir, &back, path, sizeof path, quiet, err, sizeof err), 1);
    for (uint64_t s = 10; s <= 50; s += 10) {
        sched.step = s;
        ck_assert_int_eq(ckpt_store_save(dir, s, &msg, 3, written, sizeof written, err, sizeof err), 0);
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
    ck_assert_int_eq(ckpt_store_load_latest(dir, &back, path, sizeof path, quiet, err, sizeof err), 0);
    ck_assert_uint_eq(back->schedule->step, 50);
    ckpt_free(back);

    /* the newest damaged: a warning, then the one before it */
    snprintf(path, sizeof path, "%s/checkpoints/step-00000050.ckpt", dir);
    ck_assert_int_eq(truncate(path, 100), 0);
    warnings = 0;
    ck_assert_int_eq(ckpt_store_load_latest(dir, &back, path, sizeof path, count_warning, err, sizeof err), 0);
    ck_assert_int_eq(warnings, 1);
    ck_assert_uint_eq(back->schedule->step, 40);
    ck_assert(strstr(path, "step-00000040.ckpt") != NULL);
    ckpt_free(back);

    /* all damaged: an error that says so */
    for (int s = 30; s <= 40; s += 10) {
        snprintf(path, sizeof path, "%s/checkpoints/step-%08d.ckpt", dir, s);
        ck_assert_int_eq(truncate(path, 10), 0);
    }
    ck_assert_int_eq(ckpt_store_load_latest(dir, &back, path, sizeof path, quiet, err, sizeof err), -1);
    ck_assert(strstr(err, "no valid checkpoint") != NULL);
}
END_TEST

/* ---- crafted checkpoints --------------------------------------------------------
 *
 * A checkpoint of a real model (30-20-10 with batch norm: six parameter
 * tensors) at epoch 1, batch 3 of a schedule of 3 epochs over 1000 samples,
 * batch 64 in epoch 0 (15 steps) and 128 from epoch 1 (7 steps): step 18.
 * Each case changes one thing, writes the message with the real writer (so
 * every CRC is right), reads it back and restores it as a resume does. */

static struct model cm;
static struct spec cspec;
static struct sched_config csched;
static float zeros[4096];
static Ddtrain__Tensor ct[16];
static uint32_t cshape[16][3];
static Ddtrain__Tensor *cparams[8], *cbn[2], *cnorm[2], *copt[8];
static char cnames[8][48];
static Ddtrain__ScheduleState cst;
static Ddtrain__Checkpoint cmsg;
static char cspec_text[256];
enum { TRAIN_N = 1000, SEED = 99 };

static void crafted_setup(void)
{
    setup();
    char err[256];
    ck_assert_msg(spec_parse(&cspec, "30-20-10", true, 0, err, sizeof err) == 0, "%s", err);
    struct model_options o = { .bn_group = 0, .bn_eps = 1e-5f, .bn_momentum = 0.1f };
    ck_assert_msg(model_build(&cm, &cspec, 4, &o, err, sizeof err) == 0, "%s", err);
    const struct arena *a = &cm.arena;
    ck_assert_int_eq(a->nviews, 6);
    int k = 0;
    for (int v = 0; v < a->nviews; v++) {
        const struct tensor_view *tv = &a->views[v];
        ckpt_tensor_view(&ct[k], cshape[k], tv->name, a->w + tv->off, tv->n, (uint32_t)tv->rows,
                         (uint32_t)tv->cols);
        cparams[v] = &ct[k++];
        snprintf(cnames[v], sizeof cnames[v], "%s.m", tv->name);
        ckpt_tensor_view(&ct[k], cshape[k], cnames[v], zeros, tv->n, (uint32_t)tv->rows,
                         (uint32_t)tv->cols);
        copt[v] = &ct[k++];
    }
    ckpt_tensor_view(&ct[k], cshape[k], "bn.running", cm.bn_running, cm.bn_running_n,
                     (uint32_t)cm.bn_running_n, 1);
    cbn[0] = &ct[k++];
    ckpt_tensor_view(&ct[k], cshape[k], "input.mean", cm.in_mean, 30, 30, 1);
    cnorm[0] = &ct[k++];
    ckpt_tensor_view(&ct[k], cshape[k], "input.inv_std", cm.in_inv_std, 30, 30, 1);
    cnorm[1] = &ct[k++];

    struct train_config cfg;
    train_config_defaults(&cfg);
    csched = cfg.sched;
    csched.epochs = 3;
    csched.base_batch = 64;
    csched.nbatch = 1;
    csched.batch_epochs[0] = 1;
    csched.batch_sizes[0] = 128;

    ddtrain__schedule_state__init(&cst);
    cst.step = 18;
    cst.epoch = 1;
    cst.batch_in_epoch = 3;
    cst.global_batch = 128;
    cst.seed = SEED;
    cst.log_steps = 3;
    cst.log_count = 384;
    cst.noise_count = 2;
    cst.wall_seconds = 1.5;
    spec_format(&cspec, cspec_text, sizeof cspec_text);
    ddtrain__checkpoint__init(&cmsg);
    cmsg.format_version = CKPT_MESSAGE_VERSION;
    cmsg.schedule = &cst;
    cmsg.model_spec = cspec_text;
    cmsg.n_params = 6;
    cmsg.params = cparams;
    cmsg.n_bn_running = 1;
    cmsg.bn_running = cbn;
    cmsg.n_input_norm = 2;
    cmsg.input_norm = cnorm;
    cmsg.n_optimizer = 6;
    cmsg.optimizer = copt;
    cmsg.optimizer_steps = 18;
}

static void crafted_teardown(void)
{
    model_free(&cm);
    teardown();
}

/* Writes cmsg with the real writer (CRCs recomputed after the craft), reads
 * it back, and checks it the way train_ckpt_restore does on resume. Returns
 * 0, or -1 with err (the reader's or the restore's). */
static int write_and_restore(char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof ct / sizeof ct[0]; i++)
        if (ct[i].name)
            ct[i].crc32 = ckpt_tensor_crc(ct[i].data, ct[i].n_data);
    char path[128];
    tu_path(path, sizeof path, dir, "crafted.ckpt");
    ck_assert_msg(ckpt_write_file(path, &cmsg, err, errlen) == 0, "%s", err);
    Ddtrain__Checkpoint *back;
    if (ckpt_read_file(path, &back, err, errlen))
        return -1;
    int rc = ckpt_check_model_spec(back, &cspec, err, errlen) ||
                     ckpt_check_schedule(back, &csched, SEED, TRAIN_N, err, errlen) ||
                     ckpt_restore_model(&cm, back, false, err, errlen) ||
                     ckpt_check_optimizer(back, cm.arena.nviews, false, err, errlen)
                 ? -1
                 : 0;
    ckpt_free(back);
    return rc;
}

START_TEST(test_crafted_baseline_accepted)
{
    char err[DDT_ERRLEN] = "";
    ck_assert_msg(write_and_restore(err, sizeof err) == 0, "the honest checkpoint was refused: %s", err);
    /* the end of the run: the last batch of the last epoch */
    cst.epoch = 2;
    cst.batch_in_epoch = 7;
    cst.step = 29;
    ck_assert_msg(write_and_restore(err, sizeof err) == 0, "the end of the run was refused: %s", err);
    /* AdaScale: the data past --epochs */
    csched.scaling = SCALE_ADASCALE;
    cst.epoch = 3;
    cst.batch_in_epoch = 1;
    cst.step = 30;
    ck_assert_msg(write_and_restore(err, sizeof err) == 0, "AdaScale past --epochs was refused: %s", err);
}
END_TEST

static void huge_batch_in_epoch(void) { cst.batch_in_epoch = 1ull << 40; }
static void batch_in_epoch_one_over(void) { cst.batch_in_epoch = 8; cst.step = 23; }
static void huge_epoch(void) { cst.epoch = (1ull << 63) + 5; }
static void epoch_past_end(void) { cst.epoch = 3; }
static void wrong_step(void) { cst.step = 19; }
static void huge_step(void) { cst.step = UINT64_MAX; }
static void wrong_global_batch(void) { cst.global_batch = 64; }
static void wrong_seed(void) { cst.seed = 7; }
static void huge_optimizer_steps(void) { cmsg.optimizer_steps = 1ull << 62; }
static void huge_log_steps(void) { cst.log_steps = 1000; }
static void huge_noise_count(void) { cst.noise_count = 19; }
static void negative_log_count(void) { cst.log_count = -1; }
static void nan_wall(void) { cst.wall_seconds = NAN; }
static void no_schedule(void) { cmsg.schedule = NULL; }
/* AdaScale lets the data run past --epochs: its epoch is bounded otherwise */
static void adascale_huge_epoch(void) { csched.scaling = SCALE_ADASCALE; cst.epoch = UINT64_MAX; }
static void adascale_huge_position(void)
{
    csched.scaling = SCALE_ADASCALE;
    cst.epoch = cst.step = UINT64_MAX;
}
static void other_spec(void) { cmsg.model_spec = "in:30,fc:999,bn,relu,fc:10"; }
static void message_version(void) { cmsg.format_version = 2; }
static void params_extra(void) { cparams[6] = copt[0]; cmsg.n_params = 7; }
static void params_missing(void) { cmsg.n_params = 5; }
static void params_renamed(void) { ct[0].name = "fc9.weight"; }
static void bn_running_two(void) { cbn[1] = cbn[0]; cmsg.n_bn_running = 2; }
static void input_norm_one(void) { cmsg.n_input_norm = 1; }
static void optimizer_extra(void) { copt[6] = copt[0]; cmsg.n_optimizer = 7; }
/* fc1.weight (20x30): another shape, with as many elements as it says */
static void weight_rows(void)
{
    ct[0].data = zeros;
    ct[0].n_data = 21 * 30;
    cshape[0][0] = 21;
}
static void weight_three_dims(void)
{
    ct[0].n_shape = 3;
    cshape[0][2] = 1;
}
static void weight_short(void) { ct[0].n_data = 599; }
static void bias_long(void) { ct[2].data = zeros; ct[2].n_data = 4000; }
static void bn_running_short(void) { cbn[0]->n_data = 39; cbn[0]->shape[0] = 39; }
static void input_norm_long(void) { cnorm[0]->data = zeros; cnorm[0]->n_data = 3000; cnorm[0]->shape[0] = 3000; }

/* Each craft and what the refusal must say: the field, the value, what is
 * allowed. */
struct craft {
    const char *what;
    void (*apply)(void);
    const char *says[3];
};

static const struct craft crafts[] = {
    { "batch_in_epoch 2^40", huge_batch_in_epoch,
      { "schedule.batch_in_epoch is 1099511627776", "7 global batches of 128 out of 1000", "allowed 0 to 7" } },
    { "batch_in_epoch one over", batch_in_epoch_one_over,
      { "schedule.batch_in_epoch is 8", "allowed 0 to 7", NULL } },
    { "epoch 2^63+5", huge_epoch,
      { "schedule.epoch is 9223372036854775813", "3 epochs (--epochs)", "allowed 0 to 2" } },
    { "epoch past the end", epoch_past_end, { "schedule.epoch is 3", "allowed 0 to 2", NULL } },
    { "step", wrong_step, { "schedule.step is 19", "epoch 1 batch 3", "allowed only 18" } },
    { "step 2^64-1", huge_step, { "schedule.step is 18446744073709551615", "allowed only 18", NULL } },
    { "global batch", wrong_global_batch,
      { "schedule.global_batch is 64", "at epoch 1 is 128", "allowed only 128" } },
    { "seed", wrong_seed, { "schedule.seed is 7", "--seed is 99", "allowed only 99" } },
    { "optimizer steps", huge_optimizer_steps,
      { "optimizer_steps is 4611686018427387904", "allowed at most schedule.step, 18", NULL } },
    { "log steps", huge_log_steps, { "schedule.log_steps is 1000", "allowed at most schedule.step, 18", NULL } },
    { "noise count", huge_noise_count, { "schedule.noise_count is 19", "allowed at most schedule.step, 18", NULL } },
    { "log count", negative_log_count, { "schedule.log_count is -1", "allowed a finite number from 0", NULL } },
    { "wall seconds", nan_wall, { "schedule.wall_seconds is nan", "allowed a finite number from 0", NULL } },
    { "no schedule", no_schedule, { "no schedule state", NULL, NULL } },
    { "AdaScale epoch 2^64-1", adascale_huge_epoch,
      { "schedule.epoch is 18446744073709551615", "schedule.step is 18", "allowed 0 to 18" } },
    /* --ref-batch 256: 3 base steps an epoch, the clock at least 64/256 a step */
    { "AdaScale epoch and step 2^64-1", adascale_huge_position,
      { "schedule.step is 18446744073709551615", "--epochs 3 within 38 steps", "allowed at most 38" } },
    { "model spec", other_spec,
      { "model_spec is 'in:30,fc:999,bn,relu,fc:10'", "makes 'in:30,fc:20,bn,relu,fc:10'", "allowed only the same" } },
    { "message version", message_version, { "message version 2 is not supported", "expected 1", NULL } },
    { "a parameter tensor too many", params_extra,
      { "params holds 7 tensors", "allowed exactly 6", NULL } },
    { "a parameter tensor too few", params_missing, { "params holds 5 tensors", "allowed exactly 6", NULL } },
    { "a parameter tensor renamed", params_renamed, { "no tensor fc1.weight", NULL, NULL } },
    { "bn_running count", bn_running_two, { "bn_running holds 2 tensors", "allowed exactly 1", NULL } },
    { "input_norm count", input_norm_one, { "input_norm holds 1 tensors", "allowed exactly 2", NULL } },
    { "optimizer count", optimizer_extra,
      { "optimizer holds 7 tensors", "one moment of each of the model's 6", "allowed exactly 6" } },
    { "weight shape", weight_rows,
      { "tensor fc1.weight has shape 21x30 in the checkpoint, the model needs 20x30", NULL, NULL } },
    { "weight dimensions", weight_three_dims,
      { "tensor fc1.weight has 3 dimensions", "allowed 1 or 2", NULL } },
    { "weight elements", weight_short,
      { "tensor fc1.weight has 599 elements in the checkpoint, the model needs 600", NULL, NULL } },
    { "bias elements", bias_long,
      { "tensor fc1.bias has 4000 elements in the checkpoint, the model needs 20", NULL, NULL } },
    { "bn.running shape", bn_running_short,
      { "tensor bn.running has shape 39x1 in the checkpoint, the model needs 40x1", NULL, NULL } },
    { "input.mean shape", input_norm_long,
      { "tensor input.mean has shape 3000x1 in the checkpoint, the model needs 30x1", NULL, NULL } },
};

START_TEST(test_crafted_refused)
{
    const struct craft *c = &crafts[_i];
    char err[DDT_ERRLEN] = "";
    c->apply();
    ck_assert_msg(write_and_restore(err, sizeof err) == -1, "%s: accepted", c->what);
    for (int k = 0; k < 3 && c->says[k]; k++)
        ck_assert_msg(strstr(err, c->says[k]) != NULL, "%s: '%s' lacks '%s'", c->what, err,
                      c->says[k]);
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
    tc = tcase_create("crafted");
    tcase_add_checked_fixture(tc, crafted_setup, crafted_teardown);
    tcase_add_test(tc, test_crafted_baseline_accepted);
    tcase_add_loop_test(tc, test_crafted_refused, 0, (int)(sizeof crafts / sizeof crafts[0]));
    suite_add_tcase(s, tc);
    return s;
}
