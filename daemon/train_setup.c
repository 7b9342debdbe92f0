/* Setting up a training run: the schedule from the options, the data and
 * the model, resuming or fine-tuning from a checkpoint, the run directory. */
#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset.h"
#include "engine.h"
#include "fsutil.h"
#include "log.h"
#include "memory.h"
#include "models.h"
#include "model_init.h"
#include "onnx_import.h"
#include "spec.h"
#include "stall.h"
#include "trainer.h"
#include "validation.h"

/* The option table has filled the schedule; what is left are its lists and
 * the checks of options against each other. */
int train_build_schedule(struct trainer *t, char *err, size_t errlen)
{
    struct train_config *c = &t->cfg;
    if (sched_parse_milestones(&c->sched, c->lr_milestones, err, errlen))
        return -1;
    if (sched_parse_batch_list(&c->sched, c->batch_schedule, err, errlen))
        return -1;
    if (sched_validate(&c->sched, err, errlen))
        return -1;
    /* --batch-scales-lr is on by default, which reads as "the rate follows
     * the batch"; with no scaling rule there is nothing to follow */
    if (t->rank == 0 && c->sched.nbatch > 0 && c->sched.scaling == SCALE_NONE &&
        c->sched.batch_scales_lr)
        log_warn("--batch-schedule %s with --lr-scaling none: the rate will not follow the batch (--batch-scales-lr applies the scaling rule, and none keeps the rate); choose --lr-scaling linear or sqrt for the rate to grow with the batch, or pass --no-batch-scales-lr to say it stays",
                 c->batch_schedule);
    return 0;
}

static int max_global_batch(const struct trainer *t)
{
    const struct sched_config *s = &t->cfg.sched;
    int b = s->base_batch;
    /* buffers are sized for the largest batch --batch-auto may reach */
    if (adaptive_max_batch(t) > b)
        b = adaptive_max_batch(t);
    for (int i = 0; i < s->nbatch; i++)
        if (s->batch_sizes[i] > b)
            b = s->batch_sizes[i];
    return b;
}

static int min_global_batch(const struct sched_config *s)
{
    int b = s->base_batch;
    for (int i = 0; i < s->nbatch; i++)
        if (s->batch_sizes[i] < b)
            b = s->batch_sizes[i];
    return b;
}

long train_steps_in_epoch(const struct trainer *t, int64_t epoch)
{
    return (long)(t->train.n / (size_t)sched_batch_at(&t->cfg.sched, (double)epoch));
}

static long steps_in_epoch_of(long e, void *user)
{
    return train_steps_in_epoch(user, e);
}

/* Is a shape an image (more than one pixel per channel)? */
static bool spatial(struct shape s)
{
    return s.h * s.w > 1;
}

/* --classes 0 becomes the data set's count, so that config.txt and the
 * checkpoints name the count the run was built with; --augment is parsed
 * into cfg.aug. */
static int resolve_data_options(struct trainer *t, char *err, size_t errlen)
{
    struct train_config *c = &t->cfg;
    if (c->classes == 1) {
        snprintf(err, errlen, "--classes: '1' is not valid: allowed 0 (the data set's count) or a whole number from 2 to 65536");
        return -1;
    }
    if (c->classes == 0)
        c->classes = dataset_default_classes(c->data, c->label);
    return augment_parse(&c->aug, c->augment, err, errlen);
}

/* --augment is refused on a model whose input is flat, and a crop's
 * padding must be smaller than the image. */
static int check_augment(const struct trainer *t, const struct spec *s, char *err,
                         size_t errlen)
{
    const struct train_config *c = &t->cfg;
    struct shape in = spec_input_shape(s);
    if (augment_active(&c->aug) && !spatial(in)) {
        snprintf(err, errlen, "--augment %s: the model's input in:%d is flat: cropping and flipping need an image input such as in:3x32x32",
                 c->augment, shape_size(in));
        return -1;
    }
    if (c->aug.crop_pad > 0 && (c->aug.crop_pad >= in.h || c->aug.crop_pad >= in.w)) {
        snprintf(err, errlen, "--augment %s: a padding of %d pixels is not smaller than the %dx%d image",
                 c->augment, c->aug.crop_pad, in.h, in.w);
        return -1;
    }
    return 0;
}

/* A named model again, now for the data's sample shape and class count
 * (parse_options resolved it for Fashion-MNIST's). */
static int resolve_named_model(const struct trainer *t, struct spec *s, char *err, size_t errlen)
{
    const struct train_config *c = &t->cfg;
    char sub[256];
    if (models_parse(s, c->model, t->train.shape, c->classes, c->bn, (float)c->dropout, sub,
                     sizeof sub)) {
        snprintf(err, errlen, "--model: '%s' on the data set '%s': %s", c->model, c->data, sub);
        return -1;
    }
    return 0;
}

/* The data's sample shape against the model's input: an image input takes
 * exactly its shape, a flat one any sample of its size. */
static int check_input_shape(const struct trainer *t, const struct spec *s, char *err,
                             size_t errlen)
{
    const struct dataset *d = &t->train;
    struct shape in = spec_input_shape(s);
    if (spatial(in) && (d->shape.c != in.c || d->shape.h != in.h || d->shape.w != in.w)) {
        snprintf(err, errlen, "--model: the input is %dx%dx%d but the data set '%s' has samples of %dx%dx%d",
                 in.c, in.h, in.w, t->cfg.data, d->shape.c, d->shape.h, d->shape.w);
        return -1;
    }
    if (d->dim != (size_t)spec_input_width(s)) {
        snprintf(err, errlen, "--model: the input width is %d but the data set '%s' has %zu features per sample",
                 spec_input_width(s), t->cfg.data, d->dim);
        return -1;
    }
    return 0;
}

