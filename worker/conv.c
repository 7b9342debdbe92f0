/* 2-D convolution kernels: im2col, its adjoint col2im, and per-sample GEMMs
 * (why per sample: conv.h). */
#include "conv.h"

#include <cblas.h>
#include <string.h>

#include "simd.h"

int conv_geom_init(struct conv_geom *g, int ic, int h, int w, int oc, int k, int stride, int pad)
{
    *g = (struct conv_geom){ .ic = ic, .h = h, .w = w, .oc = oc, .k = k, .stride = stride,
                             .pad = pad };
    if (ic < 1 || h < 1 || w < 1 || oc < 1 || k < 1 || stride < 1 || pad < 0 || k > h + 2 * pad ||
        k > w + 2 * pad)
        return -1;
    g->oh = (h + 2 * pad - k) / stride + 1;
    g->ow = (w + 2 * pad - k) / stride + 1;
    return 0;
}

bool conv_is_pointwise(const struct conv_geom *g)
{
    return g->k == 1 && g->stride == 1 && g->pad == 0;
}

size_t conv_col_floats(const struct conv_geom *g)
{
    if (conv_is_pointwise(g))
        return 0;
    return (size_t)g->ic * g->k * g->k * (size_t)g->oh * g->ow;
}

double conv_flops(const struct conv_geom *g)
{
    return 2.0 * g->oc * g->ic * g->k * g->k * (double)g->oh * g->ow;
}

/* The outputs o in [*lo, *hi) of n_out whose tap o·s + off lies inside an
 * input of n_in; the others read padding. Stride 1 (the usual case) without
 * a division: these are found once per tap. */
static void inside(int n_in, int n_out, int off, int s, int *lo, int *hi)
{
    if (s == 1) {
        *lo = off >= 0 ? 0 : -off;
        *hi = n_in - off;
    } else {
        *lo = off >= 0 ? 0 : (-off + s - 1) / s;
        *hi = n_in - 1 - off < 0 ? 0 : (n_in - 1 - off) / s + 1;
    }
    if (*hi > n_out)
        *hi = n_out;
    if (*lo > *hi)
        *lo = *hi;
}

/* Kernel tap (i, j): its offsets into the input (i - pad, j - pad) and the
 * output rows [ylo, yhi) and columns [xlo, xhi) that read inside the input,
 * the same for every channel. */
struct tap {
    int di, dj, ylo, yhi, xlo, xhi;
};

static struct tap tap_of(int i, int j, const struct conv_geom *g)
{
    struct tap t = { .di = i - g->pad, .dj = j - g->pad };
    inside(g->h, g->oh, t.di, g->stride, &t.ylo, &t.yhi);
    inside(g->w, g->ow, t.dj, g->stride, &t.xlo, &t.xhi);
    return t;
}

/* The loops below copy and zero rows of often 8 to 32 floats: GCC would
 * turn each into a call of memcpy or memset, which costs more than the copy
 * (the calls were two thirds of im2col's time). glibc keeps its own loops
 * as loops the same way. */
#if defined(__GNUC__) && !defined(__clang__)
#define CONV_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define CONV_LOOPS
#endif

/* Zeroes columns [0, xlo) and [xhi, OW) of rows [ylo, yhi) of row (OH·OW):
 * a column at a time, as the fringes are narrow (at most the padding) and
 * the rows many. */
CONV_LOOPS static inline __attribute__((always_inline)) void
zero_fringe(float *row, int ylo, int yhi, int xlo, int xhi, int OW)
{
    for (int x = 0; x < xlo; x++)
        for (int y = ylo; y < yhi; y++)
            row[(size_t)y * OW + x] = 0.0f;
    for (int x = xhi; x < OW; x++)
        for (int y = ylo; y < yhi; y++)
            row[(size_t)y * OW + x] = 0.0f;
}

/* Row (i, j) of one channel's columns: row (OH·OW) from plane (H, W), 0
 * where the tap lies in the padding. Plain loops rather than memset and
 * memcpy (CONV_LOOPS): the compiler vectorises the stride-1 loop. */
