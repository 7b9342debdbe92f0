/* Deterministic mutation fuzzing of ddtrain's readers: checkpoint files, IDX
 * and CSV data sets, config files and command lines, control requests.
 *
 *   tests/fuzz [--iters N] [--seed S] [--target NAME]... [--iter K --save FILE]
 *
 * Each target first replays its regression inputs (tests/fuzz-inputs/NAME/),
 * then its seeds, then N mutations of them. Iteration K's input depends on
 * the seed and K alone, so `--target NAME --iter K --save FILE` writes the
 * input of a failure for tests/fuzz-inputs/. DDT_FUZZ_ITERS and DDT_FUZZ_SEED
 * set N and S from the environment. A crash, a hang (alarm) or a sanitizer
 * report names the target and iteration and saves the input as
 * fuzz-crash-NAME-K in the current directory. */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#else
#define FUZZ_ASAN 0
#endif

/* ---- generator and buffers ---------------------------------------------------- */

static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void fuzz_rng_init(struct fuzz_rng *r, uint64_t seed, uint64_t target, uint64_t iter)
{
    r->key = splitmix(splitmix(splitmix(seed) ^ target) ^ iter);
    r->ctr = 0;
}

uint64_t fuzz_u64(struct fuzz_rng *r)
{
    return splitmix(r->key ^ splitmix(r->ctr++));
}

size_t fuzz_below(struct fuzz_rng *r, size_t n)
{
    return (size_t)(fuzz_u64(r) % n);
}

static void buf_reserve(struct fuzz_buf *b, size_t n)
{
    if (n <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "fuzz: out of memory\n");
        exit(99);
    }
    b->p = p;
    b->cap = cap;
}

void fuzz_buf_set(struct fuzz_buf *b, const void *p, size_t n)
{
    buf_reserve(b, n + 1);
    if (n)
        memmove(b->p, p, n);
    b->n = n;
}

void fuzz_buf_insert(struct fuzz_buf *b, size_t at, const void *p, size_t n)
{
    buf_reserve(b, b->n + n + 1);
    memmove(b->p + at + n, b->p + at, b->n - at);
    memcpy(b->p + at, p, n);
    b->n += n;
}

void fuzz_buf_erase(struct fuzz_buf *b, size_t at, size_t n)
{
    memmove(b->p + at, b->p + at + n, b->n - at - n);
    b->n -= n;
}