/* A model taken from --init-from whose head does not match the class count
 * (--classes, or the data set's): the head gets that many outputs and is
 * initialised afresh (as --reset-head does), and the spec says so. */
static void head_from_classes(struct trainer *t, struct spec *s)
{
    struct train_config *c = &t->cfg;
    int was = spec_output_width(s);
    for (int i = s->n - 1; i >= 0; i--)
        if (s->items[i].kind == &layer_fc) {
            s->items[i].arg.width = c->classes;
            break;
        }
    spec_format(s, c->model, (int)sizeof c->model);
    c->reset_head = true;
    if (t->rank == 0)
        log_info("--init-from %s: its head has %d outputs and this run has %d classes: the last layer gets %d outputs and is initialised afresh (--reset-head)",
                 c->init_from, was, c->classes, c->classes);
}

/* Loads both splits and checks them against the model, which a named
 * model first takes its input and classes from; exit-2 errors. */
static int load_data(struct trainer *t, struct spec *s, char *err, size_t errlen)
{
    bool named = models_is_name(t->cfg.model);
    /* a spec's input is known before the data: refuse --augment early */
    if (resolve_data_options(t, err, errlen) || (!named && check_augment(t, s, err, errlen)))
        return -1;
    const struct train_config *c = &t->cfg;
    char sub[DDT_ERRLEN];
    if (dataset_load_labelled(&t->train, c->data, "train", c->label, c->classes,
                              (size_t)c->train_samples, sub, sizeof sub)) {
        snprintf(err, errlen, "%s%s", strncmp(sub, "--", 2) ? "--data: " : "", sub);
        return -1;
    }
    if (validation_open_test(c, c->data, c->test_data, &t->train, &t->test,
                             (size_t)c->test_samples, err, errlen) ||
        validation_open(&t->cfg, &t->train, &t->val, err, errlen))
        return -1;
    if (named && (resolve_named_model(t, s, err, errlen) || check_augment(t, s, err, errlen)))
        return -1;
    if (check_input_shape(t, s, err, errlen))
        return -1;
    if (t->model_from_init && spec_output_width(s) != c->classes)
        head_from_classes(t, s);
    if (spec_output_width(s) != c->classes) {
        snprintf(err, errlen, "--model: the output width is %d but --classes is %d",
                 spec_output_width(s), c->classes);
        return -1;
    }
    return 0;
}

static int check_batches(const struct trainer *t, char *err, size_t errlen)
{
    int lo = min_global_batch(&t->cfg.sched), hi = max_global_batch(t);
    if ((size_t)hi > t->train.n) {
        snprintf(err, errlen, "--batch-size/--batch-schedule: a global batch of %d is larger than the %zu training samples",
                 hi, t->train.n);
        return -1;
    }
    if (lo < t->nranks) {
        snprintf(err, errlen, "--batch-size/--batch-schedule: a global batch of %d cannot be split across %d ranks: allowed at least one sample per rank",
                 lo, t->nranks);
        return -1;
    }
    return adaptive_check(t, err, errlen);
}

size_t train_data_bytes(const struct trainer *t)
{
    /* a --val-fraction split is a view of the training arrays: counted there */
    size_t ntrain = t->train.n + (t->val.view ? t->val.n : 0);
    const struct dataset *d[3] = { &t->train, &t->test, &t->val };
    size_t bytes = 0;
    for (int i = 0; i < 3; i++) {
        if (d[i]->view)
            continue;
        size_t n = i == 0 ? ntrain : d[i]->n;
        size_t elem = d[i]->type == SAMPLE_U8 ? 1 : sizeof(float);
        bytes += n * d[i]->dim * elem + n * sizeof(int32_t);
    }
    return bytes;
}

/* What a rank will hold for the model, from the model planned but not yet
 * allocated (the engine touches every page it allocates, so a model too large
 * would push the machine into swapping or the OOM killer rather than fail):
 * the terms of engine_memory_budget, which report_memory prints for the
 * built engine, less alignment padding and small buffers. A lower bound. */
static int spec_memory(const struct spec *s, const struct train_config *c, int max_slice,
                       int nranks, struct engine_memory *em, double local[2], char *err,
                       size_t errlen)
{
    struct model m;
    if (model_plan(&m, s, max_slice, &c->model_opts, err, errlen))
        return -1;
    double params = (double)model_param_count(&m);
    size_t nb = m.bn_running_n;
    em->activations = (double)model_activation_bytes(&m);
    model_free(&m);
    enum optim_kind k = c->optim.kind;
    double moments = k == OPTIM_ADAM || k == OPTIM_ADAMW || k == OPTIM_LAMB ? 2 : 1;
    /* local SGD's buffers: [0] on every rank, [1] on rank 0 */
    local[0] = local_sgd_memory(c, nranks, false, (size_t)params, nb, (int)moments);
    local[1] = local_sgd_memory(c, nranks, true, (size_t)params, nb, (int)moments);
    em->params = 2 * params * sizeof(float);
    em->optimizer = moments * params * sizeof(float) /
                    (c->shard_optimizer && c->local_steps == 0 ? nranks : 1);
    em->reduction = 0;
    return 0;
}

/* The model and the data of every rank on this machine against what the
 * machine has available (avail bytes, 0: unknown). */
