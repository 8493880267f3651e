/*
 * Matrix and dot-product engines of a CPU, register/tile-only (see kernels/native/engines.py): what the silicon's
 * bf16 and int8 units compute with no memory traffic in the timed loop. A separate library from
 * roofline_native.c, so a compiler that cannot build these instructions costs only these kernels.
 *
 *   rn_amx_permit             Linux: ask the kernel for the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM); 0 = ok
 *   rn_amx_bf16 / rn_amx_int8 4 accumulator tiles (16 x 16 fp32 / int32), 2 A and 2 B tiles (16 rows x 64 bytes)
 *                             loaded once; each iteration issues 8 TDPBF16PS / TDPBSSD (two passes of a 2 x 2 block,
 *                             as GEMM kernels block); FLOPs (OPs) = 2 x 16 x 16 x K per instruction, K = 32 (bf16),
 *                             64 (int8)
 *   rn_dot_bf16               AVX512-BF16 VDPBF16PS chains: acc (16 fp32) += 2 bf16 products per lane
 *   rn_dot_int8               AVX512-VNNI VPDPBUSD chains: acc (16 int32) += 4 u8 x s8 products per lane
 *
 * Every kernel leaves its accumulators in `out` so the caller can check them against a closed form: the inputs are
 * small integers, so every partial sum is exact in fp32 / int32. rn_engines() says what was compiled.
 */
#include <stdint.h>
#include <string.h>
#include <omp.h>

#if defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 11 || defined(__clang__))
#define RN_X86_ENGINES 1
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

const char *rn_engines(void) {
#ifdef RN_X86_ENGINES
    return "amx_bf16 amx_int8 avx512_bf16 avx512_vnni";
#else
    return "";
#endif
}

#ifdef RN_X86_ENGINES
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

/* 0 when the kernel grants the tile data state to this process (every thread, also those created later) */
int rn_amx_permit(void) {
    long rc = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA);
    return rc == 0 ? 0 : -1;
}

struct tile_config {
    uint8_t palette_id;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

static void amx_configure(void) {
    struct tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
}

/* a: 2 tiles of 16 x 64 bytes (A0, A1), b: 2 tiles (B+, B-), out: per thread 4 tiles of 16 x 16 x 4 bytes.
 * Each iteration issues 8 tile multiplies, every accumulator getting one with B+ and one with B-: B+ is all +1, B-
 * is -1 except one K position per column, so an accumulator grows by exactly its A value per iteration (acc0, acc1:
 * A0 = 1; acc2, acc3: A1 = 2) while every partial sum stays a small integer (exact in fp32 / int32): a call can
 * be long (AMX needs a few ms of back-to-back work to reach its rate) and still checkable in closed form. */
#define AMX_BODY(DP)                                                                                  \
    omp_set_num_threads(threads);                                                                     \
    _Pragma("omp parallel")                                                                           \
    {                                                                                                 \
        int t = omp_get_thread_num();                                                                 \
        amx_configure();                                                                              \
        _tile_zero(0);                                                                                \
        _tile_zero(1);                                                                                \
        _tile_zero(2);                                                                                \
        _tile_zero(3);                                                                                \
        _tile_loadd(4, a, 64);                                                                        \
        _tile_loadd(5, a + 1024, 64);                                                                 \
        _tile_loadd(6, b, 64);                                                                        \
        _tile_loadd(7, b + 1024, 64);                                                                 \
        for (long i = 0; i < iterations; i++) {                                                       \
            DP(0, 4, 6);                                                                              \
            DP(1, 4, 7);                                                                              \
            DP(2, 5, 6);                                                                              \
            DP(3, 5, 7);                                                                              \
            DP(0, 4, 7);                                                                              \
            DP(1, 4, 6);                                                                              \
            DP(2, 5, 7);                                                                              \
            DP(3, 5, 6);                                                                              \
        }                                                                                             \
        if (t < max_threads) {                                                                        \
            char *o = (char *)out + (long)t * 4 * 1024;                                               \
            _tile_stored(0, o, 64);                                                                   \
            _tile_stored(1, o + 1024, 64);                                                            \
            _tile_stored(2, o + 2048, 64);                                                            \
            _tile_stored(3, o + 3072, 64);                                                            \
        }                                                                                             \
        _tile_release();                                                                              \
    }

__attribute__((target("amx-tile,amx-bf16"))) void rn_amx_bf16(long iterations, const char *a, const char *b,
                                                              int threads, int max_threads, float *out) {
    AMX_BODY(_tile_dpbf16ps)
}

__attribute__((target("amx-tile,amx-int8"))) void rn_amx_int8(long iterations, const char *a, const char *b,
                                                              int threads, int max_threads, int32_t *out) {
    AMX_BODY(_tile_dpbssd)
}

/* ACC independent zmm chains per thread; the two inputs are broadcast constants kept in registers */
#define DOT_ACC 24

__attribute__((target("avx512f,avx512bf16"))) void rn_dot_bf16(long iterations, uint32_t a_pair, uint32_t b_pair,
                                                               int threads, int max_threads, float *out) {
    omp_set_num_threads(threads);
#pragma omp parallel
    {
        int t = omp_get_thread_num();
        __m512 acc[DOT_ACC];
        for (int c = 0; c < DOT_ACC; c++) acc[c] = _mm512_set1_ps((float)c);
        __m512bh va = (__m512bh)_mm512_set1_epi32((int)a_pair), vb = (__m512bh)_mm512_set1_epi32((int)b_pair);
        for (long i = 0; i < iterations; i++) {
#pragma GCC unroll 24
            for (int c = 0; c < DOT_ACC; c++) acc[c] = _mm512_dpbf16_ps(acc[c], va, vb);
            __asm__ volatile("" : "+v"(va), "+v"(vb)); /* keep the loop from being folded */
        }
        if (t < max_threads)
            for (int c = 0; c < DOT_ACC; c++) _mm512_storeu_ps(out + ((long)t * DOT_ACC + c) * 16, acc[c]);
    }
}

__attribute__((target("avx512f,avx512vnni"))) void rn_dot_int8(long iterations, uint32_t a_quad, uint32_t b_quad,
                                                               int threads, int max_threads, int32_t *out) {
    omp_set_num_threads(threads);
#pragma omp parallel
    {
        int t = omp_get_thread_num();
        __m512i acc[DOT_ACC];
        for (int c = 0; c < DOT_ACC; c++) acc[c] = _mm512_set1_epi32(c);
        __m512i va = _mm512_set1_epi32((int)a_quad), vb = _mm512_set1_epi32((int)b_quad);
        for (long i = 0; i < iterations; i++) {
#pragma GCC unroll 24
            for (int c = 0; c < DOT_ACC; c++) acc[c] = _mm512_dpbusd_epi32(acc[c], va, vb);
            __asm__ volatile("" : "+v"(va), "+v"(vb));
        }
        if (t < max_threads)
            for (int c = 0; c < DOT_ACC; c++) _mm512_storeu_si512((void *)(out + ((long)t * DOT_ACC + c) * 16), acc[c]);
    }
}
#endif
