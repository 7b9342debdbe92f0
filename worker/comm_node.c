/* Ranks of one machine summing their shards in an MPI shared-memory window.
 *
 * Rank 0's segment holds its gradient arena, the one parameter arena of the
 * machine and the flags; every other rank's holds its gradient arena. Each
 * rank has a row of flags (a cache line apart from the others' rows): for
 * each bucket the last step whose gradients of it are final, and the last
 * step whose pieces it has updated. Flags only grow, are written by their
 * rank alone (release) and read by the others (acquire), so no lock is
 * needed and a slow reader can never see a flag go back.
 *
 * Why this is race free: an owner sums and updates the parameters of a
 * bucket only after every rank has flagged that bucket final, and a rank
 * flags it only once its backward no longer reads those parameters; the
 * next step (which writes gradients and reads parameters again) starts only
 * when every rank has flagged its update done. */
#include "comm_node.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vec.h"

#define ALIGN 64

static size_t round_up(size_t x, size_t to)
{
    return (x + to - 1) / to * to;
}

static void *aligned_in(void *p)
{
    return (void *)round_up((size_t)p, ALIGN);
}

static _Atomic uint64_t *flag(const struct comm_node *c, int rank, int slot)
{
    return &c->flags[(size_t)rank * c->flag_stride + (size_t)slot];
}

/* Did every rank of comm succeed? (collective, guarded) */
static bool all_ok(MPI_Comm comm, bool ok, struct comm_watch *w)
{
    int all = ok;
    comm_guard_enter(w, "the agreement on the shared-memory window");
    MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_MIN, comm);
    comm_guard_leave(w);
    return all != 0;
}

/* Every rank's stores to the window are seen by every other rank after it. */
static void fenced_barrier(const struct comm_node *c, struct comm_watch *w, const char *where)
{
    atomic_thread_fence(memory_order_seq_cst);
    comm_guard_enter(w, where);
    MPI_Barrier(c->comm);
    comm_guard_leave(w);
    atomic_thread_fence(memory_order_seq_cst);
}

static void give_up(struct comm_node *c)
{
    MPI_Comm_free(&c->comm);
    free(c->peer_g);
    c->peer_g = NULL;
}

/* Makes the window (rank 0's segment: gradients, parameters, flags; the
 * others': gradients) and zeroes it. Returns 0, or the MPI error code. */
static int make_window(struct comm_node *c, size_t arena_bytes, struct comm_watch *w)
{
    size_t N = (size_t)c->nranks;
    size_t bytes = ALIGN + arena_bytes;
    if (c->rank == 0)
        bytes += arena_bytes + N * c->flag_stride * sizeof(uint64_t);
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true");
    /* a window that cannot be made (no shared-memory component, a full
     * /dev/shm) is a reason to send messages, not to end the job */
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    void *base;
    comm_guard_enter(w, "the creation of the shared-memory window");
    int rc = MPI_Win_allocate_shared((MPI_Aint)bytes, 1, info, c->comm, &base, &c->win);
    comm_guard_leave(w);
    MPI_Info_free(&info);
    if (rc != MPI_SUCCESS)
        return rc;
    for (int q = 0; q < c->nranks; q++) {
        MPI_Aint size;
        int unit;
        void *p;
        MPI_Win_shared_query(c->win, q, &size, &unit, &p);
        c->peer_g[q] = aligned_in(p);
        if (q == 0) {
            c->node_w = (float *)((char *)c->peer_g[0] + arena_bytes);
            c->flags = (_Atomic uint64_t *)((char *)c->node_w + arena_bytes);
        }
    }
    if (c->rank == 0) /* the arenas are zeroed by their ranks when adopted */
        memset(c->flags, 0, N * c->flag_stride * sizeof(uint64_t));
    return 0;
}