static int check_memory(const struct trainer *t, const struct spec *s, double avail,
                        int local_ranks, bool has_rank0, char *err, size_t errlen)
{
    if (avail <= 0)
        return 0;
    struct engine_memory em;
    double local[2];
    int max_slice = train_micro_batch_max(t, max_global_batch(t));
    if (spec_memory(s, &t->cfg, max_slice, t->nranks, &em, local, err, errlen))
        return -1;
    const double mib = 1024.0 * 1024.0;
    double data = (double)train_data_bytes(t);
    double rank = em.params + em.optimizer + em.activations + data + local[0];
    /* rank 0 gathers local SGD's replicas for a checkpoint */
    double need = rank * local_ranks + (has_rank0 ? local[1] - local[0] : 0);
    if (need <= avail)
        return 0;
    char lsgd[96] = "";
    if (t->cfg.local_steps > 0)
        snprintf(lsgd, sizeof lsgd, " + local SGD %.0f (rank 0: %.0f)", local[0] / mib,
                 local[1] / mib);
    snprintf(err, errlen, "--model/--batch-size: %d rank%s on this machine need at least %.0f MiB (each: parameters and gradients %.0f + optimizer %.0f + activations for %d samples %.0f + data %.0f%s), only %.0f MiB available (MemAvailable): choose a smaller --model or --batch-size, or fewer ranks per machine (--model %s)",
             local_ranks, local_ranks == 1 ? "" : "s", need / mib, em.params / mib,
             em.optimizer / mib, max_slice, em.activations / mib, data / mib, lsgd, avail / mib,
             t->cfg.model);
    return -1;
}

/* MemAvailable of this machine, read once for all its ranks before any of
 * them loads data (so that all reach the same verdict), and their count;
 * *first: this rank speaks for the machine; *has_rank0: rank 0 runs on it.
 * Collective. */
static double machine_memory(int *local_ranks, bool *first, bool *has_rank0)
{
    MPI_Comm node;
    int local_rank = 0, world_rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    *local_ranks = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) !=
        MPI_SUCCESS) {
        *first = true;
        *has_rank0 = world_rank == 0;
        return (double)mem_available();
    }
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_size(node, local_ranks);
    /* the split keeps the world's order: rank 0 is its machine's first */
    double got[2] = { local_rank == 0 ? (double)mem_available() : 0, world_rank == 0 };
    MPI_Bcast(got, 2, MPI_DOUBLE, 0, node);
    MPI_Comm_free(&node);
    *first = local_rank == 0;
    *has_rank0 = got[1] != 0;
    return got[0];
}

/* Writes the effective config into the run directory (atomically). */
static int write_effective_config(const struct trainer *t, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.txt", t->cfg.run_dir);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    fprintf(mem, "# effective configuration of this run; usable with --config\n");
    config_write(train_options, &t->cfg, mem);
    fclose(mem);
    int rc = fs_write_atomic(path, text, len, err, errlen);
    free(text);
    return rc;
}

static void warn_line(const char *msg)
{
    log_warn("%s", msg);
}

/* Ranks other than 0 see the same damage; one report is enough. */
static void ignore_line(const char *msg)
{
    (void)msg;
}

/* The engine's settings from the options. */
static void engine_settings_from(struct trainer *t, const struct spec *s,
                                 struct engine_settings *es)
{
    const struct train_config *c = &t->cfg;
    memset(es, 0, sizeof *es);
    es->spec = s;
    es->max_slice = train_micro_batch_max(t, max_global_batch(t));
    es->accumulate = c->accumulate;
    es->model = c->model_opts;
    es->optim = c->optim;
    es->bucket_floats = (size_t)c->bucket_kb * 1024 / sizeof(float);
    es->overlap = c->overlap;
    /* local SGD keeps every rank's own parameters and optimizer state whole */
    es->local_sgd = c->local_steps > 0;
    es->shard = c->shard_optimizer && !es->local_sgd;
    es->shared_memory = c->shared_memory;
    es->noise_scale = c->noise_scale;
    es->augment = c->aug;
    es->train = &t->train;
    es->comm = MPI_COMM_WORLD;
    es->stall_timeout = c->stall_timeout;
    es->stall_step_multiple = STALL_STEP_MULTIPLE;
    es->on_stall = stall_report;
    es->stall_user = t->rank == 0 ? &t->ctl : NULL; /* rank 0 shows it in ctl status */
}

/* Which tensors --freeze-layers holds (by name, "fc1, bn1": a tensor's name
 * up to its '.'), and how many parameters still train. */
static void log_frozen(const struct model *m, int frozen)
{
    char names[512] = "", last[32] = "";
    size_t len = 0, trained = 0;
    for (int v = 0; v < m->arena.nviews; v++) {
        const struct tensor_view *tv = &m->arena.views[v];
        if (tv->lr_mult != 0.0f) {
            trained += tv->n;
            continue;
        }
        char base[32];
        snprintf(base, sizeof base, "%.*s", (int)strcspn(tv->name, "."), tv->name);
        if (!strcmp(base, last))
            continue;
        snprintf(last, sizeof last, "%s", base);
        int n = snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "", base);
        if (n > 0 && (size_t)n < sizeof names - len)
            len += (size_t)n;
    }
    log_info("--freeze-layers %d: %s frozen (weights, and batch norms' running statistics); %zu of %zu parameters train",
             frozen, names, trained, m->arena.n);
}

/* The tensors of weighted layer `layer` by name ("fc2, bn2": a tensor's
 * name up to its '.'), into out. */
