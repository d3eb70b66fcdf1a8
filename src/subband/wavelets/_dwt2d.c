/* The orthonormal 2-D Haar transform over J levels, one pass over the data each way
   (subband.wavelets._native builds and calls it).

   wavedec: x (B, H, W), any strides, H and W divisible by 2^J  ->  the bands LL, LH, HL, HH of
            each level j = 1 .. J, (B, H >> j, W >> j) with contiguous rows and one batch stride
            per level; only the last level's LL is written (the others are consumed on the way).
   waverec: the bands of every level, any strides (level j's LL only read for j = J)  ->  x
            (B, H, W), contiguous.

   Per 2x2 block, the two input rows give their sum s and difference d at the even (e) and odd (o)
   columns: LL = (se + so) / 2, LH = h (se - so) / 2, HL = h (de + do) / 2, HH = (de - do) / 2 for
   the high-pass sign h = +-1 (the orthonormal bank s [[1, 1], [h, -h]] along each axis). The
   synthesis inverts it: with u, v = LL +- h LH and w, z = h HL +- HH, the top row's pair is
   ((u + w) / 2, (v + z) / 2) and the bottom row's ((u - w) / 2, (v - z) / 2).

   Levels are fused: the work is split into tiles of 2^J input rows (one row of level J); within a
   tile each level's LL rows are made two at a time into a small buffer, depth first, and the next
   level consumes them while they are in cache, so the intermediate approximations never reach
   memory. Rows whose last stride is 1 run in vectors of 32 bytes (AVX2 where the CPU has it), the
   rest one block at a time. Tiles are split between OpenMP threads when built with it; each thread
   keeps its rows in its own part of the caller's scratch buffer. */

#include <stdint.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#define THREAD omp_get_thread_num()
#else
#define THREAD 0
#endif

#if defined(__x86_64__) && (defined(__clang__) || __GNUC__ >= 6)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

#define BYTES 32

/* Row functions are always inlined, so that their vectors compile for the target of the clone
   that calls them (a function left out of line is compiled for the default target only). */
#define INLINE static inline __attribute__((always_inline))

#if defined(__clang__)
#define EVEN8(a, b) PAIRS8(__builtin_shufflevector(a, b, 0, 2, 8, 10, 4, 6, 12, 14))
#define ODD8(a, b) PAIRS8(__builtin_shufflevector(a, b, 1, 3, 9, 11, 5, 7, 13, 15))
#define PAIRS8(t) __builtin_shufflevector(t, t, 0, 1, 4, 5, 2, 3, 6, 7)
#define LOW8(a, b) __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11)
#define HIGH8(a, b) __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15)
#define EVEN4(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6)
#define ODD4(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7)
#define LOW4(a, b) __builtin_shufflevector(a, b, 0, 4, 1, 5)
#define HIGH4(a, b) __builtin_shufflevector(a, b, 2, 6, 3, 7)
#else
typedef int32_t i8_t __attribute__((vector_size(BYTES)));
typedef int64_t i4_t __attribute__((vector_size(BYTES)));
#define EVEN8(a, b) PAIRS8(__builtin_shuffle(a, b, (i8_t){0, 2, 8, 10, 4, 6, 12, 14}))
#define ODD8(a, b) PAIRS8(__builtin_shuffle(a, b, (i8_t){1, 3, 9, 11, 5, 7, 13, 15}))
#define PAIRS8(t) __builtin_shuffle(t, (i8_t){0, 1, 4, 5, 2, 3, 6, 7})
#define LOW8(a, b) __builtin_shuffle(a, b, (i8_t){0, 8, 1, 9, 2, 10, 3, 11})
#define HIGH8(a, b) __builtin_shuffle(a, b, (i8_t){4, 12, 5, 13, 6, 14, 7, 15})
#define EVEN4(a, b) __builtin_shuffle(a, b, (i4_t){0, 2, 4, 6})
#define ODD4(a, b) __builtin_shuffle(a, b, (i4_t){1, 3, 5, 7})
#define LOW4(a, b) __builtin_shuffle(a, b, (i4_t){0, 4, 1, 5})
#define HIGH4(a, b) __builtin_shuffle(a, b, (i4_t){2, 6, 3, 7})
#endif

