/* Fuzz target "ckpt": checkpoint files through ckpt_read_file, and what the
 * commands do with a file it accepts (ckpt_model_open: the configuration, the
 * model spec, every tensor's name and shape; `ddtrain inspect`).
 *
 * The seeds are real checkpoints of small models written by ckpt_write_file.
 * Raw mutations rarely get past the payload CRC, so most inputs are made one
 * level down: the payload mutated and framed again with a fresh length and
 * CRC, or the decoded message edited field by field (shapes, element counts,
 * names, missing or duplicated tensors, spec and configuration lines) and
 * packed again, usually with correct tensor CRCs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ckpt.h"
#include "ckpt_model.h"
#include "commands.h"
#include "config.h"
#include "fuzz.h"
#include "model.h"
#include "train.h"

static char in_path[4200], csv_path[4200];

/* ---- seeds ------------------------------------------------------------------- */

static int write_csv(const char *dir, const char *split)
{
    char path[4200], text[1024];
    size_t used = (size_t)snprintf(text, sizeof text, "label,a,b,c,d,e,f\n");
    for (int i = 0; i < 9; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, "%d,%d,%.2f,1,-2,0.5,%d\n",
                                 i % 3, i, i * 0.25, i * i);
    snprintf(path, sizeof path, "%s/%s.csv", dir, split);
    return fuzz_write_file(path, text, used);
}

/* The file format around a payload (ckpt.h). */
static void frame(struct fuzz_buf *out, const uint8_t *payload, size_t len)
{
    uint8_t head[CKPT_HEADER_BYTES], tail[4];
    uint64_t n = len;
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), payload, (uInt)len);
    memcpy(head, CKPT_MAGIC, 8);
    for (int i = 0; i < 4; i++) {
        head[8 + i] = (uint8_t)(CKPT_FILE_VERSION >> (8 * i));
        head[12 + i] = 0;
        tail[i] = (uint8_t)(crc >> (8 * i));
    }
    for (int i = 0; i < 8; i++)
        head[16 + i] = (uint8_t)(n >> (8 * i));
    fuzz_buf_set(out, head, sizeof head);
    fuzz_buf_insert(out, out->n, payload, len);
    fuzz_buf_insert(out, out->n, tail, 4);
}

struct seed_msg {
    Ddtrain__Checkpoint msg;
    Ddtrain__RunConfig rcfg;
    Ddtrain__ScheduleState sched;
    Ddtrain__Tensor tensors[64], *params[16], *moments[32], *bn[1], *norm[2];
    uint32_t shapes[64][2];
    char names[32][48], *lines[128], spec_text[256];
    float moment_data[4096];
};

/* The configuration lines a run writes: every option as `name = value`. */
static size_t seed_lines(struct seed_msg *s, const char *spec, const char *optimizer)
{
    struct train_config cfg;
    char err[DDT_ERRLEN], value[CONFIG_STRLEN + 32];
    config_defaults(train_options, &cfg);
    if (config_set(train_options, &cfg, "model", spec, err, sizeof err) ||
        config_set(train_options, &cfg, "classes", "3", err, sizeof err) ||
        config_set(train_options, &cfg, "data", csv_path, err, sizeof err) ||
        config_set(train_options, &cfg, "optimizer", optimizer, err, sizeof err))
        fprintf(stderr, "fuzz: ckpt seed: %s\n", err);
    size_t n = 0;
    for (const struct option_def *o = train_options; o->name && n < 128; o++, n++) {
        config_format_value(o, &cfg, value, sizeof value);
        size_t len = strlen(o->name) + strlen(value) + 4;
        s->lines[n] = malloc(len);
        snprintf(s->lines[n], len, "%s = %s", o->name, value);
    }
    return n;
}

/* A checkpoint of a freshly initialised model, laid out as train_ckpt_save
 * lays it out (parameters, moments, running statistics, input normalisation). */
