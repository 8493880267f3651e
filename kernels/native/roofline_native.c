/*
 * This project's own native CPU kernels (see kernels/native/__init__.py): what the silicon and the memory can do
 * without a BLAS or torch in between. Built at run time with the system compiler (-O3 -march=native -fopenmp),
 * cached by source hash, flags and CPU, loaded through ctypes, run on as many OpenMP threads as torch uses.
 *
 *   rn_fma_f32 / rn_fma_f64   register-only fused multiply-adds: ACC independent vector chains x = x*m + a per
 *                             thread, no memory traffic; FLOPs = 2 x lanes x ACC x iterations x threads
 *   rn_copy, rn_triad         STREAM kernels with ordinary (cached) stores
 *   rn_copy_nt, rn_triad_nt   the same with non-temporal stores (no read-for-ownership of the destination)
 *   rn_fill_nt                a = v with non-temporal stores
 *   rn_read                   s = sum(a), vectorised, 8 independent vector sums
 *   rn_memcpy                 glibc memcpy, one chunk per thread
 *   (every stream kernel takes `reps`: passes per call, each thread over its own chunk each time)
 *
 * Arrays are double, 64-byte aligned by the caller; each thread's chunk is peeled to a 64-byte boundary before
 * vector non-temporal stores. rn_isa() says which vector path was compiled.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <omp.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define RN_ISA "avx512f"
#define RN_VEC_BYTES 64
#define RN_ACC 24 /* 32 vector registers: 24 chains + constants */
#elif defined(__AVX__)
#define RN_ISA "avx2/avx"
#define RN_VEC_BYTES 32
#define RN_ACC 10 /* 16 vector registers: 10 chains (enough for latency 5 x 2 pipes) + constants, no spills */
#elif defined(__aarch64__)
#define RN_ISA "aarch64 NEON (128-bit)"
#define RN_VEC_BYTES 16
#define RN_ACC 24 /* 32 vector registers: 4 FMA pipes (Neoverse V2) x latency 4 need 16 chains in flight */
#else
#define RN_ISA "generic vector extensions"
#define RN_VEC_BYTES 16
#define RN_ACC 12
#endif

typedef float vf __attribute__((vector_size(RN_VEC_BYTES)));
typedef double vd __attribute__((vector_size(RN_VEC_BYTES)));

const char *rn_isa(void) { return RN_ISA; }
int rn_vector_bytes(void) { return RN_VEC_BYTES; }
int rn_accumulators(void) { return RN_ACC; }
int rn_nt_stores(void) {
#if defined(__AVX512F__) || defined(__AVX__) || defined(__SSE2__)
    return 1;
#else
    return 0;
#endif
}

/* The step of every chain. x86 FMA has a three-operand form for x = x*m + a (a converging recurrence). Arm's FMLA
 * accumulates into its destination (d += a*b), so x*m + a costs it two register moves per FMA: there each iteration
 * is x += x*h then x -= x*h with h = 2^-11 (in place, FMLA then FMLS; x*h is exact, so a replay with separate
 * multiply and add rounds the same), two FMAs per iteration (rn_fma_per_iteration) slowly decaying by (1 - h^2). */
#if defined(__aarch64__)
#define RN_FMA_FORM 1
#define RN_FMA_STEP(acc, vm, va)                                                                      \
    {                                                                                                 \
        const __typeof__(acc[0]) vh = (vm - vm) + 0x1p-11;                                            \
        _Pragma("GCC unroll 64") for (int c = 0; c < RN_ACC; c++) acc[c] = acc[c] + acc[c] * vh;      \
        _Pragma("GCC unroll 64") for (int c = 0; c < RN_ACC; c++) acc[c] = acc[c] - acc[c] * vh;      \
    }
#else
#define RN_FMA_FORM 0
#define RN_FMA_STEP(acc, vm, va)                                                                      \
    _Pragma("GCC unroll 64") for (int c = 0; c < RN_ACC; c++) acc[c] = acc[c] * vm + va;
#endif
int rn_fma_form(void) { return RN_FMA_FORM; }
int rn_fma_per_iteration(void) { return RN_FMA_FORM ? 2 : 1; }

/* out[t * RN_ACC * lanes + ...]: every lane of every chain of every thread, for the caller's check. The chains
 * start at x0 + 0.001 * (chain index), so no two are the same computation the compiler could merge. */