/* The two scratch rows of level l (1 <= l < J, W >> l samples each), after those of the levels
   above: 2 W samples hold every level's. */
#define SCRATCH_ROWS(tmp, W, l) ((tmp) + 2 * ((W) - ((W) >> ((l) - 1))))

/* Unaligned vector stores (loads: S##_ld). */
#define ST(p, v) __builtin_memcpy((p), &(v), sizeof(v))

/* Stores of 32 bytes that bypass the cache (x86; p 16-byte aligned), for an output too large to
   stay there: memory is then written without being read first, as memcpy does for large copies. */
#if defined(__x86_64__)
INLINE void stream_f32(float *p, const void *v) {
  __m128 a, b;
  __builtin_memcpy(&a, v, 16), __builtin_memcpy(&b, (const char *)v + 16, 16);
  _mm_stream_ps(p, a), _mm_stream_ps(p + 4, b);
}
INLINE void stream_f64(double *p, const void *v) {
  __m128d a, b;
  __builtin_memcpy(&a, v, 16), __builtin_memcpy(&b, (const char *)v + 16, 16);
  _mm_stream_pd(p, a), _mm_stream_pd(p + 2, b);
}
#define FENCE() _mm_sfence()
#else
INLINE void stream_f32(float *p, const void *v) { __builtin_memcpy(p, v, 32); }
INLINE void stream_f64(double *p, const void *v) { __builtin_memcpy(p, v, 32); }
#define FENCE() ((void)0)
#endif

