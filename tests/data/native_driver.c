/* A driver for roofline_native.c on another architecture (tests/test_platform_matrix.py cross-compiles both and runs
 * them under qemu-user): prints the ISA, the FMA form and the chains of a short FMA run, and checks three stream
 * kernels. Output: one "key value..." line per fact. */
#include <stdio.h>
#include <stdlib.h>

const char *rn_isa(void);
int rn_vector_bytes(void), rn_accumulators(void), rn_fma_form(void), rn_fma_per_iteration(void), rn_nt_stores(void);
void rn_fma_f32(long, double, double, double, int, int, float *);
void rn_fma_f64(long, double, double, double, int, int, double *);
void rn_copy(const double *, double *, long, long, int);
void rn_triad(double *, const double *, const double *, double, long, long, int);
double rn_read(const double *, long, long, int);

int main(int argc, char **argv) {
    long steps = argc > 1 ? atol(argv[1]) : 1000;
    int acc = rn_accumulators(), vb = rn_vector_bytes();
    printf("isa %s\nvector_bytes %d\naccumulators %d\nform %d\nper_iteration %d\nnt %d\n", rn_isa(), vb, acc,
           rn_fma_form(), rn_fma_per_iteration(), rn_nt_stores());
    float *f = calloc((size_t)acc * vb / 4, 4);
    double *d = calloc((size_t)acc * vb / 8, 8);
    rn_fma_f32(steps, 0.5, 0.9999, 1e-4, 1, 1, f);
    rn_fma_f64(steps, 0.5, 0.9999, 1e-4, 1, 1, d);
    printf("f32");
    for (int c = 0; c < acc; c++) printf(" %.9g", f[c * (vb / 4)]);
    printf("\nf64");
    for (int c = 0; c < acc; c++) printf(" %.17g", d[c * (vb / 8)]);
    long n = 4099;
    double *a = malloc(n * 8), *b = malloc(n * 8), *c = malloc(n * 8);
    for (long i = 0; i < n; i++) { a[i] = 1.0; b[i] = 2.0; c[i] = 0.5; }
    rn_copy(a, c, n, 3, 2);
    long bad = 0;
    for (long i = 0; i < n; i++) bad += c[i] != 1.0;
    for (long i = 0; i < n; i++) c[i] = 0.5;
    rn_triad(a, b, c, 3.0, n, 2, 2);
    for (long i = 0; i < n; i++) bad += a[i] != 3.5;
    for (long i = 0; i < n; i++) a[i] = (double)i;
    double s = rn_read(a, n, 2, 3);
    printf("\nstream_bad %ld\nread %.1f\n", bad, s);
    return 0;
}