CONV_LOOPS static inline __attribute__((always_inline)) void
im2col_tap(float *restrict row, const float *restrict plane,
                              const struct tap *t, const struct conv_geom *g)
{
    int s = g->stride, OW = g->ow, ylo = t->ylo, yhi = t->yhi, xlo = t->xlo, xhi = t->xhi;
    for (int p = 0; p < ylo * OW; p++)
        row[p] = 0.0f;
    if (s == 1 && OW == g->w && ylo < yhi) {
        /* "same" padding: the tap's rows are one run of the plane shifted by
         * a constant; copy it whole, then zero the columns that wrapped */
        size_t a = (size_t)ylo * OW + xlo, b = (size_t)(yhi - 1) * OW + xhi;
        const float *restrict src = plane + (size_t)(ylo + t->di) * g->w + xlo + t->dj;
        for (size_t p = 0; p < b - a; p++)
            row[a + p] = src[p];
        zero_fringe(row, ylo, yhi, xlo, xhi, OW);
        ylo = yhi;
    }
    for (int y = ylo; y < yhi; y++) {
        float *restrict r = row + (size_t)y * OW;
        /* the tap's input row, indexed by output column (x s + j - pad) */
        const float *restrict src = plane + (size_t)(y * s + t->di) * g->w + t->dj;
        int x = 0;
        for (; x < xlo; x++)
            r[x] = 0.0f;
        if (s == 1)
            for (; x < xhi; x++)
                r[x] = src[x];
        else
            for (; x < xhi; x++)
                r[x] = src[x * s];
        for (; x < OW; x++)
            r[x] = 0.0f;
    }
    for (int p = yhi * OW; p < g->oh * OW; p++)
        row[p] = 0.0f;
}

/* Taps outermost: their bounds are found once, not once per channel. */
CONV_LOOPS DDT_HOT void conv_im2col(float *col, const float *in, const struct conv_geom *g)
{
    size_t P = (size_t)g->oh * g->ow, plane = (size_t)g->h * g->w;
    for (int i = 0; i < g->k; i++)
        for (int j = 0; j < g->k; j++) {
            struct tap t = tap_of(i, j, g);
            for (int c = 0; c < g->ic; c++)
                im2col_tap(col + ((size_t)(c * g->k + i) * g->k + j) * P, in + c * plane, &t, g);
        }
}

/* The adjoint of im2col_tap: plane (H, W) += row (OH·OW) where it was read. */
CONV_LOOPS static inline __attribute__((always_inline)) void
col2im_tap(float *restrict plane, float *restrict row, const struct tap *t,
                              const struct conv_geom *g)
{
    int s = g->stride, OW = g->ow, ylo = t->ylo, yhi = t->yhi, xlo = t->xlo, xhi = t->xhi;
    if (s == 1 && OW == g->w && ylo < yhi) {
        /* as in im2col_tap: one run, once the entries that would land on a
         * wrapped column are zero (adding 0 changes nothing) */
        size_t a = (size_t)ylo * OW + xlo, b = (size_t)(yhi - 1) * OW + xhi;
        float *restrict dst = plane + (size_t)(ylo + t->di) * g->w + xlo + t->dj;
        zero_fringe(row, ylo, yhi, xlo, xhi, OW);
        for (size_t p = 0; p < b - a; p++)
            dst[p] += row[a + p];
        return;
    }
    for (int y = ylo; y < yhi; y++) {
        const float *restrict r = row + (size_t)y * OW;
        float *restrict dst = plane + (size_t)(y * s + t->di) * g->w + t->dj;
        if (s == 1)
            for (int x = xlo; x < xhi; x++)
                dst[x] += r[x];
        else
            for (int x = xlo; x < xhi; x++)
                dst[x * s] += r[x];
    }
}

/* Taps outermost, as conv_im2col: each plane still takes its taps in the
 * order (i, j), so its sums are those of a channel-by-channel loop. */