#define FMA_BODY(VT, ST, OUT)                                                                         \
    const int lanes = RN_VEC_BYTES / (int)sizeof(ST);                                                 \
    omp_set_num_threads(threads);                                                                     \
    _Pragma("omp parallel")                                                                           \
    {                                                                                                 \
        int t = omp_get_thread_num();                                                                 \
        VT acc[RN_ACC];                                                                               \
        const VT zero = {0};                                                                          \
        const VT vm = zero + (ST)m, va = zero + (ST)a; /* broadcasts: kept in registers */            \
        for (int c = 0; c < RN_ACC; c++) acc[c] = zero + (ST)(x0 + 0.001 * c);                        \
        for (long i = 0; i < iterations; i++) {                                                       \
            RN_FMA_STEP(acc, vm, va)                                                                  \
        }                                                                                             \
        if (t < max_threads)                                                                          \
            for (int c = 0; c < RN_ACC; c++)                                                          \
                for (int l = 0; l < lanes; l++) OUT[((long)t * RN_ACC + c) * lanes + l] = acc[c][l];   \
    }

void rn_fma_f32(long iterations, double x0, double m, double a, int threads, int max_threads, float *out) {
    FMA_BODY(vf, float, out)
}

void rn_fma_f64(long iterations, double x0, double m, double a, int threads, int max_threads, double *out) {
    FMA_BODY(vd, double, out)
}

/* the [lo, hi) chunk of n for this thread */
static void chunk(long n, long *lo, long *hi) {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    long per = (n + nt - 1) / nt;
    *lo = t * per;
    *hi = *lo + per < n ? *lo + per : n;
    if (*lo > n) *lo = n;
}

/* Every stream kernel runs `reps` passes in one call, each thread over its own chunk every time (so a working set
 * that fits a core's private cache stays there, and one call outlasts the OpenMP fork/join). The empty asm with a
 * memory clobber between passes keeps the compiler from merging passes that store the same values. */
#define BARRIER() __asm__ volatile("" ::: "memory")

void rn_copy(const double *a, double *c, long n, long reps, int threads) {
    omp_set_num_threads(threads);
#pragma omp parallel
    {
        long lo, hi;
        chunk(n, &lo, &hi);
        for (long r = 0; r < reps; r++) {
#pragma omp simd
            for (long i = lo; i < hi; i++) c[i] = a[i];
            BARRIER();
        }
    }
}

void rn_triad(double *a, const double *b, const double *c, double q, long n, long reps, int threads) {
    omp_set_num_threads(threads);
#pragma omp parallel
    {
        long lo, hi;
        chunk(n, &lo, &hi);
        for (long r = 0; r < reps; r++) {
#pragma omp simd
            for (long i = lo; i < hi; i++) a[i] = b[i] + q * c[i];
            BARRIER();
        }
    }
}

/* unaligned vector loads (a thread's chunk need not start on a vector boundary; on aligned data they cost the
 * same), and RN_READ_ACC independent vector sums: one sum (what `omp simd reduction` gives) waits the add's latency
 * (3-4 cycles) per vector and reads ~27 GB/s from L1 on a 2-core Zen VM; two loads a cycle need ~8 sums in flight */
typedef double vdu __attribute__((vector_size(RN_VEC_BYTES), aligned(8)));
#define RN_READ_ACC 8

double rn_read(const double *a, long n, long reps, int threads) {
    double total = 0.0;
    omp_set_num_threads(threads);
#pragma omp parallel reduction(+ : total)
    {
        long lo, hi;
        chunk(n, &lo, &hi);
        const long w = RN_VEC_BYTES / (long)sizeof(double), step = RN_READ_ACC * w;
        for (long r = 0; r < reps; r++) {
            const vd zero = {0};
            vd acc[RN_READ_ACC];
            for (int k = 0; k < RN_READ_ACC; k++) acc[k] = zero;
            long i = lo;
            for (; i + step <= hi; i += step) {
                _Pragma("GCC unroll 8")
                for (int k = 0; k < RN_READ_ACC; k++) acc[k] += *(const vdu *)(a + i + k * w);
            }
            double s = 0.0;
            for (; i < hi; i++) s += a[i];
            for (int k = 0; k < RN_READ_ACC; k++)
                for (long l = 0; l < w; l++) s += acc[k][l];
            total += s;
            BARRIER();
        }
    }
    return total;
}

