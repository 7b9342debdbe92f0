/* The fuzz harness shared by every target: a counter-based generator (so an
 * input is a function of the seed and its iteration number alone), growable
 * byte buffers, a corpus of seed inputs and the generic mutator. */
#ifndef DDT_FUZZ_H
#define DDT_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* A stream of pseudo-random numbers keyed by (seed, target, iteration). */
struct fuzz_rng {
    uint64_t key;
    uint64_t ctr;
};

void fuzz_rng_init(struct fuzz_rng *r, uint64_t seed, uint64_t target, uint64_t iter);
uint64_t fuzz_u64(struct fuzz_rng *r);
/* A number in [0, n); n > 0. */
size_t fuzz_below(struct fuzz_rng *r, size_t n);

struct fuzz_buf {
    uint8_t *p;
    size_t n, cap;
};

void fuzz_buf_set(struct fuzz_buf *b, const void *p, size_t n);
void fuzz_buf_insert(struct fuzz_buf *b, size_t at, const void *p, size_t n);
void fuzz_buf_erase(struct fuzz_buf *b, size_t at, size_t n);
void fuzz_buf_free(struct fuzz_buf *b);

/* Seed inputs, and tokens worth inserting (option names, keywords). */
struct fuzz_corpus {
    struct fuzz_buf *items;
    size_t n;
    const char *const *dict; /* NULL-terminated, or NULL */
};

void fuzz_corpus_add(struct fuzz_corpus *c, const void *p, size_t n);
void fuzz_corpus_free(struct fuzz_corpus *c);
const struct fuzz_buf *fuzz_pick(struct fuzz_rng *r, const struct fuzz_corpus *c);

/* Applies 1 to 4 (now and then up to 16) random edits to b in place: bit
 * flips, interesting bytes and 32/64-bit values (0, 0xff, 0x7fffffff, ...)
 * either byte order, insertions, deletions, truncation, splices with another
 * seed, dictionary tokens. */
void fuzz_mutate_buf(struct fuzz_rng *r, const struct fuzz_corpus *c, struct fuzz_buf *b);

/* out = a mutation of a random seed. */
void fuzz_mutate(struct fuzz_rng *r, const struct fuzz_corpus *c, struct fuzz_buf *out);

/* One fuzz target. run() feeds one input to the real code: it returns 1 when
 * the input was accepted, 0 when it was rejected cleanly, -1 (with a message
 * on stderr) when the code misbehaved in a way short of crashing. */
struct fuzz_target {
    const char *name;
    unsigned iters;                 /* in `make check` */
    int (*setup)(struct fuzz_corpus *seeds, const char *dir);
    /* NULL: fuzz_mutate */
    void (*mutate)(struct fuzz_rng *r, const struct fuzz_corpus *seeds, struct fuzz_buf *out);
    int (*run)(const uint8_t *p, size_t n);
    void (*teardown)(void);         /* or NULL */
};

extern const struct fuzz_target fuzz_ckpt_target, fuzz_idx_target, fuzz_csv_target,
    fuzz_config_target, fuzz_control_target, fuzz_onnx_target;

int fuzz_write_file(const char *path, const void *p, size_t n);
int fuzz_read_file(const char *path, struct fuzz_buf *out);

/* Replaces stdout with /dev/null around the commands that print (their
 * output is not what is tested). */
void fuzz_quiet(int on);

#define FUZZ_MAX_INPUT (1u << 20)

#endif