int comm_node_init(struct comm_node *c, MPI_Comm comm, int nbuckets, size_t arena_n,
                   struct comm_watch *w, char *note, size_t notelen, char *why, size_t whylen)
{
    memset(c, 0, sizeof *c);
    MPI_Comm_rank(comm, &c->rank);
    MPI_Comm_size(comm, &c->nranks);
    c->nbuckets = nbuckets;
    comm_guard_enter(w, "the split of the ranks by machine");
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &c->comm);
    comm_guard_leave(w);
    int local;
    MPI_Comm_size(c->comm, &local);
    if (local != c->nranks) { /* ranks on several machines: point to point */
        MPI_Comm_free(&c->comm);
        return 0;
    }
    c->flag_stride = round_up((size_t)c->nbuckets + 1, ALIGN / sizeof(uint64_t));
    c->peer_g = malloc((size_t)c->nranks * sizeof *c->peer_g);
    if (!all_ok(comm, c->peer_g != NULL, w)) {
        snprintf(why, whylen, "%s", c->peer_g ? "another rank ran out of memory"
                                              : "out of memory for the shared-memory plan");
        give_up(c);
        return -1;
    }
    int rc = make_window(c, round_up(arena_n * sizeof(float), ALIGN), w);
    if (!all_ok(comm, rc == MPI_SUCCESS, w)) {
        char text[MPI_MAX_ERROR_STRING] = "it failed on another rank";
        int len;
        if (rc != MPI_SUCCESS)
            MPI_Error_string(rc, text, &len);
        snprintf(note, notelen, "no shared-memory window (MPI_Win_allocate_shared: %s)",
                 text);
        /* a window made on some ranks only cannot be freed (MPI_Win_free
         * is collective): it stays until the job ends */
        give_up(c);
        return 0;
    }
    fenced_barrier(c, w, "the barrier after the shared-memory window was zeroed");
    c->on = true;
    return 0;
}

void comm_node_free(struct comm_node *c, struct arena *a, struct comm_watch *w)
{
    if (!c->on)
        return;
    if (c->adopted) { /* the arena is about to go with the window */
        a->w = NULL;
        a->g = NULL;
    }
    comm_guard_enter(w, "the release of the shared-memory window");
    MPI_Win_free(&c->win);
    comm_guard_leave(w);
    give_up(c);
    c->on = c->adopted = false;
}

void comm_node_adopt(struct comm_node *c, struct arena *a, struct comm_watch *w)
{
    /* every replica holds the same parameters (initialised or restored from
     * the same seed or checkpoint): rank 0's copy stands for all */
    /* private copies go before their replacements' pages are first touched,
     * so the peak never holds both; the padding that whole-bucket sums read
     * must be zero, and MPI does not promise zeroed windows */
    free(a->g);
    memset(c->peer_g[c->rank], 0, a->n * sizeof(float));
    if (c->rank == 0)
        memcpy(c->node_w, a->w, a->n * sizeof(float));
    free(a->w);
    fenced_barrier(c, w, "the barrier after the parameters moved into shared memory");
    a->w = c->node_w;
    a->g = c->peer_g[c->rank];
    c->adopted = true;
}

void comm_node_ready(struct comm_node *c, int k, uint64_t epoch)
{
    atomic_store_explicit(flag(c, c->rank, k), epoch, memory_order_release);
}

/* The ranks whose flag in `slot` has not reached this step, into w->missing. */
static int lagging(const struct comm_node *c, int slot, uint64_t epoch, struct comm_watch *w)
{
    int n = 0;
    for (int q = 0; q < c->nranks; q++)
        if (atomic_load_explicit(flag(c, q, slot), memory_order_acquire) < epoch)
            w->missing[n++] = q;
    return n;
}

/* Waits until every rank's flag in `slot` reaches this step: spins, then
 * yields the core (with more ranks than cores the one we wait for needs
 * it), then naps (comm_wait.c), and tells the watchdog whose flags lag. */
static bool all_reached(const struct comm_node *c, int slot, uint64_t epoch, bool wait,
                        struct comm_watch *w)
{
    struct comm_backoff b;
    comm_backoff_init(&b, w);
    for (int q = 0; q < c->nranks;) {
        if (atomic_load_explicit(flag(c, q, slot), memory_order_acquire) >= epoch) {
            q++;
            continue;
        }
        if (!wait)
            return false;
        if (comm_backoff_pause(&b))
            comm_backoff_report(&b, slot < c->nbuckets
                                        ? "the shared-memory reduction (gradients ready)"
                                        : "the shared-memory parameter exchange (updates done)",
                                w->missing, lagging(c, slot, epoch, w));
    }
    return true;
}

bool comm_node_arrived(const struct comm_node *c, int k, uint64_t epoch, bool wait,
                       struct comm_watch *w)
{
    return all_reached(c, k, epoch, wait, w);
}

void comm_node_reduce(const struct comm_node *c, const float **src, size_t at, size_t count)
{
    if (count == 0)
        return;
    for (int q = 0; q < c->nranks; q++)
        src[q] = c->peer_g[q] + at;
    vec_sum_in_order(c->peer_g[c->rank] + at, src, c->nranks, count);
}

void comm_node_sync_params(struct comm_node *c, uint64_t epoch, struct comm_watch *w)
{
    atomic_store_explicit(flag(c, c->rank, c->nbuckets), epoch, memory_order_release);
    all_reached(c, c->nbuckets, epoch, true, w);
}