void rn_memcpy(const double *a, double *c, long n, long reps, int threads) {
    omp_set_num_threads(threads);
#pragma omp parallel
    {
        long lo, hi;
        chunk(n, &lo, &hi);
        for (long r = 0; r < reps; r++) {
            if (hi > lo) memcpy(c + lo, a + lo, (size_t)(hi - lo) * sizeof(double));
            BARRIER();
        }
    }
}

/* Non-temporal stores: scalar head up to a 64-byte boundary, vector streaming stores, scalar tail; a fence so the
 * stores are visible when the call returns. Without an x86 vector ISA these are ordinary stores (rn_nt_stores()
 * says 0 and the caller reports the NT kernels as missing). */
#if defined(__AVX512F__)
#define NT_STEP 8
#define NT_STORE(p, v) _mm512_stream_pd((p), (v))
#define NT_LOAD(p) _mm512_loadu_pd(p)
#define NT_SET1(x) _mm512_set1_pd(x)
#define NT_FMA(x, q, y) _mm512_fmadd_pd((q), (y), (x))
#define NT_T __m512d
#elif defined(__AVX__)
#define NT_STEP 4
#define NT_STORE(p, v) _mm256_stream_pd((p), (v))
#define NT_LOAD(p) _mm256_loadu_pd(p)
#define NT_SET1(x) _mm256_set1_pd(x)
#define NT_FMA(x, q, y) _mm256_add_pd((x), _mm256_mul_pd((q), (y)))
#define NT_T __m256d
#elif defined(__SSE2__)
#define NT_STEP 2
#define NT_STORE(p, v) _mm_stream_pd((p), (v))
#define NT_LOAD(p) _mm_loadu_pd(p)
#define NT_SET1(x) _mm_set1_pd(x)
#define NT_FMA(x, q, y) _mm_add_pd((x), _mm_mul_pd((q), (y)))
#define NT_T __m128d
#endif

void rn_copy_nt(const double *a, double *c, long n, long reps, int threads) {
    omp_set_num_threads(threads);
#pragma omp parallel
    {
        long lo, hi;
        chunk(n, &lo, &hi);
        for (long r = 0; r < reps; r++) {
            long i = lo;
#ifdef NT_STEP
            for (; i < hi && ((uintptr_t)(c + i) & 63); i++) c[i] = a[i];
            for (; i + NT_STEP <= hi; i += NT_STEP) NT_STORE(c + i, NT_LOAD(a + i));
#endif
            for (; i < hi; i++) c[i] = a[i];
            BARRIER();
        }
    }
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

void rn_triad_nt(double *a, const double *b, const double *c, double q, long n, long reps, int threads) {
    omp_set_num_threads(threads);
#pragma omp parallel
    {
        long lo, hi;
        chunk(n, &lo, &hi);
        for (long r = 0; r < reps; r++) {
            long i = lo;
#ifdef NT_STEP
            NT_T vq = NT_SET1(q);
            for (; i < hi && ((uintptr_t)(a + i) & 63); i++) a[i] = b[i] + q * c[i];
            for (; i + NT_STEP <= hi; i += NT_STEP) NT_STORE(a + i, NT_FMA(NT_LOAD(b + i), vq, NT_LOAD(c + i)));
#endif
            for (; i < hi; i++) a[i] = b[i] + q * c[i];
            BARRIER();
        }
    }
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

void rn_fill_nt(double *a, double v, long n, long reps, int threads) {
    omp_set_num_threads(threads);
#pragma omp parallel
    {
        long lo, hi;
        chunk(n, &lo, &hi);
        for (long r = 0; r < reps; r++) {
            long i = lo;
#ifdef NT_STEP
            NT_T vv = NT_SET1(v);
            for (; i < hi && ((uintptr_t)(a + i) & 63); i++) a[i] = v;
            for (; i + NT_STEP <= hi; i += NT_STEP) NT_STORE(a + i, vv);
#endif
            for (; i < hi; i++) a[i] = v;
            BARRIER();
        }
    }
#if defined(__SSE2__)
    _mm_sfence();
#endif
}
