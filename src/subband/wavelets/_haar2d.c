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