static void layer_names(const struct model *m, int layer, char *out, size_t outlen)
{
    char last[32] = "";
    size_t len = 0;
    out[0] = '\0';
    for (int v = 0; v < m->arena.nviews; v++) {
        const struct tensor_view *tv = &m->arena.views[v];
        char base[32];
        snprintf(base, sizeof base, "%.*s", (int)strcspn(tv->name, "."), tv->name);
        if (tv->layer != layer || !strcmp(base, last))
            continue;
        snprintf(last, sizeof last, "%s", base);
        int n = snprintf(out + len, outlen - len, "%s%s", len ? ", " : "", base);
        if (n > 0 && (size_t)n < outlen - len)
            len += (size_t)n;
    }
}

/* --layer-lr-decay: each weighted layer's rate at --lr (the schedule scales
 * them all alike), its multiplier, and how many parameters train. */
static void log_layer_rates(const struct model *m, const struct train_config *c)
{
    char line[2048], names[256];
    size_t len = 0, trained = 0;
    int layers = m->arena.views[m->arena.nviews - 1].layer + 1;
    for (int v = 0; v < m->arena.nviews; v++)
        trained += m->arena.views[v].lr_mult != 0.0f ? m->arena.views[v].n : 0;
    line[0] = '\0';
    for (int l = 0; l < layers; l++) {
        float mult = 0.0f;
        for (int v = 0; v < m->arena.nviews; v++)
            if (m->arena.views[v].layer == l)
                mult = m->arena.views[v].lr_mult;
        layer_names(m, l, names, sizeof names);
        int n = mult == 0.0f
                    ? snprintf(line + len, sizeof line - len, "%s%s frozen", l ? "; " : "", names)
                    : snprintf(line + len, sizeof line - len, "%s%s %.6g (x%.6g)", l ? "; " : "",
                               names, c->sched.base_lr * mult, (double)mult);
        if (n > 0 && (size_t)n < sizeof line - len)
            len += (size_t)n;
    }
    log_info("--layer-lr-decay %g: rates at --lr %g: %s; %zu of %zu parameters train",
             c->layer_lr_decay, c->sched.base_lr, line, trained, m->arena.n);
}

/* Freezing, initial parameters, input normalisation, per-layer rates. */
static int init_model(struct trainer *t, char *err, size_t errlen)
{
    const struct train_config *c = &t->cfg;
    struct model *m = engine_model(&t->engine);
    int layers = m->arena.views[m->arena.nviews - 1].layer + 1;
    if (c->freeze_layers >= layers) {
        snprintf(err, errlen, "--freeze-layers: %d would freeze every layer of a %d-layer model: allowed at most %d",
                 c->freeze_layers, layers, layers - 1);
        return 2;
    }
    model_init_params_as(m, c->seed, (enum model_init)c->init);
    m->label_smoothing = (float)c->label_smoothing;
    /* an image's channels are normalised as wholes (any pixel of a channel
     * may land anywhere after a crop or a convolution); an MLP's features
     * one by one, as they always were */
    if (spatial(spec_input_shape(&m->spec)))
        dataset_channel_stats(&t->train, m->in_mean, m->in_inv_std);
    else
        dataset_feature_stats(&t->train, m->in_mean, m->in_inv_std);
    arena_set_layer_rates(&m->arena, c->freeze_layers, c->layer_lr_decay);
    m->frozen_groups = c->freeze_layers;
    if (c->freeze_layers > 0 && t->rank == 0)
        log_frozen(m, c->freeze_layers);
    if (c->layer_lr_decay != 1.0 && t->rank == 0)
        log_layer_rates(m, c);
    return 0;
}

/* --init-from: the weights, batch-norm statistics and input normalisation
 * of a checkpoint, or of an ONNX graph export wrote. */
static int load_init_from(struct trainer *t, char *err, size_t errlen)
{
    const struct train_config *c = &t->cfg;
    char sub[DDT_ERRLEN];
    if (onnx_import_is_onnx(c->init_from)) {
        double t0 = MPI_Wtime();
        if (onnx_import_model(engine_model(&t->engine), (float)c->model_opts.bn_eps,
                              c->init_from, c->reset_head, sub, sizeof sub)) {
            snprintf(err, errlen, "--init-from %s: %s", c->init_from, sub);
            return 2;
        }
        if (t->rank == 0)
            log_info("--init-from %s: the ONNX graph matches the model, loaded in %.3f s",
                     c->init_from, MPI_Wtime() - t0);
        return 0;
    }
    Ddtrain__Checkpoint *init;
    if (ckpt_read_file(c->init_from, &init, sub, sizeof sub)) {
        snprintf(err, errlen, "--init-from: %s", sub);
        return 2;
    }
    int rc = train_ckpt_restore(t, init, true, c->reset_head, sub, sizeof sub);
    if (rc) {
        /* what would fit: the model without its head, or the checkpoint's */
        char other[DDT_ERRLEN];
        bool head_only = !c->reset_head && !train_ckpt_restore(t, init, true, true, other, sizeof other);
        snprintf(err, errlen, "--init-from %s: %s; %s--model to take the checkpoint's (%s, its head sized by --classes)",
                 c->init_from, sub,
                 head_only ? "only the last layer differs: give --reset-head to initialise it afresh, or leave out " : "leave out ",
                 init->model_spec);
    }
    ckpt_free(init);
    return rc ? 2 : 0;
}

/* Do ghost groups of G samples tile every rank's slice of every global
 * batch of the schedule, with n ranks? Then the groups are the same
 * G-sample blocks of the global batch whatever n is. */
