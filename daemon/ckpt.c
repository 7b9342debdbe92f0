/* Checkpoint framing, validation, atomic writes and the keep-last-K store. */
#include "ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fsutil.h"
#include "regfile.h"

/* The format is little-endian; so is every machine we build for, which the
 * configure-time check of the compiler's byte order would have to change. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint code assumes a little-endian machine"
#endif

uint32_t ckpt_tensor_crc(const float *x, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    const Bytef *p = (const Bytef *)x;
    size_t bytes = n * sizeof(float);
    while (bytes > 0) {
        uInt chunk = bytes > (1u << 30) ? (1u << 30) : (uInt)bytes;
        crc = crc32(crc, p, chunk);
        p += chunk;
        bytes -= chunk;
    }
    return (uint32_t)crc;
}

void ckpt_tensor_view(Ddtrain__Tensor *t, uint32_t shape[2], const char *name,
                      const float *data, size_t n, uint32_t rows, uint32_t cols)
{
    ddtrain__tensor__init(t);
    t->name = (char *)name;
    shape[0] = rows;
    shape[1] = cols;
    t->n_shape = cols > 1 ? 2 : 1;
    t->shape = shape;
    t->n_data = n;
    t->data = (float *)data;
    t->crc32 = ckpt_tensor_crc(data, n);
}

/* protobuf-c output straight into the file, CRC updated on the way. */
struct file_sink {
    ProtobufCBuffer base;
    FILE *f;
    uLong crc;
    int failed;
};

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    struct file_sink *s = (struct file_sink *)b;
    if (s->failed || len == 0)
        return;
    if (fwrite(data, 1, len, s->f) != len) {
        s->failed = 1;
        return;
    }
    s->crc = crc32(s->crc, data, (uInt)len);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

int ckpt_write_file(const char *path, const Ddtrain__Checkpoint *msg, char *err, size_t errlen)
{
    struct atomic_file a;
    if (fs_atomic_open(&a, path, err, errlen))
        return -1;
    /* a large stdio buffer: the payload arrives in many small appends */
    static char iobuf[1 << 20];
    setvbuf(a.f, iobuf, _IOFBF, sizeof iobuf);
    size_t len = ddtrain__checkpoint__get_packed_size(msg);
    uint8_t header[CKPT_HEADER_BYTES], trailer[4];
    memcpy(header, CKPT_MAGIC, 8);
    put_u32(header + 8, CKPT_FILE_VERSION);
    put_u32(header + 12, 0);
    put_u64(header + 16, (uint64_t)len);
    struct file_sink sink = { .base = { .append = sink_append }, .f = a.f,
                              .crc = crc32(0L, Z_NULL, 0) };
    if (fwrite(header, 1, sizeof header, a.f) != sizeof header ||
        ddtrain__checkpoint__pack_to_buffer(msg, &sink.base) != len || sink.failed) {
        int saved = errno;
        fs_atomic_abort(&a);
        snprintf(err, errlen, "cannot write checkpoint %s: %s", a.tmp,
                 saved ? strerror(saved) : "short write");
        return -1;
    }
    put_u32(trailer, (uint32_t)sink.crc);
    fwrite(trailer, 1, 4, a.f); /* a failure shows in ferror at the commit */
    return fs_atomic_commit(&a, err, errlen);
}

/* Reads and checks the header: magic, version, flags, and a payload length
 * that accounts for the file's size exactly. */