static int seed_checkpoint(struct fuzz_corpus *c, const char *spec_text, const char *optimizer,
                           int with_v)
{
    struct seed_msg *s = calloc(1, sizeof *s);
    struct spec spec;
    struct model m;
    struct model_options mo = { .bn_eps = 1e-5f, .bn_momentum = 0.1f };
    char err[DDT_ERRLEN];
    if (!s || spec_parse(&spec, spec_text, false, 0, err, sizeof err) ||
        model_build(&m, &spec, 4, &mo, err, sizeof err)) {
        fprintf(stderr, "fuzz: ckpt seed %s: %s\n", spec_text, s ? err : "out of memory");
        free(s);
        return -1;
    }
    model_init_params(&m, 7);
    for (int i = 0; i < 4096; i++)
        s->moment_data[i] = (float)(i % 13) * 0.125f;
    const struct arena *a = &m.arena;
    int k = 0, nm = 0;
    for (int v = 0; v < a->nviews && v < 16; v++) {
        const struct tensor_view *tv = &a->views[v];
        ckpt_tensor_view(&s->tensors[k], s->shapes[k], tv->name, a->w + tv->off, tv->n,
                         (uint32_t)tv->rows, (uint32_t)tv->cols);
        s->params[v] = &s->tensors[k++];
        for (int w = 0; w <= with_v; w++) {
            snprintf(s->names[2 * v + w], sizeof s->names[0], "%s.%c", tv->name, w ? 'v' : 'm');
            ckpt_tensor_view(&s->tensors[k], s->shapes[k], s->names[2 * v + w],
                             s->moment_data + tv->off, tv->n, (uint32_t)tv->rows,
                             (uint32_t)tv->cols);
            s->moments[nm++] = &s->tensors[k++];
        }
    }
    ckpt_tensor_view(&s->tensors[k], s->shapes[k], "bn.running", m.bn_running, m.bn_running_n,
                     (uint32_t)m.bn_running_n, 1);
    s->bn[0] = &s->tensors[k++];
    ckpt_tensor_view(&s->tensors[k], s->shapes[k], "input.mean", m.in_mean, (size_t)m.in_dim,
                     (uint32_t)m.in_dim, 1);
    s->norm[0] = &s->tensors[k++];
    ckpt_tensor_view(&s->tensors[k], s->shapes[k], "input.inv_std", m.in_inv_std,
                     (size_t)m.in_dim, (uint32_t)m.in_dim, 1);
    s->norm[1] = &s->tensors[k++];
    ddtrain__run_config__init(&s->rcfg);
    s->rcfg.lines = s->lines;
    s->rcfg.n_lines = seed_lines(s, spec_text, optimizer);
    ddtrain__schedule_state__init(&s->sched);
    s->sched.step = 12;
    s->sched.epoch = 1;
    s->sched.seed = 42;
    s->sched.global_batch = 4;
    spec_format(&m.spec, s->spec_text, sizeof s->spec_text);
    ddtrain__checkpoint__init(&s->msg);
    s->msg.format_version = 1;
    s->msg.config = &s->rcfg;
    s->msg.schedule = &s->sched;
    s->msg.model_spec = s->spec_text;
    s->msg.n_params = (size_t)a->nviews;
    s->msg.params = s->params;
    s->msg.n_bn_running = 1;
    s->msg.bn_running = s->bn;
    s->msg.n_input_norm = 2;
    s->msg.input_norm = s->norm;
    s->msg.n_optimizer = (size_t)nm;
    s->msg.optimizer = s->moments;
    s->msg.optimizer_steps = 12;
    s->msg.nranks = 2;
    int rc = ckpt_write_file(in_path, &s->msg, err, sizeof err);
    struct fuzz_buf file = { 0 };
    if (rc == 0)
        rc = fuzz_read_file(in_path, &file);
    else
        fprintf(stderr, "fuzz: ckpt seed: %s\n", err);
    if (rc == 0)
        fuzz_corpus_add(c, file.p, file.n);
    fuzz_buf_free(&file);
    for (size_t i = 0; i < s->rcfg.n_lines; i++)
        free(s->lines[i]);
    model_free(&m);
    free(s);
    return rc;
}