static bool groups_tile(const struct sched_config *s, int G, int n)
{
    if (G <= 0 || s->base_batch % (n * G) != 0)
        return false;
    for (int i = 0; i < s->nbatch; i++)
        if (s->batch_sizes[i] % (n * G) != 0)
            return false;
    return true;
}

/* A resume on another rank count: what stays and what changes. Batch norm
 * normalises over each rank's slice (or ghost groups inside it), so with
 * batch norm the groups change with the slice unless --bn-group tiles the
 * slices of both counts. */
static void warn_rank_count(const struct trainer *t, int was)
{
    const struct model *m = engine_model_const(&t->engine);
    int G = t->cfg.model_opts.bn_group;
    int B = sched_batch_at(&t->cfg.sched, (double)t->epoch);
    const char *bits = "bitwise equality with an uninterrupted run is not promised (sums run in another order)";
    if (m->bn_running_n == 0)
        log_warn("the checkpoint was written by %d rank%s and this run has %d: the model has no batch norm, so the math is the same, but %s",
                 was, was == 1 ? "" : "s", t->nranks, bits);
    else if (groups_tile(&t->cfg.sched, G, was) && groups_tile(&t->cfg.sched, G, t->nranks))
        log_warn("the checkpoint was written by %d rank%s and this run has %d: batch norm keeps its groups of %d samples (--bn-group), so the math is the same, but %s",
                 was, was == 1 ? "" : "s", t->nranks, G, bits);
    else
        log_warn("the checkpoint was written by %d rank%s and this run has %d: the math changes: batch norm's statistics are taken over each rank's slice%s, which goes from %d to %d samples of the global batch of %d, so the normalisation and the running statistics differ from an uninterrupted run; resume on %d rank%s, or train with a --bn-group that divides the slices of both counts, for the same math",
                 was, was == 1 ? "" : "s", t->nranks, G > 0 ? " in ghost groups that no longer tile it" : "",
                 B / was, B / t->nranks, B, was, was == 1 ? "" : "s");
}

/* What --extend made of the schedule, from the resumed step to the new end. */
static void log_extended_schedule(const struct trainer *t)
{
    const struct sched_config *s = &t->cfg.sched;
    int64_t e = t->epoch;
    long b = (long)t->batch_in_epoch;
    if (b >= train_steps_in_epoch(t, e)) {
        e++;
        b = 0;
    }
    double pos = (double)e + (double)b / (double)train_steps_in_epoch(t, e);
    log_info("resume --extend: the %s decay runs from step %ld (epoch %.3f, lr %.6g) to step %ld (the end of epoch %d, lr %.6g); warm-up ended at epoch %g",
             sched_decay_name(s->decay), (long)t->step, pos,
             sched_lr_at(s, pos, (long)t->step), t->total_steps, s->epochs,
             sched_lr_at(s, (double)s->epochs, t->total_steps), sched_warmup_end(s));
}

int train_setup(struct trainer *t, struct spec *s, const Ddtrain__Checkpoint *resume,
                char *err, size_t errlen)
{
    const struct train_config *c = &t->cfg;
    int local_ranks;
    bool first, has_rank0;
    double avail = machine_memory(&local_ranks, &first, &has_rank0);
    int status = load_data(t, s, err, errlen) || check_batches(t, err, errlen) ||
                         train_check_accumulate(t, err, errlen)
                     ? 2
                     : 0;
    if (status == 0 && check_memory(t, s, avail, local_ranks, has_rank0, err, errlen)) {
        status = 2;
        if (!first)
            err[0] = '\0'; /* one report per machine */
    }
    /* what follows communicates: every rank gets there, or none does (the
     * one that failed says why) */
    if (!comm_all_ok(MPI_COMM_WORLD, status == 0)) {
        if (status == 0)
            err[0] = '\0';
        return status ? status : 1;
    }
    struct engine_settings es;
    engine_settings_from(t, s, &es);
    if (engine_init(&t->engine, &es, err, errlen))
        return 1;
    status = init_model(t, err, errlen);
    if (status)
        return status;
    if (local_sgd_init(t, err, errlen))
        return 1;
    if (engine_note(&t->engine)[0] && t->rank == 0)
        log_warn("--shared-memory: %s; the ranks exchange their shards as messages instead",
                 engine_note(&t->engine));
    noise_init(&t->noise, c->noise_ema);
    adaptive_init(t);
    t->total_steps = 0;
    for (int e = 0; e < c->sched.epochs; e++)
        t->total_steps += train_steps_in_epoch(t, e);
    if (c->max_steps > 0 && c->max_steps < t->total_steps)
        t->total_steps = c->max_steps;
    /* the decay starts where a warm-up in steps ends, which the data's size decides */
    sched_set_warmup_steps_end(&t->cfg.sched, steps_in_epoch_of, t);

    char sub[DDT_ERRLEN];
    if (resume) {
        if (train_ckpt_restore(t, resume, false, false, sub, sizeof sub)) {
            snprintf(err, errlen, "--resume: %s", sub);
            return 2;
        }
        /* the step count above walked the base batch; the restored batches
         * (--batch-auto) and AdaScale's clock give the estimate the run makes */
        int batch = sched_batch_at(&t->cfg.sched, (double)t->epoch);
        adaptive_estimate_total(t, batch, adaptive_gain(t, batch));
        if (c->extend && t->rank == 0 && sched_shape_needs_length(&c->sched))
            log_extended_schedule(t);
        if (t->rank == 0 && resume->nranks != (uint32_t)t->nranks)
            warn_rank_count(t, (int)resume->nranks);
    } else if (c->init_from[0]) {
        return load_init_from(t, err, errlen);
    }
    return 0;
}