static int read_header(FILE *f, const char *path, long long size, uint64_t *len, char *err,
                       size_t errlen)
{
    uint8_t header[CKPT_HEADER_BYTES];
    if (fread(header, 1, sizeof header, f) != sizeof header) {
        snprintf(err, errlen, "%s: truncated: %lld bytes is shorter than the %d-byte header",
                 path, size, CKPT_HEADER_BYTES);
        return -1;
    }
    if (memcmp(header, CKPT_MAGIC, 8) != 0) {
        snprintf(err, errlen, "%s: not a ddtrain checkpoint (wrong magic)", path);
        return -1;
    }
    uint32_t version = get_u32(header + 8);
    if (version != CKPT_FILE_VERSION) {
        snprintf(err, errlen, "%s: format version %" PRIu32 " is not supported (this ddtrain reads version %d): use the ddtrain that wrote it",
                 path, version, CKPT_FILE_VERSION);
        return -1;
    }
    /* no flag is defined yet: one set means a format this ddtrain cannot read */
    uint32_t flags = get_u32(header + 12);
    if (flags != 0) {
        snprintf(err, errlen, "%s: header flags 0x%08" PRIx32 " are not known (this ddtrain knows no flags: allowed 0): use the ddtrain that wrote it",
                 path, flags);
        return -1;
    }
    *len = get_u64(header + 16);
    uint64_t expect = (uint64_t)CKPT_HEADER_BYTES + *len + 4;
    if ((uint64_t)size != expect) {
        snprintf(err, errlen, "%s: %s: the header announces %" PRIu64 " bytes in all, the file has %lld",
                 path, (uint64_t)size < expect ? "truncated" : "trailing bytes", expect, size);
        return -1;
    }
    return 0;
}

/* Reads len bytes of payload and the trailer, and checks the payload's CRC.
 * On success *out is the payload, to free. */
static int read_payload(FILE *f, const char *path, uint64_t len, uint8_t **out, char *err,
                        size_t errlen)
{
    uint8_t trailer[4];
    uint8_t *payload = malloc(len ? (size_t)len : 1);
    if (!payload) {
        snprintf(err, errlen, "%s: out of memory for %" PRIu64 " bytes", path, len);
        return -1;
    }
    if (fread(payload, 1, (size_t)len, f) != (size_t)len || fread(trailer, 1, 4, f) != 4) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        free(payload);
        return -1;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint64_t off = 0; off < len;) {
        uInt chunk = len - off > (1u << 30) ? (1u << 30) : (uInt)(len - off);
        crc = crc32(crc, payload + off, chunk);
        off += chunk;
    }
    if ((uint32_t)crc != get_u32(trailer)) {
        snprintf(err, errlen, "%s: checksum mismatch: the payload is damaged", path);
        free(payload);
        return -1;
    }
    *out = payload;
    return 0;
}

/* Every tensor's data against its own CRC. */
static int check_tensor_crcs(const Ddtrain__Checkpoint *msg, const char *path, char *err,
                             size_t errlen)
{
    Ddtrain__Tensor **groups[] = { msg->params, msg->bn_running, msg->input_norm, msg->optimizer };
    size_t counts[] = { msg->n_params, msg->n_bn_running, msg->n_input_norm, msg->n_optimizer };
    for (int g = 0; g < 4; g++) {
        for (size_t i = 0; i < counts[g]; i++) {
            const Ddtrain__Tensor *t = groups[g][i];
            if (ckpt_tensor_crc(t->data, t->n_data) != t->crc32) {
                snprintf(err, errlen, "%s: tensor %s: checksum mismatch", path, t->name);
                return -1;
            }
        }
    }
    return 0;
}

static int parse_step_name(const char *name, uint64_t *step);

/* The checkpoint a `latest` pointer file names, as a path beside it in buf;
 * NULL when the pointer cannot be read or names something other than a
 * step-DIGITS.ckpt of its own folder (no other path is ever followed). */
