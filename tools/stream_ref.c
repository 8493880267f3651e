/* A reference memory-bandwidth probe, written for this project (not the STREAM source):
 * four STREAM-style kernels (copy, scale, add, triad) over double arrays with OpenMP,
 * best of NTIMES, bytes counted by STREAM's convention (no write-allocate).
 * Build: gcc -O3 -march=native -fopenmp tools/stream_ref.c -o /tmp/stream_ref
 * Run:   /tmp/stream_ref [elements] [ntimes]   (default 2^25 doubles = 256 MiB per array, 20 times)
 * Used only to check that the suite's DRAM ceiling is within 5% of a compiled kernel. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define NTIMES_DEFAULT 20

static double now(void) { return omp_get_wtime(); }

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : (1L << 25);
    int NTIMES = argc > 2 ? atoi(argv[2]) : NTIMES_DEFAULT;
    if (NTIMES < 2) NTIMES = 2;
    double *a = aligned_alloc(64, n * sizeof(double));
    double *b = aligned_alloc(64, n * sizeof(double));
    double *c = aligned_alloc(64, n * sizeof(double));
    const double q = 3.0;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) { a[i] = 1.0; b[i] = 2.0; c[i] = 0.0; }
    const char *names[4] = {"copy", "scale", "add", "triad"};
    const double words[4] = {2, 2, 3, 3};
    double best[4] = {1e30, 1e30, 1e30, 1e30};
    for (int k = 0; k < NTIMES; k++) {
        double t;
        t = now();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) c[i] = a[i];
        t = now() - t; if (k && t < best[0]) best[0] = t;
        t = now();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) b[i] = q * c[i];
        t = now() - t; if (k && t < best[1]) best[1] = t;
        t = now();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) c[i] = a[i] + b[i];
        t = now() - t; if (k && t < best[2]) best[2] = t;
        t = now();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) a[i] = b[i] + q * c[i];
        t = now() - t; if (k && t < best[3]) best[3] = t;
    }
    /* checksum: replay the scalar recurrence */
    double ra = 1.0, rb = 2.0, rc = 0.0;
    for (int k = 0; k < NTIMES; k++) { rc = ra; rb = q * rc; rc = ra + rb; ra = rb + q * rc; }
    long bad = 0;
    for (long i = 0; i < n; i++) bad += (a[i] != ra) || (b[i] != rb) || (c[i] != rc);
    printf("threads %d, n %ld doubles (%.1f MB per array), %s\n", omp_get_max_threads(), n,
           n * 8 / 1e6, bad ? "VERIFY FAILED" : "verified");
    for (int j = 0; j < 4; j++)
        printf("%-6s %10.1f MB/s (best of %d, %g x 8 bytes/element)\n", names[j],
               words[j] * 8 * n / best[j] / 1e6, NTIMES - 1, words[j]);
    return bad != 0;
}