CONV_LOOPS DDT_HOT void conv_col2im(float *din, float *col, const struct conv_geom *g)
{
    size_t P = (size_t)g->oh * g->ow, plane = (size_t)g->h * g->w;
    for (int i = 0; i < g->k; i++)
        for (int j = 0; j < g->k; j++) {
            struct tap t = tap_of(i, j, g);
            for (int c = 0; c < g->ic; c++)
                col2im_tap(din + c * plane, col + ((size_t)(c * g->k + i) * g->k + j) * P, &t,
                           g);
        }
}

void conv_forward(float *out, float *col, const float *in, const float *w, const float *b, int B,
                  const struct conv_geom *g)
{
    int K = g->ic * g->k * g->k, P = g->oh * g->ow;
    size_t in_n = (size_t)g->ic * g->h * g->w, out_n = (size_t)g->oc * P;
    for (int n = 0; n < B; n++) {
        const float *x = in + n * in_n, *cols = x;
        float *y = out + n * out_n, beta = 0.0f;
        if (!conv_is_pointwise(g)) {
            conv_im2col(col, x, g);
            cols = col;
        }
        /* the bias goes in first and the product is added to it: with beta
         * 0, sgemm would zero y in a pass of its own, so this costs nothing */
        if (b) {
            for (int o = 0; o < g->oc; o++)
                for (int p = 0; p < P; p++)
                    y[(size_t)o * P + p] = b[o];
            beta = 1.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->oc, P, K, 1.0f, w, K, cols, P,
                    beta, y, P);
    }
}

enum { CONV_LANES = 16 };

/* The sum of r (n) in CONV_LANES interleaved partial sums (lane l adds r[l],
 * r[l + CONV_LANES], ...) added pairwise in a fixed tree, then the tail in
 * order: a plain sequential sum is one chain of dependent additions that no
 * compiler may reorder (a quarter of a small layer's backward); this order is
 * written out, so every ISA clone, rank and run adds alike. */
static inline float plane_sum(const float *restrict r, int n)
{
    float acc[CONV_LANES] = { 0 };
    int p = 0;
    for (; p + CONV_LANES <= n; p += CONV_LANES)
        for (int l = 0; l < CONV_LANES; l++)
            acc[l] += r[p + l];
    for (int w = CONV_LANES / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++)
            acc[l] = acc[2 * l] + acc[2 * l + 1];
    float s = acc[0];
    for (; p < n; p++)
        s += r[p];
    return s;
}

DDT_HOT void conv_bias_grad(float *db, const float *dout, int B, int OC, int P, int accumulate)
{
    if (!accumulate)
        memset(db, 0, (size_t)OC * sizeof *db);
    for (int n = 0; n < B; n++)
        for (int o = 0; o < OC; o++)
            db[o] += plane_sum(dout + ((size_t)n * OC + o) * P, P);
}

void conv_backward(float *din, float *dw, float *db, float *col, const float *dout,
                   const float *in, const float *w, int B, const struct conv_geom *g,
                   int accumulate)
{
    int K = g->ic * g->k * g->k, P = g->oh * g->ow;
    size_t in_n = (size_t)g->ic * g->h * g->w, out_n = (size_t)g->oc * P;
    bool pointwise = conv_is_pointwise(g);
    if (db)
        conv_bias_grad(db, dout, B, g->oc, P, accumulate);
    if (B < 1 && !accumulate)
        memset(dw, 0, (size_t)g->oc * K * sizeof *dw);
    for (int n = 0; n < B; n++) {
        const float *x = in + n * in_n, *dy = dout + n * out_n, *cols = x;
        if (!pointwise) {
            conv_im2col(col, x, g);
            cols = col;
        }
        /* the first sample overwrites dw (unless accumulating), the others add to it */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->oc, K, P, 1.0f, dy, P, cols, P,
                    n || accumulate ? 1.0f : 0.0f, dw, K);
        if (!din)
            continue;
        float *dx = din + n * in_n;
        if (pointwise) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, g->oc, 1.0f, w, K, dy, P,
                        0.0f, dx, P);
            continue;
        }
        /* the columns are used up: their buffer takes their gradient */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, g->oc, 1.0f, w, K, dy, P, 0.0f,
                    col, P);
        memset(dx, 0, in_n * sizeof *dx);
        conv_col2im(dx, col, g);
    }
}