/* Keeps the metrics lines of steps up to `step`: what a resumed run will
 * write again must not appear twice; a torn last line goes too. */
static int truncate_metrics(const char *run_dir, int64_t step, char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    size_t torn;
    if (metrics_keep_until(path, (long long)step, &torn, err, errlen))
        return -1;
    if (torn)
        log_warn("%s: dropped a torn last line (%zu bytes without a newline, left by a write that failed or was cut short)",
                 path, torn);
    return 0;
}

int train_open_run_dir(struct trainer *t, bool resuming, char *err, size_t errlen)
{
    char path[4200], cerr[DDT_ERRLEN];
    if (fs_mkdir_p(t->cfg.run_dir, err, errlen))
        return -1;
    /* first, so that a second coordinator hears about the first one */
    if (control_start(&t->ctl, t->cfg.run_dir, cerr, sizeof cerr)) {
        snprintf(err, errlen, "%s", cerr);
        return -1;
    }
    /* this coordinator is now the run directory's only writer */
    int stale = ckpt_store_remove_temps(t->cfg.run_dir);
    if (stale)
        log_info("removed %d temporary file%s an interrupted checkpoint write left in %s/checkpoints",
                 stale, stale == 1 ? "" : "s", t->cfg.run_dir);
    /* --resume auto that found no checkpoint starts over (its configuration
     * was checked against config.txt in train_resolve_resume) */
    bool restart = !resuming && !strcmp(t->cfg.resume, "auto");
    snprintf(path, sizeof path, "%s/metrics.jsonl", t->cfg.run_dir);
    struct stat st;
    if (!resuming && !restart && stat(path, &st) == 0) {
        snprintf(err, errlen, "--run-dir: %s already holds a run (%s exists): continue it with --resume auto, or choose another run directory",
                 t->cfg.run_dir, path);
        return -1;
    }
    if ((resuming || restart) &&
        truncate_metrics(t->cfg.run_dir, resuming ? t->step : -1, err, errlen))
        return -1;
    if (write_effective_config(t, err, errlen))
        return -1;
    if (metrics_open(&t->metrics, t->cfg.run_dir, err, errlen))
        return -1;
    if (restart && t->start_reason && metrics_start(&t->metrics, t->start_reason)) {
        metrics_error(&t->metrics, err, errlen);
        return -1;
    }
    return 0;
}

/* A new --epochs moves the end of a decay whose shape depends on the length:
 * the rate at the resumed step would jump (a finished 2-epoch cosine run at
 * its floor is half way down a 3-epoch one). Refused unless --extend asks
 * for it, which says what the schedule becomes. Returns 0 or 2 with err. */
static int check_new_length(const struct trainer *t, const struct train_config *saved,
                            const struct train_config *now, char *err, size_t errlen)
{
    const struct sched_config *s = &now->sched;
    if (saved->sched.epochs == s->epochs || !sched_shape_needs_length(s))
        return 0;
    const char *kind = sched_decay_name(s->decay);
    if (!now->extend) {
        snprintf(err, errlen, "--epochs: %d differs from the resumed run's %d, and the %s decay's shape depends on the length of training, so the rate would jump at the resumed step: keep --epochs %d, or pass --extend to stretch the %s decay to the end of epoch %d",
                 s->epochs, saved->sched.epochs, kind, saved->sched.epochs, kind, s->epochs);
        return 2;
    }
    if (t->rank == 0)
        log_info("resume --extend: --epochs changes from %d to %d: the %s decay now ends with epoch %d instead of %d",
                 saved->sched.epochs, s->epochs, kind, s->epochs, saved->sched.epochs);
    return 0;
}

/* The run's configuration as `saved` (the checkpoint's or config.txt's),
 * overridden by what the command line says, into t->cfg; refuses changes
 * to options that change the math (and a new length of a length-shaped
 * decay without --extend, unless the run starts over: at_start). Returns 0
 * or 2 with err. */
static int merge_resumed_config(struct trainer *t, const struct train_config *saved, int argc,
                                char **argv, int first, bool at_start, char *err, size_t errlen)
{
    struct train_config now = *saved;
    /* --extend is this command's, never the resumed run's */
    now.extend = false;
    char cfg_err[DDT_ERRLEN];
    char *pos[1];
    int npos;
    config_parse_args(train_options, &now, argc, argv, first, pos, 0, &npos, cfg_err,
                      sizeof cfg_err);
    for (const struct option_def *o = train_options; o->name; o++) {
        char a[CONFIG_STRLEN + 32], b[CONFIG_STRLEN + 32];
        config_format_value(o, saved, a, sizeof a);
        config_format_value(o, &now, b, sizeof b);
        if (!strcmp(a, b))
            continue;
        if (o->flags & OPTF_MATH) {
            snprintf(err, errlen, "--%s: '%s' differs from the resumed run's '%s'; options that change the math (model, data, optimizer, schedule, seed, ...) cannot change on resume",
                     o->name, b, a);
            return 2;
        }
        if (t->rank == 0 && strcmp(o->name, "resume") != 0 && strcmp(o->name, "extend") != 0)
            log_info("resume: --%s changes from %s to %s", o->name, a, b);
    }
    if (!at_start && check_new_length(t, saved, &now, err, errlen))
        return 2;
    t->cfg = now;
    return 0;
}