static const char *pointer_target(const char *pointer, const char *dir, char *buf, size_t buflen)
{
    struct stat st;
    if (stat(pointer, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 255)
        return NULL;
    char name[256] = "";
    FILE *f = fopen(pointer, "r");
    if (!f)
        return NULL;
    if (!fgets(name, sizeof name, f))
        name[0] = 0;
    fclose(f);
    name[strcspn(name, "\n")] = 0;
    uint64_t step;
    if (!name[0] || parse_step_name(name, &step) != 0)
        return NULL;
    snprintf(buf, buflen, "%s/%s", dir, name);
    return buf;
}

const char *ckpt_follow_latest(const char *path, char *buf, size_t buflen)
{
    char pointer[4400], dir[4400];
    struct stat st;
    if (stat(path, &st) != 0)
        return path;
    const char *t = NULL;
    if (S_ISDIR(st.st_mode)) {
        snprintf(dir, sizeof dir, "%s/checkpoints", path);
        snprintf(pointer, sizeof pointer, "%s/latest", dir);
        t = pointer_target(pointer, dir, buf, buflen);
        if (!t) {
            snprintf(dir, sizeof dir, "%s", path);
            snprintf(pointer, sizeof pointer, "%s/latest", dir);
            t = pointer_target(pointer, dir, buf, buflen);
        }
    } else {
        const char *base = strrchr(path, '/');
        if (!strcmp(base ? base + 1 : path, "latest")) {
            int n = base ? (int)(base - path) : 1;
            snprintf(dir, sizeof dir, "%.*s", n, base ? path : ".");
            t = pointer_target(path, dir, buf, buflen);
        }
    }
    return t ? t : path;
}

int ckpt_read_file(const char *path, Ddtrain__Checkpoint **out, char *err, size_t errlen)
{
    *out = NULL;
    char followed[4700];
    path = ckpt_follow_latest(path, followed, sizeof followed);
    FILE *f = regfile_fopen(path, "rb", err, errlen);
    if (!f)
        return -1;
    uint8_t *payload = NULL;
    uint64_t len;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (read_header(f, path, (long long)st.st_size, &len, err, errlen) ||
        read_payload(f, path, len, &payload, err, errlen))
        goto fail;
    Ddtrain__Checkpoint *msg = ddtrain__checkpoint__unpack(NULL, (size_t)len, payload);
    free(payload);
    if (!msg) {
        snprintf(err, errlen, "%s: the payload is not a valid Checkpoint message", path);
        goto fail;
    }
    if (check_tensor_crcs(msg, path, err, errlen)) {
        ddtrain__checkpoint__free_unpacked(msg, NULL);
        goto fail;
    }
    fclose(f);
    *out = msg;
    return 0;
fail:
    fclose(f);
    return -1;
}

void ckpt_free(Ddtrain__Checkpoint *msg)
{
    if (msg)
        ddtrain__checkpoint__free_unpacked(msg, NULL);
}

const Ddtrain__Tensor *ckpt_find(Ddtrain__Tensor *const *tensors, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(tensors[i]->name, name))
            return tensors[i];
    return NULL;
}

/* ---- the store ---------------------------------------------------------------- */

static int parse_step_name(const char *name, uint64_t *step)
{
    unsigned long long v;
    int used = 0;
    if (sscanf(name, "step-%llu.ckpt%n", &v, &used) != 1 || name[used] != 0)
        return -1;
    *step = v;
    return 0;
}

/* Digits at s: where they end, or NULL when there are none. */
static const char *skip_digits(const char *s)
{
    const char *p = s;
    while (*p >= '0' && *p <= '9')
        p++;
    return p > s ? p : NULL;
}

/* A temporary of this store, as fs_atomic_open names them:
 * step-DIGITS.ckpt.tmp.PID or latest.tmp.PID, nothing else. */
static bool is_store_temp(const char *name)
{
    const char *p = NULL;
    if (!strncmp(name, "latest.tmp.", 11)) {
        p = name + 11;
    } else if (!strncmp(name, "step-", 5)) {
        p = skip_digits(name + 5);
        if (!p || strncmp(p, ".ckpt.tmp.", 10) != 0)
            return false;
        p += 10;
    }
    p = p ? skip_digits(p) : NULL;
    return p && *p == 0;
}

int ckpt_store_remove_temps(const char *run_dir)
{
    char dir[4096], path[4400];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_store_temp(e->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        removed += unlink(path) == 0;
    }
    closedir(d);
    return removed;
}

