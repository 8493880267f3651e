/* An independent register-only FMA reference (written for this project's check, not the suite's kernel): 16 zmm (or
 * ymm) accumulators per thread, explicit _mm*_fmadd intrinsics, OpenMP. Prints the best GFLOP/s of REPS calls per
 * dtype. Build: gcc -O3 -march=native -fopenmp tools/fma_ref.c -o /tmp/fma_ref; run: /tmp/fma_ref [iterations] [reps]
 * Used by tools/check_silicon.py to judge the suite's silicon figures (>= 0.95x of this, measured interleaved). */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__AVX512F__)
#define W 16
#define VS __m512
#define VD __m512d
#define SET1S _mm512_set1_ps
#define SET1D _mm512_set1_pd
#define FMAS _mm512_fmadd_ps
#define FMAD _mm512_fmadd_pd
#define RED_S(v) _mm512_reduce_add_ps(v)
#define RED_D(v) _mm512_reduce_add_pd(v)
#else
#define W 8
#define VS __m256
#define VD __m256d
#define SET1S _mm256_set1_ps
#define SET1D _mm256_set1_pd
#define FMAS _mm256_fmadd_ps
#define FMAD _mm256_fmadd_pd
static float RED_S(__m256 v) { float t[8]; _mm256_storeu_ps(t, v); float s = 0; for (int i = 0; i < 8; i++) s += t[i]; return s; }
static double RED_D(__m256d v) { double t[4]; _mm256_storeu_pd(t, v); double s = 0; for (int i = 0; i < 4; i++) s += t[i]; return s; }
#endif
#define K 16

static double run_s(long n, double *sink) {
    double t = omp_get_wtime(), total = 0;
#pragma omp parallel reduction(+ : total)
    {
        VS a[K], m = SET1S(0.9999f), c = SET1S(1e-4f);
        for (int k = 0; k < K; k++) a[k] = SET1S(0.5f + 0.001f * k);
        for (long i = 0; i < n; i++)
#pragma GCC unroll 16
            for (int k = 0; k < K; k++) a[k] = FMAS(a[k], m, c);
        for (int k = 0; k < K; k++) total += RED_S(a[k]);
    }
    *sink += total;
    return omp_get_wtime() - t;
}

static double run_d(long n, double *sink) {
    double t = omp_get_wtime(), total = 0;
#pragma omp parallel reduction(+ : total)
    {
        VD a[K], m = SET1D(0.9999), c = SET1D(1e-4);
        for (int k = 0; k < K; k++) a[k] = SET1D(0.5 + 0.001 * k);
        for (long i = 0; i < n; i++)
#pragma GCC unroll 16
            for (int k = 0; k < K; k++) a[k] = FMAD(a[k], m, c);
        for (int k = 0; k < K; k++) total += RED_D(a[k]);
    }
    *sink += total;
    return omp_get_wtime() - t;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1L << 21;
    int reps = argc > 2 ? atoi(argv[2]) : 10, threads = omp_get_max_threads();
    double sink = 0, bs = 1e30, bd = 1e30;
    for (int r = 0; r < reps; r++) {
        double s = run_s(n, &sink), d = run_d(n, &sink);
        if (s < bs) bs = s;
        if (d < bd) bd = d;
    }
    printf("fp32 %.1f GFLOP/s\nfp64 %.1f GFLOP/s\nthreads %d sink %g\n", 2.0 * K * W * n * threads / bs / 1e9,
           2.0 * K * (W / 2) * n * threads / bd / 1e9, threads, sink);
    return 0;
}
