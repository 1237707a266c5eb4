/* ag_gomath.h - elementary functions that round as Go's math package does on amd64.
 *
 * PromQL answers are compared with Prometheus' to the last bit, and Prometheus computes with
 * Go's math package, whose algorithms are not glibc's: glibc's exp, sinh, cosh and tanh differ
 * from Go's in the last bit for 12-30 % of arguments (measured against Prometheus 2.42), and
 * those bits are amplified by later operations (cosh(x) - 1 near 0, sums near overflow). These
 * reimplement Go's published algorithms (Cephes, FreeBSD msun and, for exp, Shibata's method as
 * Go's amd64 assembly applies it) in C. Pure functions: no state, no allocation.
 */
#ifndef AG_GOMATH_H
#define AG_GOMATH_H

/* pi as Go's untyped constant math.Pi rounds to a double. */
#define AG_GO_PI 3.14159265358979323846264338327950288419716939937510582097494459

double ag_go_log(double x);
double ag_go_log2(double x);
double ag_go_log10(double x);
/* Arguments of magnitude >= 2^29 go to libm (Go switches to Payne-Hanek reduction there). */
double ag_go_sin(double x);
double ag_go_cos(double x);
double ag_go_tan(double x);
double ag_go_asin(double x);
double ag_go_acos(double x);
double ag_go_atan(double x);
/* Go's amd64 math.Exp: fused multiply-adds where the CPU has AVX2 and FMA (as Go decides at
 * start-up), separate roundings otherwise; x above 709.782712893384 is +Inf, as in Go (glibc
 * still has finite results up to 709.7827128933840). */
double ag_go_exp(double x);
double ag_go_sinh(double x);
double ag_go_cosh(double x);
double ag_go_tanh(double x);

#endif
