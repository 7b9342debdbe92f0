/* Helpers shared by the unit tests; see check_util.h. */
#include "check_util.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rng.h"

/* ---- arrays ---------------------------------------------------------------- */

float *tu_falloc(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

double *tu_dalloc(size_t n)
{
    double *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

double *tu_to_double(const float *x, size_t n)
{
    double *d = tu_dalloc(n);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

void tu_set_all(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

/* ---- kernels against central differences ---------------------------------------- */

void tu_check_grad(const char *what, const float *analytic, float offset, double *x, size_t n,
                   double (*loss)(void *), void *ctx)
{
    for (size_t k = 0; k < n; k++) {
        double s = x[k];
        x[k] = s + FD_H;
        double lp = loss(ctx);
        x[k] = s - FD_H;
        double lm = loss(ctx);
        x[k] = s;
        double num = (lp - lm) / (2 * FD_H), got = (double)analytic[k] - offset;
        ck_assert_msg(fabs(got - num) <= FD_ATOL + FD_RTOL * fabs(num),
                      "%s[%zu]: analytic %.9g, central difference %.9g", what, k, got, num);
    }
}

/* ---- temporary directories ----------------------------------------------------- */

void tu_tmpdir(char *dir, size_t len, const char *tag)
{
    snprintf(dir, len, "/tmp/ddtrain-%s-XXXXXX", tag);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_rmtree(const char *dir)
{
    ck_assert_msg(nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0, "cannot remove %s", dir);
}

const char *tu_path(char *buf, size_t len, const char *dir, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
    return buf;
}

void tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* ---- small models ------------------------------------------------------------------ */

void tu_build(struct model *m, const char *text, int B, int G)
{
    struct spec s;
    char err[256];
    ck_assert_msg(spec_parse(&s, text, false, 0, err, sizeof err) == 0, "%s", err);
    struct model_options o = { .bn_group = G, .bn_eps = 1e-5f, .bn_momentum = 0.1f };
    ck_assert_msg(model_build(m, &s, B, &o, err, sizeof err) == 0, "%s", err);
    model_init_params(m, 5);
}

void tu_fill_input(struct model *m, int B)
{
    for (int i = 0; i < B * m->in_dim; i++)
        m->act[0][i] = (float)rng_normal(9, 99, 0, (uint64_t)i, 0);
    for (int i = 0; i < B; i++)
        m->labels[i] = (int32_t)(i % m->classes);
}

double tu_loss_of(struct model *m, const struct pass_ctx *ctx, int B)
{
    int correct;
    model_forward(m, ctx, B);
    return model_loss(m, m->labels, B, &correct);
}

void tu_model_fd(struct model *m, const char *what, const struct pass_ctx *ctx, int B, float h,
                 bool all)
{
    tu_loss_of(m, ctx, B);
    model_backward(m, m->labels, B, NULL, NULL);
    float *grad = tu_falloc(m->arena.n);
    memcpy(grad, m->arena.g, m->arena.n * sizeof *grad);
    for (int v = 0; v < m->arena.nviews; v++) {
        const struct tensor_view *tv = &m->arena.views[v];
        for (size_t k = 0; k < tv->n; k += all ? 1 : 1 + tv->n / 7) {
            float *w = &m->arena.w[tv->off + k], saved = *w;
            *w = saved + h;
            double lp = tu_loss_of(m, ctx, B);
            *w = saved - h;
            double lm = tu_loss_of(m, ctx, B);
            *w = saved;
            double num = (lp - lm) / (2.0 * h), ana = grad[tv->off + k];
            ck_assert_msg(fabs(num - ana) <= 2e-2 * fabs(num) + 5e-3,
                          "%s %s[%zu]: numeric %g analytic %g", what, tv->name, k, num, ana);
        }
    }
    free(grad);
}

void tu_model_gradients(struct model *m, const char *spec, int B, bool train, float h)
{
    for (int v = 0; v < m->arena.nviews; v++)
        if (m->arena.views[v].role == ROLE_BN_BETA || m->arena.views[v].role == ROLE_BN_GAMMA)
            for (size_t k = 0; k < m->arena.views[v].n; k++)
                arena_w(&m->arena, v)[k] += 0.3f * (float)rng_normal(3, 3, (uint64_t)v, k, 0);
    for (size_t k = 0; k < m->bn_running_n / 2; k++) {
        m->bn_running[k] = 0.1f * (float)k;                              /* running means */
        m->bn_running[m->bn_running_n / 2 + k] = 0.5f + 0.1f * (float)k; /* variances */
    }
    struct pass_ctx ctx = { .train = train, .seed = 11, .step = 2, .first_sample = 0 };
    tu_model_fd(m, spec, &ctx, B, h, false);
}

void tu_half_norms_split(struct model *m, const struct pass_ctx *ctx, int B)
{
    const int half = B / 2, D = m->in_dim;
    tu_loss_of(m, ctx, B);
    m->measure_halves = true;
    model_backward(m, m->labels, B, NULL, NULL);
    double halves[2] = { m->half_sq[0], m->half_sq[1] };
    m->measure_halves = false;
    float *input = tu_falloc((size_t)B * D);
    int32_t *labels = malloc((size_t)B * sizeof *labels);
    ck_assert_ptr_nonnull(labels);
    memcpy(input, m->act[0], (size_t)B * D * sizeof *input);
    memcpy(labels, m->labels, (size_t)B * sizeof *labels);
    for (int h = 0; h < 2; h++) {
        memcpy(m->act[0], input + h * half * D, (size_t)half * D * sizeof *input);
        memcpy(m->labels, labels + h * half, (size_t)half * sizeof *labels);
        tu_loss_of(m, ctx, half);
        model_backward(m, m->labels, half, NULL, NULL);
        double sq = 0;
        for (int v = 0; v < m->arena.nviews; v++)
            for (size_t k = 0; k < m->arena.views[v].n; k++)
                sq += (double)arena_g(&m->arena, v)[k] * arena_g(&m->arena, v)[k];
        ck_assert_double_eq_tol(halves[h], sq, 1e-5 * sq);
    }
    free(input);
    free(labels);
}

/* ---- the spec parser ------------------------------------------------------------------ */

void tu_spec_round_trip(struct spec *s, struct spec *again, const char *text,
                        const char *canonical)
{
    char err[256], out[512], out2[512];
    ck_assert_msg(spec_parse(s, text, false, 0, err, sizeof err) == 0, "%s: %s", text, err);
    spec_format(s, out, sizeof out);
    ck_assert_str_eq(out, canonical);
    ck_assert_msg(spec_parse(again, out, false, 0, err, sizeof err) == 0, "%s: %s", out, err);
    spec_format(again, out2, sizeof out2);
    ck_assert_str_eq(out2, out);
}

void tu_spec_refused(const char *text, bool bn, const char *says)
{
    struct spec s;
    char err[256] = "";
    ck_assert_int_eq(spec_parse(&s, text, bn, 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, says) != NULL, "'%s': message '%s' lacks '%s'", text, err, says);
}