/* The kernels for element type T with N lanes per vector, named *_S. */
#define DEFINE(T, S, N, EVEN, ODD, LOW, HIGH)                                                       \
  typedef T S##_v __attribute__((vector_size(BYTES)));                                              \
                                                                                                    \
  INLINE S##_v S##_ld(const T *p) {                                                                 \
    S##_v v;                                                                                        \
    __builtin_memcpy(&v, p, sizeof v);                                                              \
    return v;                                                                                       \
  }                                                                                                 \
                                                                                                    \
  /* two input rows (last stride sw) -> one row of each band (n outputs) */                         \
  INLINE void S##_down_rows(const T *r0, const T *r1, int64_t sw, int64_t n, T *ll, T *lh, T *hl,   \
                            T *hh, T h) {                                                           \
    const T q = 0.5, hq = h * q;                                                                    \
    int64_t j = 0;                                                                                  \
    if (sw == 1)                                                                                    \
      for (; j + N <= n; j += N) {                                                                  \
        const S##_v u0 = S##_ld(r0 + 2 * j), u1 = S##_ld(r0 + 2 * j + N);                           \
        const S##_v v0 = S##_ld(r1 + 2 * j), v1 = S##_ld(r1 + 2 * j + N);                           \
        const S##_v s0 = u0 + v0, s1 = u1 + v1, d0 = u0 - v0, d1 = u1 - v1;                         \
        const S##_v se = EVEN(s0, s1), so = ODD(s0, s1), de = EVEN(d0, d1), dd = ODD(d0, d1);       \
        const S##_v o0 = q * (se + so), o1 = hq * (se - so);                                        \
        const S##_v o2 = hq * (de + dd), o3 = q * (de - dd);                                        \
        ST(ll + j, o0), ST(lh + j, o1), ST(hl + j, o2), ST(hh + j, o3);                             \
      }                                                                                             \
    for (; j < n; j++) {                                                                            \
      const T a = r0[2 * j * sw], b = r0[(2 * j + 1) * sw], c = r1[2 * j * sw],                     \
              d = r1[(2 * j + 1) * sw];                                                             \
      const T se = a + c, so = b + d, de = a - c, dd = b - d;                                       \
      ll[j] = q * (se + so), lh[j] = hq * (se - so), hl[j] = hq * (de + dd), hh[j] = q * (de - dd); \
    }                                                                                               \
  }                                                                                                 \
                                                                                                    \
  /* one row of each band (last strides t[0..3], n inputs) -> two output rows */                    \
  INLINE void S##_up_rows(const T *ll, const T *lh, const T *hl, const T *hh, const int64_t *t,     \
                          int64_t n, T *x0, T *x1, T h, int stream) {                               \
    const T q = 0.5;                                                                                \
    int64_t j = 0;                                                                                  \
    /* a band of last stride 0 (a broadcast, as the gradient of a sum) holds one value per row */   \
    if (n >= N && (t[0] | t[1] | t[2] | t[3]) <= 1) { /* every last stride 0 or 1 */                \
      const S##_v k0 = ll[0] + (S##_v){0}, k1 = lh[0] + (S##_v){0};                                 \
      const S##_v k2 = hl[0] + (S##_v){0}, k3 = hh[0] + (S##_v){0};                                 \
      for (; j + N <= n; j += N) {                                                                  \
        const S##_v c0 = t[0] ? S##_ld(ll + j) : k0;                                                \
        S##_v c1 = t[1] ? S##_ld(lh + j) : k1, c2 = t[2] ? S##_ld(hl + j) : k2;                     \
        const S##_v c3 = t[3] ? S##_ld(hh + j) : k3;                                                \
        c1 = h * c1, c2 = h * c2;                                                                   \
        const S##_v u = c0 + c1, v = c0 - c1, w = c2 + c3, z = c2 - c3;                             \
        const S##_v te = q * (u + w), to = q * (v + z), ue = q * (u - w), uo = q * (v - z);         \
        const S##_v y0 = LOW(te, to), y1 = HIGH(te, to), z0 = LOW(ue, uo), z1 = HIGH(ue, uo);       \
        if (stream) {                                                                               \
          stream_##S(x0 + 2 * j, &y0), stream_##S(x0 + 2 * j + N, &y1);                             \
          stream_##S(x1 + 2 * j, &z0), stream_##S(x1 + 2 * j + N, &z1);                             \
        } else {                                                                                    \
          ST(x0 + 2 * j, y0), ST(x0 + 2 * j + N, y1), ST(x1 + 2 * j, z0), ST(x1 + 2 * j + N, z1);   \
        }                                                                                           \
      }                                                                                             \
    }                                                                                               \
    for (; j < n; j++) {                                                                            \
      const T c0 = ll[j * t[0]], c1 = h * lh[j * t[1]], c2 = h * hl[j * t[2]], c3 = hh[j * t[3]];   \
      const T u = c0 + c1, v = c0 - c1, w = c2 + c3, z = c2 - c3;                                   \
      x0[2 * j] = q * (u + w), x0[2 * j + 1] = q * (v + z);                                         \
      x1[2 * j] = q * (u - w), x1[2 * j + 1] = q * (v - z);                                         \
    }                                                                                               \
  }                                                                                                 \
                                                                                                    \
  typedef struct {                                                                                  \
    const T *x;                                                                                     \
    const int64_t *xs;                                                                              \
    T *const *y;       /* level j's bands LL, LH, HL, HH at y[4 (j - 1) ..] */                      \
    const int64_t *ys; /* their batch stride, at ys[j - 1] */                                       \
    int64_t b, H, W;   /* the batch entry of this tile, the input's size */                         \
    T *tmp;            /* this thread's scratch rows (SCRATCH_ROWS) */                              \
    T h;                                                                                            \
  } S##_down_ctx;                                                                                   \
                                                                                                    \
  /* row r of level j's bands, its LL into ll; reads rows 2r, 2r+1 of level j - 1's LL */           \
  CLONES static void S##_down_level(const S##_down_ctx *c, int j, int64_t r, T *ll) {               \
    const int64_t n2 = c->W >> j;                                                                   \
    T *const *y = c->y + 4 * (j - 1);                                                               \
    const int64_t o = c->b * c->ys[j - 1] + r * n2;                                                 \
    const T *r0, *r1;                                                                               \
    int64_t sw = 1;                                                                                 \
    if (j == 1) {                                                                                   \
      r0 = c->x + c->b * c->xs[0] + 2 * r * c->xs[1], r1 = r0 + c->xs[1], sw = c->xs[2];            \
    } else {                                                                                        \
      T *t0 = SCRATCH_ROWS(c->tmp, c->W, j - 1), *t1 = t0 + (c->W >> (j - 1));                      \
      S##_down_level(c, j - 1, 2 * r, t0);                                                          \
      S##_down_level(c, j - 1, 2 * r + 1, t1);                                                      \
      r0 = t0, r1 = t1;                                                                             \
    }                                                                                               \
    S##_down_rows(r0, r1, sw, n2, ll, y[1] + o, y[2] + o, y[3] + o, c->h);                          \
  }                                                                                                 \
                                                                                                    \
  /* scratch: 2 W elements per thread */                                                            \
  CLONES void subband_haar2_wavedec_##S(const T *x, const int64_t *xs, int64_t B, int64_t H,        \
                                        int64_t W, int J, T *const *y, const int64_t *ys, int h,    \
                                        T *scratch, int threads) {                                  \
    const int64_t rows = H >> J;                                                                    \
    _Pragma("omp parallel num_threads(threads)") {                                                  \
      S##_down_ctx c = {x, xs, y, ys, 0, H, W, scratch + 2 * W * THREAD, (T)h};                     \
      _Pragma("omp for schedule(static)") for (int64_t r = 0; r < B * rows; r++) {                  \
        c.b = r / rows;                                                                             \
        S##_down_level(&c, J, r % rows, y[4 * (J - 1)] + c.b * ys[J - 1] + (r % rows) * (W >> J));  \
      }                                                                                             \
    }                                                                                               \
  }                                                                                                 \
                                                                                                    \
  typedef struct {                                                                                  \
    const T *const *p; /* level j's bands LL, LH, HL, HH at p[4 (j - 1) ..] */                      \
    const int64_t *s;  /* their strides (batch, row, column), at s[12 (j - 1) ..] */                \
    T *x;                                                                                           \
    int64_t b, H, W;                                                                                \
    T *tmp;                                                                                         \
    T h;                                                                                            \
    int stream; /* write x with streaming stores */                                                 \
  } S##_up_ctx;                                                                                     \
                                                                                                    \
  /* rows 2r, 2r+1 of level j - 1's LL (of x for j = 1) from row r of level j's LL (ll, last        \
     stride lls) and details */                                                                     \
  CLONES static void S##_up_level(const S##_up_ctx *c, int j, int64_t r, const T *ll,              \
                                  int64_t lls) {                                                    \
    const T *const *p = c->p + 4 * (j - 1);                                                         \
    const int64_t *s = c->s + 12 * (j - 1), n2 = c->W >> j;                                         \
    const T *lh = p[1] + c->b * s[3] + r * s[4], *hl = p[2] + c->b * s[6] + r * s[7];               \
    const T *hh = p[3] + c->b * s[9] + r * s[10];                                                   \
    const int64_t t[4] = {lls, s[5], s[8], s[11]};                                                  \
    if (j == 1) {                                                                                   \
      T *x0 = c->x + (c->b * c->H + 2 * r) * c->W;                                                  \
      S##_up_rows(ll, lh, hl, hh, t, n2, x0, x0 + c->W, c->h, c->stream);                           \
      return;                                                                                       \
    }                                                                                               \
    T *t0 = SCRATCH_ROWS(c->tmp, c->W, j - 1), *t1 = t0 + (c->W >> (j - 1));                        \
    S##_up_rows(ll, lh, hl, hh, t, n2, t0, t1, c->h, 0);                                            \
    S##_up_level(c, j - 1, 2 * r, t0, 1);                                                           \
    S##_up_level(c, j - 1, 2 * r + 1, t1, 1);                                                       \
  }                                                                                                 \
                                                                                                    \
  /* stream: write x with streaming stores (taken where x and its rows are 16-byte aligned) */      \
  CLONES void subband_haar2_waverec_##S(const T *const *p, const int64_t *s, int64_t B, int64_t H,  \
                                        int64_t W, int J, T *x, int h, T *scratch, int threads,     \
                                        int stream) {                                               \
    const int64_t rows = H >> J, *sJ = s + 12 * (J - 1);                                            \
    stream = stream && (uintptr_t)x % 16 == 0 && W * sizeof(T) % 16 == 0;                           \
    _Pragma("omp parallel num_threads(threads)") {                                                  \
      S##_up_ctx c = {p, s, x, 0, H, W, scratch + 2 * W * THREAD, (T)h, stream};                    \
      _Pragma("omp for schedule(static)") for (int64_t r = 0; r < B * rows; r++) {                  \
        c.b = r / rows;                                                                             \
        const T *ll = p[4 * (J - 1)] + c.b * sJ[0] + (r % rows) * sJ[1];                            \
        S##_up_level(&c, J, r % rows, ll, sJ[2]);                                                   \
      }                                                                                             \
      if (stream) FENCE(); /* streaming stores are weakly ordered: done before the caller reads */  \
    }                                                                                               \
  }

