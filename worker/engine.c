/* Building a rank's engine: the model, then the communication that plans
 * its buckets and shards, then the optimizer state of the shard it owns. */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "evaluate.h"

int engine_init(struct engine *e, const struct engine_settings *s, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    e->world = s->comm;
    MPI_Comm_rank(s->comm, &e->rank);
    MPI_Comm_size(s->comm, &e->nranks);
    e->train = s->train;
    e->augment = s->augment;
    e->perm_epoch = -1;
    e->accumulate = s->accumulate > 1 ? s->accumulate : 1;
    int rc = model_build(&e->model, s->spec, s->max_slice, &s->model, err, errlen);
    /* what follows communicates: every rank gets there, or none does (the
     * one that failed says why) */
    if (!comm_all_ok(s->comm, rc == 0)) {
        if (rc == 0)
            err[0] = '\0';
        return -1;
    }
    struct comm_watch_settings ws = { .timeout = s->stall_timeout,
                                      .step_multiple = s->stall_step_multiple,
                                      .on_stall = s->on_stall, .user = s->stall_user };
    if (comm_init(&e->comm, s->comm, &e->model, s->bucket_floats, s->overlap, s->shard,
                  s->shared_memory, &ws)) {
        snprintf(err, errlen, "communication set-up: %s", e->comm.why);
        return -1;
    }
    /* the optimizer state of the range this rank updates: all, or its shard;
     * LARS and LAMB norms of tensors cut by shards are summed over ranks */
    const struct optim_range *owned;
    int nowned = comm_owned_ranges(&e->comm, &owned);
    if (optim_init_ranges(&e->opt, &s->optim, &e->model.arena, owned, nowned)) {
        snprintf(err, errlen, "out of memory for the optimizer state");
        return -1;
    }
    /* local SGD averages parameters, batch-norm statistics and optimizer
     * moments, each no longer than the arena */
    size_t most = e->model.arena.n > e->model.bn_running_n ? e->model.arena.n
                                                           : e->model.bn_running_n;
    if (s->local_sgd && average_init(&e->avg, s->comm, most)) {
        snprintf(err, errlen, "out of memory for local SGD's average");
        return -1;
    }
    e->opt.sum_norms = comm_sum_norms;
    e->opt.sum_user = &e->comm;
    e->perm = malloc(s->train->n * sizeof *e->perm);
    if (!e->perm) {
        snprintf(err, errlen, "out of memory for the sample permutation");
        return -1;
    }
    /* one rank: the two halves of its batch stand in for two ranks */
    if (s->noise_scale && e->nranks == 1 && model_enable_halves(&e->model)) {
        snprintf(err, errlen, "out of memory for the noise-scale scratch");
        return -1;
    }
    return 0;
}

void engine_free(struct engine *e)
{
    free(e->perm);
    e->perm = NULL;
    /* before the model: an arena adopted by shared memory goes with the window */
    comm_free(&e->comm);
    average_free(&e->avg);
    optim_free(&e->opt);
    model_free(&e->model);
}

struct model *engine_model(struct engine *e)
{
    return &e->model;
}

const struct model *engine_model_const(const struct engine *e)
{
    return &e->model;
}

const char *engine_note(const struct engine *e)
{
    return e->comm.note;
}

double engine_batch_loss(struct engine *e, const struct dataset *d, const uint32_t *idx,
                         int count, const struct pass_ctx *ctx, int *correct)
{
    return model_batch_loss(&e->model, d, idx, count, ctx, correct);
}

void engine_evaluate(struct engine *e, const struct dataset *d, size_t n, double *loss,
                     double *acc)
{
    evaluate_split_watched(&e->model, d, n, e->world, &e->comm.watch, loss, acc);
}

struct comm_watch *engine_watch(struct engine *e)
{
    return &e->comm.watch;
}

bool engine_replicas_agree(struct engine *e, unsigned long long *hash)
{
    return comm_replicas_agree(&e->comm, e->model.arena.w, e->model.arena.n, hash);
}

void engine_wait(struct engine *e, MPI_Request *req, int peer, int64_t step, const char *where)
{
    e->comm.watch.step = step;
    comm_wait_all(&e->comm, 1, req, &peer, where);
}

void engine_memory_budget(const struct engine *e, struct engine_memory *out)
{
    out->params = 2.0 * (double)e->model.arena.n * sizeof(float);
    /* the optimizer state and reduction buffer of this rank's shard, if sharded */
    out->optimizer = (double)e->opt.n * sizeof(float) * (e->opt.v ? 2.0 : 1.0);
    out->reduction = 0;
    if (e->comm.shard && !e->comm.node.on) /* in shared memory, peers' parts are read in place */
        out->reduction = (double)(e->nranks - 1) * (double)e->comm.owned_n * sizeof(float);
    out->activations = (double)model_activation_bytes(&e->model);
}

int engine_gather_optimizer_state(struct engine *e, const float **m, const float **v,
                                  float **m_all, float **v_all)
{
    *m = e->opt.m;
    *v = e->opt.v;
    *m_all = *v_all = NULL;
    if (!e->comm.shard)
        return 0;
    size_t n = e->model.arena.n;
    int ok = 1;
    if (e->rank == 0) {
        *m_all = arena_buffer(n);
        *v_all = e->opt.v ? arena_buffer(n) : NULL;
        ok = *m_all && (*v_all || !e->opt.v);
    }
    comm_guard_enter(&e->comm.watch, "the broadcast of rank 0's room for the optimizer state");
    MPI_Bcast(&ok, 1, MPI_INT, 0, e->comm.comm);
    comm_guard_leave(&e->comm.watch);
    if (!ok)
        return -1;
    comm_gather_shards(&e->comm, e->opt.m, *m_all);
    if (e->opt.v)
        comm_gather_shards(&e->comm, e->opt.v, *v_all);
    *m = *m_all;
    *v = *v_all;
    return 0;
}

int engine_restore_optimizer_state(struct engine *e, engine_state_fill_fn fill, void *user)
{
    /* the state of the ranges this rank owns (all of it unless sharded) lies
     * range after range in m and v */
    const struct arena *a = &e->model.arena;
    const struct optim *o = &e->opt;
    for (int v = 0; v < a->nviews; v++) {
        const struct tensor_view *tv = &a->views[v];
        size_t state = 0;
        for (int j = 0; j < o->nranges; j++) {
            const struct optim_range *r = &o->ranges[j];
            size_t b = tv->off > r->lo ? tv->off : r->lo;
            size_t end = tv->off + tv->n < r->hi ? tv->off + tv->n : r->hi;
            size_t len = end > b ? end - b : 0, first = len ? b - tv->off : 0;
            size_t at = state + (len ? b - r->lo : 0);
            int rc = fill(user, tv, o->m + at, o->v ? o->v + at : NULL, first, len);
            if (rc)
                return rc;
            state += r->hi - r->lo;
        }
    }
    return 0;
}

long engine_optimizer_steps(const struct engine *e)
{
    return e->opt.t;
}

void engine_set_optimizer_steps(struct engine *e, long steps)
{
    e->opt.t = steps;
}