void fuzz_buf_free(struct fuzz_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void fuzz_corpus_add(struct fuzz_corpus *c, const void *p, size_t n)
{
    struct fuzz_buf *items = realloc(c->items, (c->n + 1) * sizeof *items);
    if (!items) {
        fprintf(stderr, "fuzz: out of memory\n");
        exit(99);
    }
    c->items = items;
    memset(&c->items[c->n], 0, sizeof c->items[0]);
    fuzz_buf_set(&c->items[c->n++], p, n);
}

void fuzz_corpus_free(struct fuzz_corpus *c)
{
    for (size_t i = 0; i < c->n; i++)
        fuzz_buf_free(&c->items[i]);
    free(c->items);
    c->items = NULL;
    c->n = 0;
}

const struct fuzz_buf *fuzz_pick(struct fuzz_rng *r, const struct fuzz_corpus *c)
{
    return &c->items[fuzz_below(r, c->n)];
}

/* ---- the generic mutator ------------------------------------------------------ */

static const uint32_t interesting32[] = { 0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff,
                                          0x10000, 0x7fffffff, 0x80000000u, 0xfffffffeu,
                                          0xffffffffu };
static const uint8_t interesting8[] = { 0, 1, 0x7f, 0x80, 0xff, '\n', ',', '=', '#', ' ', '-', '.' };

static void put_value(struct fuzz_rng *r, struct fuzz_buf *b, int bytes)
{
    if (b->n < (size_t)bytes)
        return;
    size_t at = fuzz_below(r, b->n - (size_t)bytes + 1);
    uint64_t v = interesting32[fuzz_below(r, sizeof interesting32 / sizeof interesting32[0])];
    if (bytes == 8 && fuzz_below(r, 2))
        v = fuzz_below(r, 2) ? UINT64_MAX : (v << 32 | v);
    if (fuzz_below(r, 4) == 0)
        v += fuzz_below(r, 2) ? 1 : (uint64_t)-1;
    int big = (int)fuzz_below(r, 2);
    for (int i = 0; i < bytes; i++)
        b->p[at + (size_t)i] = (uint8_t)(v >> (8 * (big ? bytes - 1 - i : i)));
}

static void insert_random(struct fuzz_rng *r, const struct fuzz_corpus *c, struct fuzz_buf *b)
{
    size_t at = fuzz_below(r, b->n + 1);
    if (c->dict && fuzz_below(r, 2)) {
        size_t nd = 0;
        while (c->dict[nd])
            nd++;
        const char *tok = c->dict[fuzz_below(r, nd)];
        fuzz_buf_insert(b, at, tok, strlen(tok));
        return;
    }
    uint8_t bytes[8];
    size_t n = 1 + fuzz_below(r, sizeof bytes);
    for (size_t i = 0; i < n; i++)
        bytes[i] = fuzz_below(r, 2) ? (uint8_t)fuzz_u64(r)
                                    : interesting8[fuzz_below(r, sizeof interesting8)];
    fuzz_buf_insert(b, at, bytes, n);
}

/* b = b[0, i) + other[j, end) */
static void splice_seed(struct fuzz_rng *r, const struct fuzz_corpus *c, struct fuzz_buf *b)
{
    const struct fuzz_buf *o = fuzz_pick(r, c);
    size_t i = fuzz_below(r, b->n + 1), j = fuzz_below(r, o->n + 1);
    b->n = i;
    fuzz_buf_insert(b, i, o->p + j, o->n - j);
}

static void one_edit(struct fuzz_rng *r, const struct fuzz_corpus *c, struct fuzz_buf *b)
{
    size_t n = b->n;
    switch (fuzz_below(r, 11)) {
    case 0:
        if (n)
            b->p[fuzz_below(r, n)] ^= (uint8_t)(1u << fuzz_below(r, 8));
        break;
    case 1:
        if (n)
            b->p[fuzz_below(r, n)] = interesting8[fuzz_below(r, sizeof interesting8)];
        break;
    case 2:
        if (n)
            b->p[fuzz_below(r, n)] += (uint8_t)(fuzz_below(r, 2) ? 1 : 255);
        break;
    case 3:
    case 4:
        insert_random(r, c, b);
        break;
    case 5:
        if (n) {
            size_t at = fuzz_below(r, n);
            fuzz_buf_erase(b, at, 1 + fuzz_below(r, (n - at) < 16 ? n - at : 16));
        }
        break;
    case 6:
        b->n = fuzz_below(r, n + 1);
        break;
    case 7:
        splice_seed(r, c, b);
        break;
    case 8:
        put_value(r, b, 4);
        break;
    case 9:
        put_value(r, b, 8);
        break;
    default:
        if (n) { /* a chunk copied elsewhere */
            size_t from = fuzz_below(r, n), len = 1 + fuzz_below(r, n - from);
            if (len > 64)
                len = 64;
            uint8_t chunk[64];
            memcpy(chunk, b->p + from, len);
            fuzz_buf_insert(b, fuzz_below(r, n + 1), chunk, len);
        }
        break;
    }
}

void fuzz_mutate_buf(struct fuzz_rng *r, const struct fuzz_corpus *c, struct fuzz_buf *b)
{
    size_t edits = fuzz_below(r, 8) ? 1 + fuzz_below(r, 4) : 1 + fuzz_below(r, 16);
    for (size_t k = 0; k < edits; k++)
        one_edit(r, c, b);
    if (b->n > FUZZ_MAX_INPUT)
        b->n = FUZZ_MAX_INPUT;
}

void fuzz_mutate(struct fuzz_rng *r, const struct fuzz_corpus *c, struct fuzz_buf *out)
{
    const struct fuzz_buf *s = fuzz_pick(r, c);
    fuzz_buf_set(out, s->p, s->n);
    fuzz_mutate_buf(r, c, out);
}

/* ---- files ------------------------------------------------------------------- */

int fuzz_write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "fuzz: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t put = n ? fwrite(p, 1, n, f) : 0;
    if (fclose(f) != 0 || put != n) {
        fprintf(stderr, "fuzz: %s: write error\n", path);
        return -1;
    }
    return 0;
}

int fuzz_read_file(const char *path, struct fuzz_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz: %s: %s\n", path, strerror(errno));
        return -1;
    }
    out->n = 0;
    uint8_t chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        fuzz_buf_insert(out, out->n, chunk, got);
    int bad = ferror(f);
    fclose(f);
    return bad ? -1 : 0;
}

void fuzz_quiet(int on)
{
    static int saved = -1;
    fflush(stdout);
    if (on && saved < 0) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        saved = dup(STDOUT_FILENO);
        dup2(null, STDOUT_FILENO);
        close(null);
    } else if (!on && saved >= 0) {
        dup2(saved, STDOUT_FILENO);
        close(saved);
        saved = -1;
    }
}

/* ---- crashes and hangs ------------------------------------------------------- */