DEFINE(float, f32, 8, EVEN8, ODD8, LOW8, HIGH8)
DEFINE(double, f64, 4, EVEN4, ODD4, LOW4, HIGH4)

/* One level of the 2-D (and 1-D) transform with any pair of filters of F = 2L taps, on an input
   that already holds its boundary extension (subband.wavelets._core extends it first). In 1-D
   each row is split into its even and odd samples, then takes the row taps below.

   analysis:  x (B, Hp, Wp), any strides  ->  the bands (B, m, n), m = (Hp - F) / 2 + 1 and
              n = (Wp - F) / 2 + 1 (rounded down), band 2 bh + bw correlated with filter bh along
              the rows' axis and bw along the columns': y[i][j] = sum_k,l f[bh][k] f[bw][l]
              x[2i + k][2j + l]. Per output row, the F input rows are first filtered down the
              columns into two rows, each split into its even and odd columns (the one shuffle);
              the taps along the row then read those at shifted offsets.
   synthesis: the four bands (B, M, N), any strides, extended  ->  x (B, 2m, 2n), contiguous,
              m = M - L + 1, n = N - L + 1: x[2i + p][2j + q] = sum h[p][bh][k] h[q][bw][l]
              c[2 bh + bw][i + k][j + l] with the polyphase taps h (2 phases, 2 bands, L). Per pair
              of output rows, the bands' L rows are combined down the columns into four rows
              (column band x row phase), then along the rows, whose two phases are interleaved as
              they are stored. */

