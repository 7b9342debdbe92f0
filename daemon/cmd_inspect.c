/* `ddtrain inspect CKPT [--json] [--show-config]`: header, schedule state and
 * every tensor's name, shape and checksum. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "ckpt.h"
#include "commands.h"
#include "config.h"

struct inspect_config {
    bool json;
    bool show_config;
};

/* Not "config": that name is every command's "read options from FILE". */
const struct option_def inspect_options[] = {
    { "json", OPT_BOOL, offsetof(struct inspect_config, json), 0, 0, "false", NULL, 0,
      "print JSON" },
    { "show-config", OPT_BOOL, offsetof(struct inspect_config, show_config), 0, 0, "false", NULL,
      0, "also print the run configuration" },
    { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL },
};

/* "30x30" into out; a shape too long for outlen ends in "..." instead of
 * running past it, whatever the number of dimensions (outlen >= 4). */
static void shape_text(char *out, size_t outlen, const Ddtrain__Tensor *t)
{
    size_t used = 0;
    out[0] = 0;
    for (size_t k = 0; k < t->n_shape; k++) {
        int n = snprintf(out + used, outlen - used, "%s%u", k ? "x" : "", t->shape[k]);
        if (n < 0 || (size_t)n >= outlen - used) {
            memcpy(out + outlen - 4, "...", 4);
            return;
        }
        used += (size_t)n;
    }
}

static void tensors_text(const char *group, Ddtrain__Tensor *const *ts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const Ddtrain__Tensor *t = ts[i];
        char shape[64];
        shape_text(shape, sizeof shape, t);
        printf("  %-10s %-24s %-12s crc32 %08" PRIx32 "\n", group, t->name, shape, t->crc32);
    }
}

/* s as a JSON string: quotes, backslashes and control characters escaped
 * (a path or a tensor name may hold any of them). */
static void json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        case '\b': fputs("\\b", stdout); break;
        case '\f': fputs("\\f", stdout); break;
        default:
            if (*p < 0x20)
                printf("\\u%04x", *p);
            else
                putchar(*p);
        }
    }
    putchar('"');
}

static void tensors_json(const char *group, Ddtrain__Tensor *const *ts, size_t n, bool *first)
{
    for (size_t i = 0; i < n; i++) {
        const Ddtrain__Tensor *t = ts[i];
        printf("%s{\"group\":", *first ? "" : ",");
        json_string(group);
        printf(",\"name\":");
        json_string(t->name);
        printf(",\"shape\":[");
        for (size_t k = 0; k < t->n_shape; k++)
            printf("%s%u", k ? "," : "", t->shape[k]);
        printf("],\"crc32\":\"%08" PRIx32 "\"}", t->crc32);
        *first = false;
    }
}

/* Local SGD's rank states: every rank's own tensors, as groups rankR.param,
 * rankR.bn and rankR.optimizer (json: into the tensors array, *first as
 * tensors_json keeps it). */
static void rank_states_print(const Ddtrain__Checkpoint *m, bool json, bool *first)
{
    for (size_t r = 0; r < m->n_rank_states; r++) {
        const Ddtrain__RankState *s = m->rank_states[r];
        char g[3][32];
        snprintf(g[0], sizeof g[0], "rank%u.param", s->rank);
        snprintf(g[1], sizeof g[1], "rank%u.bn", s->rank);
        snprintf(g[2], sizeof g[2], "rank%u.optimizer", s->rank);
        if (json) {
            tensors_json(g[0], s->params, s->n_params, first);
            tensors_json(g[1], s->bn_running, s->n_bn_running, first);
            tensors_json(g[2], s->optimizer, s->n_optimizer, first);
        } else {
            tensors_text(g[0], s->params, s->n_params);
            tensors_text(g[1], s->bn_running, s->n_bn_running);
            tensors_text(g[2], s->optimizer, s->n_optimizer);
        }
    }
}

/* The run's --init from the checkpoint's configuration; a checkpoint
 * written before the option existed was initialised as he. */
static const char *ckpt_init_name(const Ddtrain__Checkpoint *m)
{
    static char name[16];
    snprintf(name, sizeof name, "he");
    for (size_t i = 0; m->config && i < m->config->n_lines; i++)
        if (sscanf(m->config->lines[i], "init = %15s", name) == 1)
            break;
    return name;
}