/* What is running, for the crash report (read in signal handlers). */
static struct {
    const char *target;
    long iter; /* -1: a regression input or a seed */
    const char *what;
    const uint8_t *p;
    size_t n;
} now;

static void say(const char *s)
{
    ssize_t ignored = write(STDERR_FILENO, s, strlen(s));
    (void)ignored;
}

static void fmt_long(char *out, long v)
{
    char tmp[24];
    int k = 0;
    unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
    do
        tmp[k++] = (char)('0' + u % 10);
    while ((u /= 10) > 0);
    if (v < 0)
        *out++ = '-';
    while (k)
        *out++ = tmp[--k];
    *out = 0;
}

/* Async-signal-safe: names the input and saves it next to the test's log. */
static void report_death(const char *why)
{
    char num[24], path[128] = "fuzz-crash-";
    if (!now.target)
        return;
    if (now.iter < 0)
        strcpy(num, "replay");
    else
        fmt_long(num, now.iter);
    strncat(path, now.target, 40);
    strcat(path, "-");
    strcat(path, num);
    say("fuzz: ");
    say(now.target);
    say(": ");
    say(why);
    say(now.iter < 0 ? " on " : " at iteration ");
    say(now.iter < 0 ? now.what : num);
    say("; the input is saved as ");
    say(path);
    say("\n");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        ssize_t ignored = write(fd, now.p, now.n);
        (void)ignored;
        close(fd);
    }
}

static void on_signal(int sig)
{
    report_death(sig == SIGALRM ? "hang (no answer within the alarm)" : strsignal(sig));
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_sanitizer_death(void)
{
    report_death("sanitizer report");
}

/* The sanitizer runtime's hook, present only in sanitized builds. */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static void install_handlers(void)
{
    int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGALRM };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (!FUZZ_ASAN || sigs[i] == SIGALRM || sigs[i] == SIGABRT)
            signal(sigs[i], on_signal);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(on_sanitizer_death);
    signal(SIGPIPE, SIG_IGN);
}

/* ---- the driver -------------------------------------------------------------- */

static const struct fuzz_target *const targets[] = { &fuzz_ckpt_target, &fuzz_idx_target,
                                                     &fuzz_csv_target, &fuzz_config_target,
                                                     &fuzz_control_target, &fuzz_onnx_target };
#define NTARGETS (sizeof targets / sizeof targets[0])

struct options {
    long iters;          /* -1: each target's own count */
    uint64_t seed;
    int only[NTARGETS];  /* all zero: every target */
    long save_iter;      /* -1: fuzz; else write that iteration's input */
    const char *save_path;
};

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs one input under the alarm; 1 accepted, 0 rejected, -1 misbehaved. */
static int run_one(const struct fuzz_target *t, long iter, const char *what,
                   const struct fuzz_buf *in)
{
    now.target = t->name;
    now.iter = iter;
    now.what = what;
    now.p = in->p;
    now.n = in->n;
    alarm(FUZZ_ASAN ? 60 : 20);
    int rc = t->run(in->p, in->n);
    alarm(0);
    if (rc < 0) {
        if (iter >= 0)
            fprintf(stderr, "fuzz: %s: iteration %ld misbehaved (see above)\n", t->name, iter);
        else
            fprintf(stderr, "fuzz: %s: %s misbehaved (see above)\n", t->name, what);
    }
    now.target = NULL;
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays tests/fuzz-inputs/NAME/ in name order; returns the failures. */
static int replay_regressions(const struct fuzz_target *t, int *count)
{
    const char *src = getenv("top_srcdir");
    char dir[4096], path[8192];
    snprintf(dir, sizeof dir, "%s/tests/fuzz-inputs/%s", src ? src : ".", t->name);
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char *names[1024];
    int n = 0, bad = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 1024)
        if (e->d_name[0] != '.')
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_names);
    struct fuzz_buf in = { 0 };
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (fuzz_read_file(path, &in) || run_one(t, -1, path, &in) < 0)
            bad++;
        free(names[i]);
    }
    fuzz_buf_free(&in);
    *count = n;
    return bad;
}

static void make_input(const struct fuzz_target *t, size_t ti, const struct options *o,
                       const struct fuzz_corpus *seeds, long iter, struct fuzz_buf *in)
{
    struct fuzz_rng r;
    fuzz_rng_init(&r, o->seed, ti, (uint64_t)iter);
    if (t->mutate)
        t->mutate(&r, seeds, in);
    else
        fuzz_mutate(&r, seeds, in);
}

