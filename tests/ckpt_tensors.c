/* Test tool for tests/compare_builds.sh: prints a checkpoint's state as text
 * and writes the exact bytes of every tensor to a file, so that two builds'
 * checkpoints can be compared bit for bit (a CRC-32 could hide a difference).
 *
 *   ckpt_tensors CKPT DIR
 *
 * stdout: every scalar field of the checkpoint and of its schedule state
 * except the training time, one `name value` line each (floating-point values
 * as their bit pattern, then readably), then one `tensor INDEX GROUP NAME
 * SHAPE` line per tensor; DIR/INDEX.f32 holds that tensor's floats as
 * little-endian bytes. Exits 2 with a message when the checkpoint cannot be
 * read (a damaged file, another format version) or a file cannot be written. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ckpt.h"

/* Fields that differ between any two runs, whatever the build. */
static const char *const ckpt_tensors_timing[] = { "wall_seconds", NULL };

static int ckpt_tensors_is_timing(const char *name)
{
    for (size_t i = 0; ckpt_tensors_timing[i]; i++)
        if (!strcmp(name, ckpt_tensors_timing[i]))
            return 1;
    return 0;
}

static void ckpt_tensors_double(const char *prefix, const char *name, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    printf("%s%s %016" PRIx64 " %.17g\n", prefix, name, bits, v);
}

/* Walks the message's descriptor rather than naming fields, so that a field
 * added to proto/ddtrain.proto is compared without changing this tool. */
static void ckpt_tensors_scalars(const char *prefix, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *p = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED || ckpt_tensors_is_timing(f->name))
            continue;
        switch (f->type) {
        case PROTOBUF_C_TYPE_DOUBLE:
            ckpt_tensors_double(prefix, f->name, *(const double *)p);
            break;
        case PROTOBUF_C_TYPE_FLOAT:
            ckpt_tensors_double(prefix, f->name, *(const float *)p);
            break;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
            printf("%s%s %" PRIu64 "\n", prefix, f->name, *(const uint64_t *)p);
            break;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
            printf("%s%s %" PRId64 "\n", prefix, f->name, *(const int64_t *)p);
            break;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
            printf("%s%s %" PRIu32 "\n", prefix, f->name, *(const uint32_t *)p);
            break;
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_ENUM:
            printf("%s%s %" PRId32 "\n", prefix, f->name, *(const int32_t *)p);
            break;
        case PROTOBUF_C_TYPE_BOOL:
            printf("%s%s %d\n", prefix, f->name, *(const protobuf_c_boolean *)p ? 1 : 0);
            break;
        case PROTOBUF_C_TYPE_STRING: {
            const char *s = *(char *const *)p;
            printf("%s%s %s\n", prefix, f->name, s ? s : "");
            break;
        }
        default: /* bytes and messages: the run configuration holds paths */
            break;
        }
    }
}

/* Writes t's floats to path as little-endian bytes, whatever the host's order. */
static int ckpt_tensors_dump(const char *path, const Ddtrain__Tensor *t)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "ckpt_tensors: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < t->n_data; i++) {
        uint32_t u;
        memcpy(&u, &t->data[i], sizeof u);
        unsigned char b[4] = { (unsigned char)u, (unsigned char)(u >> 8),
                               (unsigned char)(u >> 16), (unsigned char)(u >> 24) };
        fwrite(b, 1, sizeof b, f);
    }
    if (ferror(f) | fclose(f)) {
        fprintf(stderr, "ckpt_tensors: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int ckpt_tensors_group(const char *dir, const char *group, Ddtrain__Tensor *const *ts,
                              size_t n, unsigned *index)
{
    for (size_t i = 0; i < n; i++, (*index)++) {
        const Ddtrain__Tensor *t = ts[i];
        printf("tensor %04u %s %s ", *index, group, t->name);
        for (size_t k = 0; k < t->n_shape; k++)
            printf("%s%" PRIu32, k ? "x" : "", t->shape[k]);
        printf(" (%zu floats)\n", t->n_data);
        char path[4096];
        snprintf(path, sizeof path, "%s/%04u.f32", dir, *index);
        if (ckpt_tensors_dump(path, t))
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ckpt_tensors CKPT DIR\n");
        return 2;
    }
    Ddtrain__Checkpoint *m;
    char err[DDT_ERRLEN];
    if (ckpt_read_file(argv[1], &m, err, sizeof err)) {
        fprintf(stderr, "ckpt_tensors: %s\n", err);
        return 2;
    }
    ckpt_tensors_scalars("", &m->base);
    if (m->schedule)
        ckpt_tensors_scalars("schedule.", &m->schedule->base);
    else
        printf("schedule none\n");
    unsigned index = 0;
    int rc = ckpt_tensors_group(argv[2], "param", m->params, m->n_params, &index);
    if (!rc)
        rc = ckpt_tensors_group(argv[2], "bn", m->bn_running, m->n_bn_running, &index);
    if (!rc)
        rc = ckpt_tensors_group(argv[2], "input", m->input_norm, m->n_input_norm, &index);
    if (!rc)
        rc = ckpt_tensors_group(argv[2], "optimizer", m->optimizer, m->n_optimizer, &index);
    /* local SGD: every rank's own copies, groups rankR.param, rankR.bn, rankR.optimizer */
    for (size_t r = 0; !rc && r < m->n_rank_states; r++) {
        const Ddtrain__RankState *s = m->rank_states[r];
        char g[3][48];
        snprintf(g[0], sizeof g[0], "rank%" PRIu32 ".param", s->rank);
        snprintf(g[1], sizeof g[1], "rank%" PRIu32 ".bn", s->rank);
        snprintf(g[2], sizeof g[2], "rank%" PRIu32 ".optimizer", s->rank);
        rc = ckpt_tensors_group(argv[2], g[0], s->params, s->n_params, &index);
        if (!rc)
            rc = ckpt_tensors_group(argv[2], g[1], s->bn_running, s->n_bn_running, &index);
        if (!rc)
            rc = ckpt_tensors_group(argv[2], g[2], s->optimizer, s->n_optimizer, &index);
    }
    ckpt_free(m);
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "ckpt_tensors: cannot write the listing: %s\n", strerror(errno));
        return 2;
    }
    return rc ? 2 : 0;
}