static void print_json(const char *path, const Ddtrain__Checkpoint *m,
                       const Ddtrain__ScheduleState *s, bool show_config)
{
    printf("{\"file\":");
    json_string(path);
    printf(",\"file_version\":%d,\"format_version\":%u,\"model_spec\":", CKPT_FILE_VERSION,
           m->format_version);
    json_string(m->model_spec);
    printf(",\"init\":");
    json_string(ckpt_init_name(m));
    printf(",\"nranks\":%u,\"optimizer_steps\":%llu,\"schedule\":{\"step\":%llu,\"epoch\":%llu,"
           "\"batch_in_epoch\":%llu,\"seed\":%llu,\"global_batch\":%u,\"wall_seconds\":%.3f},"
           "\"tensors\":[",
           m->nranks, (unsigned long long)m->optimizer_steps, (unsigned long long)s->step,
           (unsigned long long)s->epoch, (unsigned long long)s->batch_in_epoch,
           (unsigned long long)s->seed, s->global_batch, s->wall_seconds);
    bool firstt = true;
    tensors_json("param", m->params, m->n_params, &firstt);
    tensors_json("bn", m->bn_running, m->n_bn_running, &firstt);
    tensors_json("input", m->input_norm, m->n_input_norm, &firstt);
    tensors_json("optimizer", m->optimizer, m->n_optimizer, &firstt);
    rank_states_print(m, true, &firstt);
    printf("]");
    /* inside the object: lines after it would make the output invalid JSON */
    if (show_config) {
        printf(",\"config\":[");
        for (size_t i = 0; m->config && i < m->config->n_lines; i++) {
            printf("%s", i ? "," : "");
            json_string(m->config->lines[i]);
        }
        printf("]");
    }
    printf("}\n");
}

int inspect_main(int argc, char **argv, int first)
{
    struct inspect_config c;
    char err[DDT_ERRLEN], *pos[1];
    int npos;
    config_defaults(inspect_options, &c);
    int rc = config_parse_args(inspect_options, &c, argc, argv, first, pos, 1, &npos, err,
                               sizeof err);
    if (rc == 1) {
        printf("usage: ddtrain inspect CKPT [--json] [--show-config]\n\noptions:\n");
        config_help(inspect_options, stdout);
        return 0;
    }
    if (rc == 0 && npos != 1) {
        snprintf(err, sizeof err, "name one checkpoint file");
        rc = -1;
    }
    if (rc != 0) {
        fprintf(stderr, "ddtrain inspect: %s\n", err);
        return 2;
    }
    Ddtrain__Checkpoint *m;
    char file[4700];
    pos[0] = (char *)ckpt_follow_latest(pos[0], file, sizeof file);
    if (ckpt_read_file(pos[0], &m, err, sizeof err)) {
        fprintf(stderr, "ddtrain inspect: %s\n", err);
        return 2;
    }
    const Ddtrain__ScheduleState *s = m->schedule;
    Ddtrain__ScheduleState empty = DDTRAIN__SCHEDULE_STATE__INIT;
    if (!s)
        s = &empty;
    if (c.json) {
        print_json(pos[0], m, s, c.show_config);
    } else {
        printf("checkpoint %s\n  file format %d, message version %u, written by %u rank%s\n"
               "  model %s\n  step %llu, epoch %llu, batch %llu of the epoch, seed %llu, global batch %u\n"
               "  optimizer steps %llu, training time %.1f s, initialisation %s\n",
               pos[0], CKPT_FILE_VERSION, m->format_version, m->nranks, m->nranks == 1 ? "" : "s",
               m->model_spec, (unsigned long long)s->step, (unsigned long long)s->epoch,
               (unsigned long long)s->batch_in_epoch, (unsigned long long)s->seed,
               s->global_batch, (unsigned long long)m->optimizer_steps, s->wall_seconds,
               ckpt_init_name(m));
        tensors_text("param", m->params, m->n_params);
        tensors_text("bn", m->bn_running, m->n_bn_running);
        tensors_text("input", m->input_norm, m->n_input_norm);
        tensors_text("optimizer", m->optimizer, m->n_optimizer);
        rank_states_print(m, false, NULL);
        if (c.show_config && m->config)
            for (size_t i = 0; i < m->config->n_lines; i++)
                printf("%s\n", m->config->lines[i]);
    }
    ckpt_free(m);
    return 0;
}