static const char *const ckpt_dict[] = { "DDTCKPT\n", "fc1.weight", "bn.running", "input.mean",
                                         "in:6", "fc:3", ",bn", ",relu", " = ", NULL };

static int ckpt_setup(struct fuzz_corpus *seeds, const char *dir)
{
    snprintf(in_path, sizeof in_path, "%s/in.ckpt", dir);
    snprintf(csv_path, sizeof csv_path, "%s/train.csv", dir);
    seeds->dict = ckpt_dict;
    if (write_csv(dir, "train") || write_csv(dir, "test"))
        return -1;
    if (seed_checkpoint(seeds, "in:6,fc:5,bn,relu,dropout:0.25,fc:3", "adam", 1) ||
        seed_checkpoint(seeds, "in:6,fc:3", "sgd", 0))
        return -1;
    fuzz_quiet(1); /* inspect prints */
    return 0;
}

static void ckpt_teardown(void)
{
    fuzz_quiet(0);
}

/* ---- structured edits ----------------------------------------------------------- */

/* Harness-owned replacements swapped into an unpacked message; the message's
 * own fields are put back before protobuf-c frees it. */
static struct {
    Ddtrain__Checkpoint saved;
    Ddtrain__Tensor *touched[4], saved_t[4];
    int ntouched;
    Ddtrain__Tensor *group[4][96];
    Ddtrain__RunConfig config;
    char *lines[160];
    char line[400], spec[300], name[300];
    uint32_t shape[40];
    float data[40];
} ed;

static Ddtrain__Tensor ***group_of(Ddtrain__Checkpoint *m, int g, size_t **n)
{
    Ddtrain__Tensor ***ptrs[4] = { &m->params, &m->bn_running, &m->input_norm, &m->optimizer };
    size_t *counts[4] = { &m->n_params, &m->n_bn_running, &m->n_input_norm, &m->n_optimizer };
    *n = counts[g];
    return ptrs[g];
}

/* A random tensor, remembered so that its fields can be restored. */
static Ddtrain__Tensor *touch(struct fuzz_rng *r, Ddtrain__Checkpoint *m)
{
    size_t *n;
    Ddtrain__Tensor ***g = group_of(m, (int)fuzz_below(r, 4), &n);
    if (*n == 0 || ed.ntouched == 4)
        return NULL;
    Ddtrain__Tensor *t = (*g)[fuzz_below(r, *n)];
    for (int i = 0; i < ed.ntouched; i++)
        if (ed.touched[i] == t)
            return t;
    ed.touched[ed.ntouched] = t;
    ed.saved_t[ed.ntouched++] = *t;
    return t;
}

static void edit_tensor(struct fuzz_rng *r, Ddtrain__Checkpoint *m)
{
    static const uint32_t dims[] = { 0, 1, 2, 3, 5, 6, 7, 0x7fffffff, 0xffffffffu, 1234567890 };
    Ddtrain__Tensor *t = touch(r, m), *other = touch(r, m);
    if (!t)
        return;
    switch (fuzz_below(r, 7)) {
    case 0:
        if (t->n_shape)
            t->shape[fuzz_below(r, t->n_shape)] = dims[fuzz_below(r, 10)];
        break;
    case 1: /* many dimensions, some of them wide */
        t->n_shape = fuzz_below(r, 41);
        for (size_t k = 0; k < t->n_shape; k++)
            ed.shape[k] = dims[fuzz_below(r, 10)];
        t->shape = ed.shape;
        break;
    case 2:
        t->n_data = t->n_data ? fuzz_below(r, t->n_data) : 0;
        break;
    case 3:
        t->n_data = fuzz_below(r, 41);
        for (size_t k = 0; k < t->n_data; k++)
            ed.data[k] = (float)k;
        t->data = ed.data;
        break;
    case 4:
        t->name = other ? other->name : (char *)"";
        break;
    case 5:
        memset(ed.name, 'x', sizeof ed.name - 1);
        memcpy(ed.name, "%s%n\"\\", 6);
        ed.name[fuzz_below(r, sizeof ed.name)] = 0;
        t->name = ed.name;
        break;
    default:
        t->n_shape = 0;
        break;
    }
}