/* Is --name (or --name=V, --no-name) on the command line? */
static bool option_on_command_line(int argc, char **argv, int first, const char *name)
{
    size_t n = strlen(name);
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            continue;
        a += 2;
        if (!strncmp(a, "no-", 3) && !strncmp(a + 3, name, n) && (a[3 + n] == '\0' || a[3 + n] == '='))
            return true;
        if (!strncmp(a, name, n) && (a[n] == '\0' || a[n] == '='))
            return true;
    }
    return false;
}

/* Does the --config file (already read once, so it exists and parses) have
 * a `name = value` line? */
static bool option_in_config_file(int argc, char **argv, int first, const char *name)
{
    const char *path = NULL;
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            path = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            path = argv[i] + 9;
    }
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    size_t n = strlen(name);
    while (!found && fgets(line, sizeof line, f)) {
        const char *k = line + strspn(line, " \t");
        size_t len = strcspn(k, "=# \t\r\n");
        found = len == n && !strncmp(k, name, n) && k[len + strspn(k + len, " \t")] == '=';
    }
    fclose(f);
    return found;
}

bool train_option_given(int argc, char **argv, int first, const char *name)
{
    return option_on_command_line(argc, argv, first, name) ||
           option_in_config_file(argc, argv, first, name);
}

int train_model_from_init(struct trainer *t, int argc, char **argv, int first, char *err,
                          size_t errlen)
{
    struct train_config *c = &t->cfg;
    if (!c->init_from[0] || onnx_import_is_onnx(c->init_from) ||
        train_option_given(argc, argv, first, "model"))
        return 0;
    Ddtrain__Checkpoint *msg;
    char sub[DDT_ERRLEN];
    if (ckpt_read_file(c->init_from, &msg, sub, sizeof sub)) {
        snprintf(err, errlen, "--init-from: %s", sub);
        return -1;
    }
    int n = snprintf(c->model, sizeof c->model, "%s", msg->model_spec);
    ckpt_free(msg);
    if (n < 0 || (size_t)n >= sizeof c->model) {
        snprintf(err, errlen, "--init-from %s: its model spec is longer than %zu characters: give it with --model",
                 c->init_from, sizeof c->model - 1);
        return -1;
    }
    t->model_from_init = true;
    if (t->rank == 0)
        log_info("--init-from %s: no --model given, so the model is the checkpoint's: %s",
                 c->init_from, c->model);
    return 0;
}

static const char *optim_name(enum optim_kind k)
{
    switch (k) {
    case OPTIM_SGD: return "sgd";
    case OPTIM_ADAM: return "adam";
    case OPTIM_ADAMW: return "adamw";
    case OPTIM_LARS: return "lars";
    case OPTIM_LAMB: return "lamb";
    }
    return "?";
}

/* Options the chosen optimizer would silently ignore, or that contradict
 * it: refused, each with what to do instead. An option counts when its
 * value differs from the default (the table's), and --wd-mode also when it
 * is on the command line (l2 is the default, and still nonsense beside
 * adamw). */
static int check_optimizer_combination(const struct train_config *c, int argc, char **argv,
                                       int first, char *err, size_t errlen)
{
    const struct optim_config *o = &c->optim;
    const char *k = optim_name(o->kind);
    bool adam_family = o->kind == OPTIM_ADAM || o->kind == OPTIM_ADAMW || o->kind == OPTIM_LAMB;
    if (o->nesterov && adam_family) {
        snprintf(err, errlen, "--nesterov: not with --optimizer %s: Nesterov momentum is an SGD and LARS update (%s's first moment is an average, not a velocity); drop --nesterov (NAdam is not available)", k, k);
        return -1;
    }
    if (o->nesterov && c->sched.momentum == 0) {
        snprintf(err, errlen, "--nesterov: needs momentum, and --momentum is 0: give a --momentum above 0 or drop --nesterov");
        return -1;
    }
    bool wd_mode_set = o->wd_mode != WD_L2 || train_option_given(argc, argv, first, "wd-mode");
    if (o->kind != OPTIM_SGD && wd_mode_set) {
        const char *instead = o->kind == OPTIM_ADAMW ? "AdamW's decay is decoupled by definition; for L2 decay through the gradient use --optimizer adam"
                              : o->kind == OPTIM_ADAM ? "Adam adds L2 decay to the gradient; for decoupled decay use --optimizer adamw"
                                                      : "LARS and LAMB apply their own decay inside the trust ratio";
        snprintf(err, errlen, "--wd-mode: only for --optimizer sgd, not %s: %s; drop --wd-mode", k, instead);
        return -1;
    }
    if (o->kind != OPTIM_LARS && o->trust_coef != 0.001) {
        snprintf(err, errlen, "--trust-coef: only for --optimizer lars, not %s (LAMB's trust ratio has no coefficient); drop --trust-coef", k);
        return -1;
    }
    if (!adam_family && (o->beta2 != 0.999 || o->eps != 1e-8)) {
        snprintf(err, errlen, "--beta2/--adam-eps: only for --optimizer adam, adamw or lamb, not %s, which keeps no second moment; drop them", k);
        return -1;
    }
    return 0;
}

/* The optimizer's options against each other, and a rate chosen for
 * another optimizer: Adam-like updates are normalised, so SGD's default
 * 0.1 moves every weight by up to 0.1 a step. Returns 0 or -1 with err. */