bool ckpt_is_empty(const Ddtrain__Checkpoint *msg)
{
    return msg->format_version == 0 && !msg->config && !msg->schedule && !msg->model_spec[0] &&
           msg->n_params == 0 && msg->n_optimizer == 0;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Steps of every checkpoint file in dir, newest first; *n gets the count. */
static uint64_t *list_steps(const char *dir, size_t *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    size_t cap = 16;
    uint64_t *steps = malloc(cap * sizeof *steps);
    struct dirent *e;
    while (steps && (e = readdir(d))) {
        uint64_t s;
        if (parse_step_name(e->d_name, &s))
            continue;
        if (*n == cap) {
            uint64_t *more = realloc(steps, 2 * cap * sizeof *steps);
            if (!more)
                break;
            steps = more;
            cap *= 2;
        }
        steps[(*n)++] = s;
    }
    closedir(d);
    if (steps)
        qsort(steps, *n, sizeof *steps, cmp_desc);
    return steps;
}

int ckpt_store_save(const char *run_dir, uint64_t step, const Ddtrain__Checkpoint *msg,
                    int keep, char *written, size_t writtenlen, char *err, size_t errlen)
{
    char dir[4096], path[4200], name[64];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    if (fs_mkdir_p(dir, err, errlen))
        return -1;
    snprintf(name, sizeof name, "step-%08" PRIu64 ".ckpt", step);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (ckpt_write_file(path, msg, err, errlen))
        return -1;
    char latest[4200], text[80];
    snprintf(latest, sizeof latest, "%s/latest", dir);
    int len = snprintf(text, sizeof text, "%s\n", name);
    if (fs_write_atomic(latest, text, (size_t)len, err, errlen))
        return -1;
    snprintf(written, writtenlen, "%s", path);
    size_t n;
    uint64_t *steps = list_steps(dir, &n);
    for (size_t i = (size_t)(keep > 0 ? keep : 1); steps && i < n; i++) {
        snprintf(path, sizeof path, "%s/step-%08" PRIu64 ".ckpt", dir, steps[i]);
        unlink(path);
    }
    free(steps);
    /* what a writer killed mid-write left; this one's own are renamed by now */
    ckpt_store_remove_temps(run_dir);
    return 0;
}

/* ckpt_read_file, refusing a message with nothing in it. */
static int read_nonempty(const char *path, Ddtrain__Checkpoint **out, char *err, size_t errlen)
{
    if (ckpt_read_file(path, out, err, errlen))
        return -1;
    if (!ckpt_is_empty(*out))
        return 0;
    ckpt_free(*out);
    *out = NULL;
    snprintf(err, errlen, "%s: %s", path, CKPT_EMPTY_MSG);
    return -1;
}

int ckpt_store_load_latest(const char *run_dir, Ddtrain__Checkpoint **out, char *path,
                           size_t pathlen, void (*warn)(const char *msg), char *err, size_t errlen)
{
    char dir[4096], latest[4200], name[256] = "", why[DDT_ERRLEN], note[DDT_ERRLEN + 128];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    snprintf(latest, sizeof latest, "%s/latest", dir);
    FILE *f = fopen(latest, "r");
    if (f) {
        if (!fgets(name, sizeof name, f))
            name[0] = 0;
        fclose(f);
        name[strcspn(name, "\n")] = 0;
    }
    size_t n;
    uint64_t *steps = list_steps(dir, &n);
    int tried = 0;
    uint64_t named = 0;
    if (name[0] && parse_step_name(name, &named) == 0) {
        snprintf(path, pathlen, "%s/%s", dir, name);
        tried = 1;
        if (read_nonempty(path, out, why, sizeof why) == 0) {
            free(steps);
            return 0;
        }
        snprintf(note, sizeof note, "the newest checkpoint is damaged, trying an older one: %s", why);
        warn(note);
    }
    for (size_t i = 0; steps && i < n; i++) {
        if (tried && steps[i] >= named)
            continue; /* never anything newer than what latest named */
        snprintf(path, pathlen, "%s/step-%08" PRIu64 ".ckpt", dir, steps[i]);
        if (read_nonempty(path, out, why, sizeof why) == 0) {
            free(steps);
            return 0;
        }
        snprintf(note, sizeof note, "skipping a damaged checkpoint: %s", why);
        warn(note);
        tried = 1;
    }
    free(steps);
    if (!tried)
        return 1;
    snprintf(err, errlen, "%s: no valid checkpoint (every one is damaged; see the warnings)",
             dir);
    return -1;
}