/* Drops, duplicates or moves one tensor of a group. */
static void edit_group(struct fuzz_rng *r, Ddtrain__Checkpoint *m)
{
    int g = (int)fuzz_below(r, 4), from = (int)fuzz_below(r, 4);
    size_t *n, *nf;
    Ddtrain__Tensor ***p = group_of(m, g, &n), ***pf = group_of(m, from, &nf);
    if (*n >= 90)
        return;
    Ddtrain__Tensor **copy = ed.group[g];
    memmove(copy, *p, *n * sizeof *copy);
    size_t cnt = *n;
    if (cnt && fuzz_below(r, 2)) {
        size_t i = fuzz_below(r, cnt);
        memmove(copy + i, copy + i + 1, (cnt - i - 1) * sizeof *copy);
        cnt--;
    } else if (*nf) {
        copy[cnt++] = (*pf)[fuzz_below(r, *nf)];
    }
    *p = copy;
    *n = cnt;
}

static void edit_spec(struct fuzz_rng *r, Ddtrain__Checkpoint *m)
{
    static const char *const specs[] = { "", "in:6,fc:3", "in:7,fc:3", "6-5-3", "in:6,fc:4,bn,relu,fc:3",
                                         "in:6", "fc:3", "in:6,bn,fc:3", "in:6,fc:5,bn,relu,dropout:1.5,fc:3",
                                         "in:6,fc:5,bn,relu,dropout:0.25,fc:3,fc:3", "in:0,fc:3" };
    if (fuzz_below(r, 2)) {
        m->model_spec = (char *)specs[fuzz_below(r, sizeof specs / sizeof specs[0])];
        return;
    }
    snprintf(ed.spec, sizeof ed.spec, "%s", m->model_spec);
    size_t len = strlen(ed.spec);
    if (len)
        ed.spec[fuzz_below(r, len)] = ",:-0123456789abnfcx"[fuzz_below(r, 19)];
    m->model_spec = ed.spec;
}

static void edit_config(struct fuzz_rng *r, Ddtrain__Checkpoint *m)
{
    static const char *const lines[] = { "classes = 0", "classes = 2", "classes = 99999999999",
                                         "bn-group = 3", "bn-eps = nan", "bn-momentum = -1",
                                         "model = in:6,fc:3", "no equals sign", " = ", "lr = 1e999",
                                         "optimizer = nope", "bn = maybe", "unknown-key = 1" };
    if (!m->config || fuzz_below(r, 8) == 0) {
        m->config = NULL;
        return;
    }
    size_t n = m->config->n_lines < 150 ? m->config->n_lines : 150;
    memcpy(ed.lines, m->config->lines, n * sizeof *ed.lines);
    if (fuzz_below(r, 4) == 0) {
        memset(ed.line, 'a', sizeof ed.line - 1);
        memcpy(ed.line, "data = ", 7);
        ed.line[sizeof ed.line - 1] = 0;
        ed.lines[n++] = ed.line;
    } else {
        size_t at = n ? fuzz_below(r, n + 1) : 0;
        ed.lines[at] = (char *)lines[fuzz_below(r, sizeof lines / sizeof lines[0])];
        n += at == n;
    }
    ddtrain__run_config__init(&ed.config);
    ed.config.lines = ed.lines;
    ed.config.n_lines = n;
    m->config = &ed.config;
}