/* Regressions, seeds, then the mutations; returns the failures. */
static int fuzz_one(const struct fuzz_target *t, size_t ti, const struct options *o,
                    const char *dir)
{
    struct fuzz_corpus seeds = { 0 };
    if (t->setup(&seeds, dir))
        return 1;
    struct fuzz_buf in = { 0 };
    if (o->save_iter >= 0) {
        make_input(t, ti, o, &seeds, o->save_iter, &in);
        int rc = fuzz_write_file(o->save_path, in.p, in.n);
        fuzz_buf_free(&in);
        fuzz_corpus_free(&seeds);
        if (t->teardown)
            t->teardown();
        return rc ? 1 : 0;
    }
    double t0 = seconds();
    int fds = open_fds(), nreg, bad = replay_regressions(t, &nreg);
    for (size_t i = 0; i < seeds.n; i++)
        if (run_one(t, -1, "a seed", &seeds.items[i]) != 1) {
            fprintf(stderr, "fuzz: %s: seed %zu is not accepted\n", t->name, i);
            bad++;
        }
    long iters = o->iters >= 0 ? o->iters : (long)t->iters, accepted = 0;
    size_t heap0 = mallinfo2().uordblks;
    for (long k = 0; k < iters && bad < 10; k++) {
        make_input(t, ti, o, &seeds, k, &in);
        int rc = run_one(t, k, NULL, &in);
        bad += rc < 0;
        accepted += rc == 1;
        if (k % 256 == 255 && open_fds() != fds) {
            fprintf(stderr, "fuzz: %s: %d descriptors open after iteration %ld, %d before: a leak\n",
                    t->name, open_fds(), k, fds);
            bad++;
            fds = open_fds();
        }
    }
    /* the sanitizer build finds leaks precisely; this catches steady ones */
    size_t heap1 = mallinfo2().uordblks;
    if (!FUZZ_ASAN && heap1 > heap0 + (8u << 20)) {
        fprintf(stderr, "fuzz: %s: the heap grew by %zu bytes over the iterations: a leak\n",
                t->name, heap1 - heap0);
        bad++;
    }
    size_t nseeds = seeds.n;
    fuzz_buf_free(&in);
    fuzz_corpus_free(&seeds);
    if (t->teardown)
        t->teardown();
    printf("fuzz: %-8s %d regression inputs, %zu seeds, %ld iterations (%ld accepted) in %.1f s: %s\n",
           t->name, nreg, nseeds, iters, accepted, seconds() - t0, bad ? "FAILED" : "ok");
    fflush(stdout);
    return bad;
}

static int usage(void)
{
    fprintf(stderr, "usage: fuzz [--iters N] [--seed S] [--target NAME]... [--iter K --save FILE]\n"
                    "targets:");
    for (size_t i = 0; i < NTARGETS; i++)
        fprintf(stderr, " %s", targets[i]->name);
    fprintf(stderr, "\n");
    return 2;
}

static int parse_options(struct options *o, int argc, char **argv)
{
    const char *env_iters = getenv("DDT_FUZZ_ITERS"), *env_seed = getenv("DDT_FUZZ_SEED");
    *o = (struct options){ .iters = env_iters ? atol(env_iters) : -1,
                           .seed = env_seed ? strtoull(env_seed, NULL, 0) : 1,
                           .save_iter = -1 };
    int any = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (!strcmp(argv[i], "--iters"))
            o->iters = atol(v);
        else if (!strcmp(argv[i], "--seed"))
            o->seed = strtoull(v, NULL, 0);
        else if (!strcmp(argv[i], "--iter"))
            o->save_iter = atol(v);
        else if (!strcmp(argv[i], "--save"))
            o->save_path = v;
        else if (!strcmp(argv[i], "--target")) {
            size_t k = 0;
            while (k < NTARGETS && strcmp(targets[k]->name, v))
                k++;
            if (k == NTARGETS)
                return usage();
            o->only[k] = any = 1;
        } else
            return usage();
        i++;
    }
    if ((o->save_iter >= 0) != (o->save_path != NULL) || (o->save_path && !any))
        return usage();
    for (size_t k = 0; !any && k < NTARGETS; k++)
        o->only[k] = 1;
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_options(&o, argc, argv))
        return 2;
    install_handlers();
    if (!FUZZ_ASAN) {
        /* a header announcing gigabytes must fail to allocate, not swap */
        struct rlimit lim = { 4ul << 30, 4ul << 30 };
        setrlimit(RLIMIT_AS, &lim);
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ddtrain-fuzz-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "fuzz: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    int bad = 0;
    for (size_t k = 0; k < NTARGETS; k++)
        if (o.only[k])
            bad += fuzz_one(targets[k], k, &o, dir);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", dir);
    return bad ? 1 : 0;
}