#define DEFINE_BANK(T, S, N, EVEN, ODD, LOW, HIGH)                                                  \
  /* ya, yb = rows e (even) and o (odd) correlated with the taps f0, f1 (2L each), n outputs */     \
  INLINE void S##_bank_row(const T *e, const T *o, const T *f0, const T *f1, int L, int64_t n,      \
                           T *ya, T *yb) {                                                          \
    int64_t j = 0;                                                                                  \
    for (; j + N <= n; j += N) {                                                                    \
      S##_v a = {0}, b = {0};                                                                       \
      for (int t = 0; t < L; t++) {                                                                 \
        const S##_v u = S##_ld(e + j + t), v = S##_ld(o + j + t);                                   \
        a += f0[2 * t] * u + f0[2 * t + 1] * v, b += f1[2 * t] * u + f1[2 * t + 1] * v;             \
      }                                                                                             \
      ST(ya + j, a), ST(yb + j, b);                                                                 \
    }                                                                                               \
    for (; j < n; j++) {                                                                            \
      T a = 0, b = 0;                                                                               \
      for (int t = 0; t < L; t++) {                                                                 \
        const T u = e[j + t], v = o[j + t];                                                         \
        a += f0[2 * t] * u + f0[2 * t + 1] * v, b += f1[2 * t] * u + f1[2 * t + 1] * v;             \
      }                                                                                             \
      ya[j] = a, yb[j] = b;                                                                         \
    }                                                                                               \
  }                                                                                                 \
                                                                                                    \
  /* one output row of the four bands from the F input rows at x (row stride rs, column stride     \
     sw); tmp: 4 (Wp / 2) elements */                                                              \
  CLONES static void S##_bank_down_row(const T *x, int64_t rs, int64_t sw, int64_t Wp, const T *f,  \
                                       int L, T *tmp, int64_t n, T *const *y) {                     \
    const int64_t half = Wp / 2;                                                                    \
    const T *f0 = f, *f1 = f + 2 * L;                                                               \
    T *le = tmp, *lo = tmp + half, *he = tmp + 2 * half, *ho = tmp + 3 * half;                      \
    int64_t w = 0;                                                                                  \
    if (sw == 1)                                                                                    \
      for (; w + 2 * N <= 2 * half; w += 2 * N) {                                                   \
        S##_v a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};                                               \
        for (int k = 0; k < 2 * L; k++) {                                                           \
          const S##_v u0 = S##_ld(x + k * rs + w), u1 = S##_ld(x + k * rs + w + N);                 \
          a0 += f0[k] * u0, a1 += f0[k] * u1, b0 += f1[k] * u0, b1 += f1[k] * u1;                   \
        }                                                                                           \
        const S##_v e0 = EVEN(a0, a1), o0 = ODD(a0, a1), e1 = EVEN(b0, b1), o1 = ODD(b0, b1);       \
        ST(le + w / 2, e0), ST(lo + w / 2, o0), ST(he + w / 2, e1), ST(ho + w / 2, o1);             \
      }                                                                                             \
    for (; w < 2 * half; w++) {                                                                     \
      T a = 0, b = 0;                                                                               \
      for (int k = 0; k < 2 * L; k++) {                                                             \
        const T v = x[k * rs + w * sw];                                                             \
        a += f0[k] * v, b += f1[k] * v;                                                             \
      }                                                                                             \
      if (w & 1)                                                                                    \
        lo[w / 2] = a, ho[w / 2] = b;                                                               \
      else                                                                                          \
        le[w / 2] = a, he[w / 2] = b;                                                               \
    }                                                                                               \
    S##_bank_row(le, lo, f0, f1, L, n, y[0], y[1]);                                                 \
    S##_bank_row(he, ho, f0, f1, L, n, y[2], y[3]);                                                 \
  }                                                                                                 \
                                                                                                    \
  /* f: the two filters (2, 2L); y: the four bands, contiguous rows, batch stride ys; scratch:      \
     4 (Wp / 2) elements per thread */                                                              \
  CLONES void subband_bank2_down_##S(const T *x, const int64_t *xs, int64_t B, int64_t Hp,          \
                                     int64_t Wp, const T *f, int L, T *const *y, int64_t ys,        \
                                     T *scratch, int threads) {                                     \
    const int64_t m = (Hp - 2 * L) / 2 + 1, n = (Wp - 2 * L) / 2 + 1;                               \
    _Pragma("omp parallel for schedule(static) num_threads(threads)") for (int64_t r = 0;           \
                                                                           r < B * m; r++) {        \
      const int64_t b = r / m, i = r % m, o = b * ys + i * n;                                       \
      T *const rows[4] = {y[0] + o, y[1] + o, y[2] + o, y[3] + o};                                  \
      S##_bank_down_row(x + b * xs[0] + 2 * i * xs[1], xs[1], xs[2], Wp, f, L,                      \
                        scratch + 4 * (Wp / 2) * THREAD, n, rows);                                  \
    }                                                                                               \
  }                                                                                                 \
                                                                                                    \
  /* the synthesis along a row from its two bands v0, v1 (contiguous): 2n outputs, interleaved */  \
  INLINE void S##_bank_up_row(const T *v0, const T *v1, const T *h, int L, int64_t n, T *out) {    \
    int64_t j = 0;                                                                                  \
    for (; j + N <= n; j += N) {                                                                    \
      S##_v a = {0}, b = {0};                                                                       \
      for (int k = 0; k < L; k++) {                                                                 \
        const S##_v u = S##_ld(v0 + j + k), z = S##_ld(v1 + j + k);                                 \
        a += h[k] * u + h[L + k] * z, b += h[2 * L + k] * u + h[3 * L + k] * z;                     \
      }                                                                                             \
      const S##_v lo = LOW(a, b), hi = HIGH(a, b);                                                  \
      ST(out + 2 * j, lo), ST(out + 2 * j + N, hi);                                                 \
    }                                                                                               \
    for (; j < n; j++) {                                                                            \
      T a = 0, b = 0;                                                                               \
      for (int k = 0; k < L; k++) {                                                                 \
        const T u = v0[j + k], z = v1[j + k];                                                       \
        a += h[k] * u + h[L + k] * z, b += h[2 * L + k] * u + h[3 * L + k] * z;                     \
      }                                                                                             \
      out[2 * j] = a, out[2 * j + 1] = b;                                                           \
    }                                                                                               \
  }                                                                                                 \
                                                                                                    \
  /* two output rows (x0, x1) from rows i .. i + L - 1 of the bands at c[0..3] (row strides rs,     \
     column strides cs: 0 or 1 take vectors); tmp: 4 N elements */                                  \
  CLONES static void S##_bank_up_rows(const T *const *c, const int64_t *rs, const int64_t *cs,      \
                                      int64_t N_, const T *h, int L, T *tmp, int64_t n, T *x0,      \
                                      T *x1) {                                                      \
    /* h[(p * 2 + b) * L + k]; v[(bw * 2 + p) * N_ + w] */                                          \
    T *v = tmp;                                                                                     \
    int64_t w = 0;                                                                                  \
    if ((cs[0] | cs[1] | cs[2] | cs[3]) <= 1)                                                       \
      for (; w + N <= N_; w += N) {                                                                 \
        for (int bw = 0; bw < 2; bw++) {                                                            \
          S##_v a = {0}, b = {0};                                                                   \
          for (int bh = 0; bh < 2; bh++) {                                                          \
            const T *p = c[2 * bh + bw];                                                            \
            const int64_t s = rs[2 * bh + bw], t = cs[2 * bh + bw];                                 \
            for (int k = 0; k < L; k++) {                                                           \
              const S##_v u = t ? S##_ld(p + k * s + w) : p[k * s] + (S##_v){0};                    \
              a += h[bh * L + k] * u, b += h[(2 + bh) * L + k] * u;                                 \
            }                                                                                       \
          }                                                                                         \
          ST(v + (2 * bw) * N_ + w, a), ST(v + (2 * bw + 1) * N_ + w, b);                           \
        }                                                                                           \
      }                                                                                             \
    for (; w < N_; w++)                                                                             \
      for (int bw = 0; bw < 2; bw++) {                                                              \
        T a = 0, b = 0;                                                                             \
        for (int bh = 0; bh < 2; bh++)                                                              \
          for (int k = 0; k < L; k++) {                                                             \
            const T u = c[2 * bh + bw][k * rs[2 * bh + bw] + w * cs[2 * bh + bw]];                  \
            a += h[bh * L + k] * u, b += h[(2 + bh) * L + k] * u;                                   \
          }                                                                                         \
        v[(2 * bw) * N_ + w] = a, v[(2 * bw + 1) * N_ + w] = b;                                     \
      }                                                                                             \
    /* column bands 0, 1 in row phase p */                                                         \
    S##_bank_up_row(v, v + 2 * N_, h, L, n, x0);                                                    \
    S##_bank_up_row(v + N_, v + 3 * N_, h, L, n, x1);                                               \
  }                                                                                                 \
                                                                                                    \
  /* c: the four bands, their strides s (batch, row, column each); h: the polyphase taps            \
     (2, 2, L); x (B, 2m, 2n) contiguous; scratch: 4 N elements per thread */                       \
  CLONES void subband_bank2_up_##S(const T *const *c, const int64_t *s, int64_t B, int64_t M,       \
                                   int64_t N_, const T *h, int L, T *x, T *scratch, int threads) {  \
    const int64_t m = M - L + 1, n = N_ - L + 1;                                                    \
    const int64_t rs[4] = {s[1], s[4], s[7], s[10]}, cs[4] = {s[2], s[5], s[8], s[11]};            \
    _Pragma("omp parallel for schedule(static) num_threads(threads)") for (int64_t r = 0;           \
                                                                           r < B * m; r++) {        \
      const int64_t b = r / m, i = r % m;                                                           \
      const T *rows[4];                                                                             \
      for (int k = 0; k < 4; k++) rows[k] = c[k] + b * s[3 * k] + i * s[3 * k + 1];                 \
      T *x0 = x + (b * 2 * m + 2 * i) * 2 * n;                                                      \
      S##_bank_up_rows(rows, rs, cs, N_, h, L, scratch + 4 * N_ * THREAD, n, x0, x0 + 2 * n);       \
    }                                                                                               \
  }                                                                                                 \
                                                                                                    \
  /* 1-D: x (B, Np), any strides, extended -> the two bands (B, n), n = (Np - F) / 2 + 1,          \
     contiguous rows, batch stride ys; scratch: 2 (Np / 2) elements per thread */                   \
  CLONES void subband_bank1_down_##S(const T *x, const int64_t *xs, int64_t B, int64_t Np,          \
                                     const T *f, int L, T *const *y, int64_t ys, T *scratch,        \
                                     int threads) {                                                 \
    const int64_t half = Np / 2, n = (Np - 2 * L) / 2 + 1;                                          \
    _Pragma("omp parallel for schedule(static) num_threads(threads)") for (int64_t b = 0; b < B;    \
                                                                           b++) {                   \
      const T *r = x + b * xs[0];                                                                   \
      T *e = scratch + 2 * half * THREAD, *o = e + half;                                            \
      int64_t j = 0;                                                                                \
      if (xs[1] == 1)                                                                               \
        for (; j + N <= half; j += N) {                                                             \
          const S##_v u0 = S##_ld(r + 2 * j), u1 = S##_ld(r + 2 * j + N);                           \
          const S##_v ev = EVEN(u0, u1), od = ODD(u0, u1);                                          \
          ST(e + j, ev), ST(o + j, od);                                                             \
        }                                                                                           \
      for (; j < half; j++) e[j] = r[2 * j * xs[1]], o[j] = r[(2 * j + 1) * xs[1]];                 \
      S##_bank_row(e, o, f, f + 2 * L, L, n, y[0] + b * ys, y[1] + b * ys);                         \
    }                                                                                               \
  }                                                                                                 \
                                                                                                    \
  /* 1-D: the two bands (B, M), strides s (batch, column each) -> x (B, 2n), n = M - L + 1,        \
     contiguous; scratch: 2 M elements per thread (for bands whose column stride is not 1) */       \
  CLONES void subband_bank1_up_##S(const T *const *c, const int64_t *s, int64_t B, int64_t M,       \
                                   const T *h, int L, T *x, T *scratch, int threads) {              \
    const int64_t n = M - L + 1;                                                                    \
    _Pragma("omp parallel for schedule(static) num_threads(threads)") for (int64_t b = 0; b < B;    \
                                                                           b++) {                   \
      const T *v[2];                                                                                \
      for (int k = 0; k < 2; k++) {                                                                 \
        const T *r = c[k] + b * s[2 * k];                                                           \
        if (s[2 * k + 1] == 1) {                                                                    \
          v[k] = r;                                                                                 \
        } else {                                                                                    \
          T *t = scratch + (2 * THREAD + k) * M;                                                    \
          for (int64_t j = 0; j < M; j++) t[j] = r[j * s[2 * k + 1]];                               \
          v[k] = t;                                                                                 \
        }                                                                                           \
      }                                                                                             \
      S##_bank_up_row(v[0], v[1], h, L, n, x + b * 2 * n);                                          \
    }                                                                                               \
  }

DEFINE_BANK(float, f32, 8, EVEN8, ODD8, LOW8, HIGH8)
DEFINE_BANK(double, f64, 4, EVEN4, ODD4, LOW4, HIGH4)