static void edit_message(struct fuzz_rng *r, Ddtrain__Checkpoint *m)
{
    size_t edits = 1 + fuzz_below(r, 3);
    for (size_t k = 0; k < edits; k++) {
        switch (fuzz_below(r, 8)) {
        case 0:
        case 1:
        case 2:
            edit_tensor(r, m);
            break;
        case 3:
            edit_group(r, m);
            break;
        case 4:
            edit_spec(r, m);
            break;
        case 5:
            edit_config(r, m);
            break;
        case 6:
            m->schedule = NULL;
            break;
        default:
            m->format_version = (uint32_t)fuzz_below(r, 3);
            m->nranks = (uint32_t)fuzz_u64(r);
            break;
        }
    }
}

/* Decodes a seed, edits it, packs it again (mostly with fresh tensor CRCs). */
static int structured(struct fuzz_rng *r, const struct fuzz_buf *seed, struct fuzz_buf *out)
{
    Ddtrain__Checkpoint *m = ddtrain__checkpoint__unpack(NULL, seed->n - CKPT_HEADER_BYTES - 4,
                                                          seed->p + CKPT_HEADER_BYTES);
    if (!m)
        return -1;
    ed.saved = *m;
    ed.ntouched = 0;
    edit_message(r, m);
    if (fuzz_below(r, 4)) {
        for (int g = 0; g < 4; g++) {
            size_t *n;
            Ddtrain__Tensor ***p = group_of(m, g, &n);
            for (size_t i = 0; i < *n; i++)
                (*p)[i]->crc32 = ckpt_tensor_crc((*p)[i]->data, (*p)[i]->n_data);
        }
    }
    size_t len = ddtrain__checkpoint__get_packed_size(m);
    uint8_t *payload = malloc(len ? len : 1);
    ddtrain__checkpoint__pack(m, payload);
    frame(out, payload, len);
    free(payload);
    for (int i = ed.ntouched - 1; i >= 0; i--)
        *ed.touched[i] = ed.saved_t[i];
    *m = ed.saved;
    ddtrain__checkpoint__free_unpacked(m, NULL);
    return 0;
}

static void ckpt_mutate(struct fuzz_rng *r, const struct fuzz_corpus *seeds, struct fuzz_buf *out)
{
    const struct fuzz_buf *s = fuzz_pick(r, seeds);
    size_t mode = fuzz_below(r, 10);
    if (mode < 5 && structured(r, s, out) == 0)
        return;
    if (mode < 8) { /* the payload mutated, the frame made right */
        struct fuzz_buf payload = { 0 };
        fuzz_buf_set(&payload, s->p + CKPT_HEADER_BYTES, s->n - CKPT_HEADER_BYTES - 4);
        fuzz_mutate_buf(r, seeds, &payload);
        frame(out, payload.p, payload.n);
        fuzz_buf_free(&payload);
        return;
    }
    fuzz_buf_set(out, s->p, s->n);
    fuzz_mutate_buf(r, seeds, out);
}

/* ---- running ----------------------------------------------------------------- */

static int ckpt_run(const uint8_t *p, size_t n)
{
    if (fuzz_write_file(in_path, p, n))
        return -1;
    Ddtrain__Checkpoint *msg;
    char err[DDT_ERRLEN];
    if (ckpt_read_file(in_path, &msg, err, sizeof err))
        return 0;
    ckpt_free(msg);
    struct ckpt_model cm;
    if (ckpt_model_open(&cm, in_path, csv_path, NULL, 4, err, sizeof err) == 0)
        ckpt_model_free(&cm);
    char *text[] = { "ddtrain", "inspect", in_path, NULL };
    char *json[] = { "ddtrain", "inspect", in_path, "--json", NULL };
    inspect_main(3, text, 2);
    inspect_main(4, json, 2);
    return 1;
}

const struct fuzz_target fuzz_ckpt_target = {
    .name = "ckpt",
    .iters = 3000,
    .setup = ckpt_setup,
    .mutate = ckpt_mutate,
    .run = ckpt_run,
    .teardown = ckpt_teardown,
};