int train_check_optimizer(const struct trainer *t, int argc, char **argv, int first, char *err,
                          size_t errlen)
{
    const struct train_config *c = &t->cfg;
    if (check_optimizer_combination(c, argc, argv, first, err, errlen))
        return -1;
    enum optim_kind k = c->optim.kind;
    if (t->rank == 0 && (k == OPTIM_ADAM || k == OPTIM_ADAMW || k == OPTIM_LAMB) &&
        c->sched.base_lr == 0.1 && !train_option_given(argc, argv, first, "lr"))
        log_warn("--optimizer %s at --lr 0.1, the default chosen for SGD: %s's steps are normalised, so 0.1 moves each weight by up to 0.1 per step, which usually diverges; the usual range is 1e-4 to 3e-3 (e.g. --lr 1e-3)",
                 optim_name(k), optim_name(k));
    return 0;
}

/* Does the command line say what to train: an option that changes the
 * math (--model, --data, --lr, ...) or a --config file? Then a missing run
 * directory under --resume auto is the first submission of a job that a
 * scheduler may requeue, not a mistyped --run-dir. */
static bool command_defines_run(int argc, char **argv, int first)
{
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            continue;
        a += 2;
        size_t len = strcspn(a, "=");
        if (len == 6 && !strncmp(a, "config", 6))
            return true;
        if (len > 3 && !strncmp(a, "no-", 3)) {
            a += 3;
            len -= 3;
        }
        for (const struct option_def *o = train_options; o->name; o++)
            if ((o->flags & OPTF_MATH) && strlen(o->name) == len && !strncmp(o->name, a, len))
                return true;
    }
    return false;
}

/* --resume auto found no checkpoint: the run starts at step 0, with the
 * configuration of the run directory's config.txt when an interrupted run
 * left one (the same rules as a resume). A run directory that does not
 * exist is refused unless the command line defines the run. Says so on
 * stderr and (t->start_reason) in metrics.jsonl. Returns 0 or 2 with err. */
static int restart_without_checkpoint(struct trainer *t, int argc, char **argv, int first,
                                      char *err, size_t errlen)
{
    char path[4200], cfg_err[DDT_ERRLEN];
    struct stat st;
    if (stat(t->cfg.run_dir, &st) != 0) {
        if (!command_defines_run(argc, argv, first)) {
            snprintf(err, errlen, "--resume auto: the run directory %s does not exist, and the command line does not say what to train (no --model, --data, --lr or other option of the run, nor --config): check --run-dir, or give the run's options to start it there",
                     t->cfg.run_dir);
            return 2;
        }
        t->start_reason = "no run directory";
        if (t->rank == 0)
            log_warn("--resume auto: %s does not exist: nothing to resume, starting a new run there from step 0",
                     t->cfg.run_dir);
        return 0;
    }
    snprintf(path, sizeof path, "%s/config.txt", t->cfg.run_dir);
    bool interrupted = stat(path, &st) == 0;
    if (interrupted) {
        struct train_config saved;
        config_defaults(train_options, &saved);
        if (config_load_file(train_options, &saved, path, cfg_err, sizeof cfg_err)) {
            snprintf(err, errlen, "--resume auto: %s", cfg_err);
            return 2;
        }
        if (merge_resumed_config(t, &saved, argc, argv, first, true, err, errlen))
            return 2;
    }
    t->start_reason = "no checkpoint";
    if (t->rank == 0)
        log_warn("--resume auto: %s has no checkpoint yet: starting the run from step 0 (nothing to resume; the configuration of %s)",
                 t->cfg.run_dir, interrupted ? "its config.txt and the command line" : "the command line");
    return 0;
}

/* With --resume: finds the checkpoint, then rebuilds the configuration as
 * the checkpoint's, overridden by what the command line says, refusing
 * changes to options that change the math. Returns 0 (and *out, or NULL when
 * `auto` found nothing to resume) or 2 with err. */
int train_resolve_resume(struct trainer *t, int argc, char **argv, int first,
                          Ddtrain__Checkpoint **out, char *err, size_t errlen)
{
    *out = NULL;
    char path[4200], cerr[DDT_ERRLEN];
    Ddtrain__Checkpoint *msg = NULL;
    if (!strcmp(t->cfg.resume, "auto")) {
        int rc = ckpt_store_load_latest(t->cfg.run_dir, &msg, path, sizeof path,
                                        t->rank == 0 ? warn_line : ignore_line, cerr, sizeof cerr);
        if (rc == 1)
            return restart_without_checkpoint(t, argc, argv, first, err, errlen);
        if (rc < 0) {
            snprintf(err, errlen, "--resume auto: %s", cerr);
            return 2;
        }
    } else {
        snprintf(path, sizeof path, "%s", t->cfg.resume);
        if (ckpt_read_file(path, &msg, cerr, sizeof cerr)) {
            snprintf(err, errlen, "--resume: %s", cerr);
            return 2;
        }
        if (ckpt_is_empty(msg)) {
            snprintf(err, errlen, "--resume: %s: %s", path, CKPT_EMPTY_MSG);
            ckpt_free(msg);
            return 2;
        }
    }
    struct train_config saved;
    char cfg_err[DDT_ERRLEN];
    if (ckpt_parse_config(msg, &saved, cfg_err, sizeof cfg_err)) {
        snprintf(err, errlen, "--resume %s: %s", path, cfg_err);
        ckpt_free(msg);
        return 2;
    }
    if (merge_resumed_config(t, &saved, argc, argv, first, false, err, errlen)) {
        ckpt_free(msg);
        return 2;
    }
    if (t->rank == 0) {
        log_info("resuming from %s at step %" PRIu64, path, msg->schedule ? msg->schedule->step : 0);
    }
    *out = msg;
    return 0;
}
