/* Helpers shared by the unit tests (prefix tu_): allocation that asserts, the
 * central-difference check of a kernel's gradient, temporary directories and
 * the files written into them, small models built from a spec, and the spec
 * parser's round trip and refusals. Every helper fails the running test
 * through ck_assert rather than returning an error. */
#ifndef DDT_CHECK_UTIL_H
#define DDT_CHECK_UTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

#include "model.h"
#include "spec.h"

/* ---- arrays ---------------------------------------------------------------- */

/* n floats / doubles (at least one, so that n = 0 is not a failed malloc) */
float *tu_falloc(size_t n);
double *tu_dalloc(size_t n);
/* A new double copy of x (n). */
double *tu_to_double(const float *x, size_t n);
void tu_set_all(float *x, size_t n, float v);

/* ---- kernels against central differences ----------------------------------------
 *
 * The scalar loss is L = sum(out * R) for a fixed random R, so that dout = R;
 * loss(ctx) is a double-precision reference forward written from the
 * definition. With h = 1e-6 in double the differences are good to about
 * 1e-9, the float kernels to about 1e-6 relative: 1e-4 relative plus 1e-4
 * absolute leaves room for float rounding and still catches a missing or
 * wrong term, which would be of order 1. */

#define FD_H 1e-6
#define FD_RTOL 1e-4
#define FD_ATOL 1e-4

/* Compares analytic (n) - offset with central differences of loss(ctx) over
 * x (n), one of the reference's inputs, perturbed in place and restored. */
void tu_check_grad(const char *what, const float *analytic, float offset, double *x, size_t n,
                   double (*loss)(void *), void *ctx);

/* ---- temporary directories ----------------------------------------------------- */

/* A new directory /tmp/ddtrain-<tag>-XXXXXX, its name into dir (len). */
void tu_tmpdir(char *dir, size_t len, const char *tag);
/* Removes dir and everything below it. */
void tu_rmtree(const char *dir);
/* dir/name into buf (len); returns buf. */
const char *tu_path(char *buf, size_t len, const char *dir, const char *name);
/* Writes len bytes of data to path, replacing it. */
void tu_write_file(const char *path, const void *data, size_t len);

/* ---- small models ------------------------------------------------------------------ */

/* Builds m from the spec text (no MLP batch norm or dropout) for B samples
 * with ghost groups of G, parameters initialised with seed 5. */
void tu_build(struct model *m, const char *text, int B, int G);
/* Normal inputs, the same for every caller, and labels i % classes. */
void tu_fill_input(struct model *m, int B);
/* Forward of B samples and their mean loss. */
double tu_loss_of(struct model *m, const struct pass_ctx *ctx, int B);

/* Central differences of the loss over parameters against the analytic
 * gradient of one backward, a step h in float; every element when all,
 * else about 7 of each tensor. The message names what (the spec). */
void tu_model_fd(struct model *m, const char *what, const struct pass_ctx *ctx, int B, float h,
                 bool all);
/* tu_model_fd of a sample of every tensor, after giving batch norm's gamma,
 * beta and running statistics values away from their initial ones (train
 * false: the evaluation-mode gradient, through running statistics). */
void tu_model_gradients(struct model *m, const char *spec, int B, bool train, float h);
/* For a model without batch norm (rows contribute independently): the half
 * norms of one backward over B (even) samples equal the squared gradient
 * norms of backward passes over each half alone. */
void tu_half_norms_split(struct model *m, const struct pass_ctx *ctx, int B);

/* ---- the spec parser ------------------------------------------------------------------ */

/* text parses (into s) and formats as canonical, which parses (into again)
 * and formats as itself. */
void tu_spec_round_trip(struct spec *s, struct spec *again, const char *text,
                        const char *canonical);
/* text is refused with a message that contains says; bn as spec_parse's. */
void tu_spec_refused(const char *text, bool bn, const char *says);

#endif
