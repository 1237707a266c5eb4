/* gomath.c - Go's math package algorithms in C, so PromQL results round as Prometheus' do
 * (contract: include/ag_gomath.h).
 *
 * log/log2/log10 follow FreeBSD's e_log.c as Go does; sin/cos/tan/asin/acos/atan and tanh are
 * Cephes' (Go's pure-Go versions); sinh/cosh are Go's formulas over exp; exp is the method of
 * N. Shibata (ISC 2010) in the form Go's amd64 assembly evaluates it: k = round(x / ln 2),
 * r = (x - k ln 2) / 16 with ln 2 in two parts, e^r - 1 by its Taylor polynomial to degree 8,
 * squared back up four times as y(y + 2), then scaled by 2^k (in two steps for subnormals).
 */
#include "ag_gomath.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* a*b+c stays two roundings unless written as fma() (Go does not fuse on amd64). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* Go folds 1/Ln2 and 1/Ln10 exactly at compile time; these are those constants rounded once. */
#define GO_INV_LN2 1.44269504088896340735992468100189214
#define GO_INV_LN10 0.434294481903251827651128918916605082

/* Go's math.Log (FreeBSD e_log.c algorithm; Go's amd64 assembly computes the same thing). */
double ag_go_log(double x)
{
    const double Ln2Hi = 6.93147180369123816490e-01, Ln2Lo = 1.90821492927058770002e-10,
                 L1 = 6.666666666666735130e-01, L2 = 3.999999999940941908e-01,
                 L3 = 2.857142874366239149e-01, L4 = 2.222219843214978396e-01,
                 L5 = 1.818357216161805012e-01, L6 = 1.531383769920937332e-01,
                 L7 = 1.479819860511658591e-01;
    if (isnan(x) || (isinf(x) && x > 0))
        return x;
    if (x < 0)
        return NAN;
    if (x == 0)
        return -INFINITY;
    int ki;
    double f1 = frexp(x, &ki);
    if (f1 < 1.41421356237309504880168872420969808 / 2) {
        f1 *= 2;
        ki--;
    }
    double f = f1 - 1;
    double k = (double)ki;
    double s = f / (2 + f);
    double s2 = s * s;
    double s4 = s2 * s2;
    double t1 = s2 * (L1 + s4 * (L3 + s4 * (L5 + s4 * L7)));
    double t2 = s4 * (L2 + s4 * (L4 + s4 * L6));
    double R = t1 + t2;
    double hfsq = 0.5 * f * f;
    return k * Ln2Hi - ((hfsq - (s * (hfsq + R) + k * Ln2Lo)) - f);
}

/* Go's math.Log2: exact for powers of two, else Log(frac)*(1/Ln2) + exp. */
double ag_go_log2(double x)
{
    int e;
    double frac = frexp(x, &e);
    if (frac == 0.5)
        return (double)(e - 1);
    return ag_go_log(frac) * GO_INV_LN2 + (double)e;
}

/* Go's math.Log10: Log(x) * (1/Ln10). */
double ag_go_log10(double x)
{
    return ag_go_log(x) * GO_INV_LN10;
}

/* Go's pure-Go sin/cos/tan (Cephes, Cody-Waite reduction by Pi/4 in three parts). Go uses
 * Payne-Hanek reduction from 2^29 on; we hand such arguments to libm instead. */
static const double go_sin_c[6] = {
    1.58962301576546568060e-10,  -2.50507477628578072866e-8, 2.75573136213857245213e-6,
    -1.98412698295895385996e-4, 8.33333333332211858878e-3,   -1.66666666666666307295e-1,
};
static const double go_cos_c[6] = {
    -1.13585365213876817300e-11, 2.08757008419747316778e-9,  -2.75573141792967388112e-7,
    2.48015872888517045348e-5,   -1.38888888888730564116e-3, 4.16666666666665929218e-2,
};
#define GO_TRIG_REDUCE_THRESHOLD 536870912.0 /* 1 << 29 */

/* Octant j (0..7) and reduced argument z for 0 <= x < 2^29. */
static void go_trig_reduce(double x, unsigned *j_out, double *z_out)
{
    const double PI4A = 7.85398125648498535156e-1;
    const double PI4B = 3.77489470793079817668e-8;
    const double PI4C = 2.69515142907905952645e-15;
    uint64_t j = (uint64_t)(x * (4 / AG_GO_PI));
    double y = (double)j;
    if (j & 1) {
        j++;
        y++;
    }
    j &= 7;
    *z_out = ((x - y * PI4A) - y * PI4B) - y * PI4C;
    *j_out = (unsigned)j;
}

static double go_sin_poly(double z, double zz)
{
    return z + z * zz *
                   ((((((go_sin_c[0] * zz) + go_sin_c[1]) * zz + go_sin_c[2]) * zz + go_sin_c[3]) *
                         zz +
                     go_sin_c[4]) *
                        zz +
                    go_sin_c[5]);
}

static double go_cos_poly(double zz)
{
    return 1.0 - 0.5 * zz +
           zz * zz *
               ((((((go_cos_c[0] * zz) + go_cos_c[1]) * zz + go_cos_c[2]) * zz + go_cos_c[3]) *
                     zz +
                 go_cos_c[4]) *
                    zz +
                go_cos_c[5]);
}

/* What sin and tan (odd functions) share before reducing: x = +-0 and NaN answer themselves,
 * +-Inf NaN, and magnitudes past Go's Cody-Waite range go to libm's `fn` (true, *out set);
 * otherwise *x becomes |x| and *sign its sign (false). */
static bool odd_special(double *x, bool *sign, double (*fn)(double), double *out)
{
    double v = *x;
    *sign = v < 0;
    if (v == 0 || isnan(v))
        *out = v;
    else if (isinf(v))
        *out = NAN;
    else if (fabs(v) >= GO_TRIG_REDUCE_THRESHOLD)
        *out = *sign ? -fn(-v) : fn(v);
    else {
        *x = fabs(v);
        return false;
    }
    return true;
}

double ag_go_sin(double x)
{
    bool sign;
    double special;
    if (odd_special(&x, &sign, sin, &special))
        return special;
    unsigned j;
    double z;
    go_trig_reduce(x, &j, &z);
    if (j > 3) {
        sign = !sign;
        j -= 4;
    }
    double zz = z * z;
    double y = (j == 1 || j == 2) ? go_cos_poly(zz) : go_sin_poly(z, zz);
    return sign ? -y : y;
}

double ag_go_cos(double x)
{
    if (isnan(x) || isinf(x))
        return NAN;
    x = fabs(x);
    if (x >= GO_TRIG_REDUCE_THRESHOLD)
        return cos(x);
    bool sign = false;
    unsigned j;
    double z;
    go_trig_reduce(x, &j, &z);
    if (j > 3) {
        j -= 4;
        sign = !sign;
    }
    if (j > 1)
        sign = !sign;
    double zz = z * z;
    double y = (j == 1 || j == 2) ? go_sin_poly(z, zz) : go_cos_poly(zz);
    return sign ? -y : y;
}

double ag_go_tan(double x)
{
    static const double P[3] = {-1.30936939181383777646e4, 1.15351664838587416140e6,
                                -1.79565251976484877988e7};
    static const double Q[5] = {1.0, 1.36812963470692954678e4, -1.32089234440210967447e6,
                                2.50083801823357915839e7, -5.38695755929454629881e7};
    bool sign;
    double special;
    if (odd_special(&x, &sign, tan, &special))
        return special;
    unsigned j;
    double z, y;
    go_trig_reduce(x, &j, &z);
    double zz = z * z;
    if (zz > 1e-14)
        y = z + z * (zz * (((P[0] * zz) + P[1]) * zz + P[2]) /
                     ((((zz + Q[1]) * zz + Q[2]) * zz + Q[3]) * zz + Q[4]));
    else
        y = z;
    if (j & 2)
        y = -1 / y;
    return sign ? -y : y;
}

/* Go's atan family (Cephes). */
static double go_xatan(double x)
{
    const double P0 = -8.750608600031904122785e-01, P1 = -1.615753718733365076637e+01,
                 P2 = -7.500855792314704667340e+01, P3 = -1.228866684490136173410e+02,
                 P4 = -6.485021904942025371773e+01, Q0 = +2.485846490142306297962e+01,
                 Q1 = +1.650270098316988542046e+02, Q2 = +4.328810604912902668951e+02,
                 Q3 = +4.853903996359136964868e+02, Q4 = +1.945506571482613964425e+02;
    double z = x * x;
    z = z * ((((P0 * z + P1) * z + P2) * z + P3) * z + P4) /
        (((((z + Q0) * z + Q1) * z + Q2) * z + Q3) * z + Q4);
    return x * z + x;
}

static double go_satan(double x)
{
    const double morebits = 6.123233995736765886130e-17;
    const double tan3pio8 = 2.41421356237309504880;
    if (x <= 0.66)
        return go_xatan(x);
    if (x > tan3pio8)
        return AG_GO_PI / 2 - go_xatan(1 / x) + morebits;
    return AG_GO_PI / 4 + go_xatan((x - 1) / (x + 1)) + 0.5 * morebits;
}

double ag_go_atan(double x)
{
    if (x == 0)
        return x;
    if (x > 0)
        return go_satan(x);
    return -go_satan(-x);
}

double ag_go_asin(double x)
{
    if (x == 0)
        return x;
    bool sign = false;
    if (x < 0) {
        x = -x;
        sign = true;
    }
    if (x > 1)
        return NAN;
    double temp = sqrt(1 - x * x);
    if (x > 0.7)
        temp = AG_GO_PI / 2 - go_satan(temp / x);
    else
        temp = go_satan(x / temp);
    return sign ? -temp : temp;
}

double ag_go_acos(double x)
{
    return AG_GO_PI / 2 - ag_go_asin(x);
}

/* Go sets useFMA once from CPUID: AVX2 and FMA both present (amd64 only). */
static int exp_use_fma(void)
{
#if defined(__x86_64__)
    static _Atomic int known; /* 1 = no, 2 = yes */
    int v = known;
    if (!v) {
        __builtin_cpu_init();
        v = (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 2 : 1;
        known = v;
    }
    return v == 2;
#else
    return 0;
#endif
}

/* The double 2^(e - 1023) for a biased exponent 1 <= e <= 2046. */
static double pow2_biased(int e)
{
    uint64_t bits = (uint64_t)e << 52;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

double ag_go_exp(double x)
{
    static const double taylor[8] = {
        1.0 / 40320, 1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5, 1.0,
    };
    const double log2e = 1.4426950408889634073599246810018920;
    const double ln2_hi = 0.69314718055966295651160180568695068359375;
    const double ln2_lo = 0.28235290563031577122588448175013436025525412068e-12;
    if (isnan(x) || x == INFINITY)
        return x;
    if (x == -INFINITY)
        return 0;
    if (x > 7.09782712893384e+02)
        return INFINITY;
    if (x < -800) /* 0 (Go's conversion gives INT_MIN there, which ends in 0 as well) */
        return 0;
    int k = (int)nearbyint(x * log2e); /* |x * log2e| < 1155 */
    double kd = (double)k, r, p, y;
    if (exp_use_fma()) {
        r = fma(-ln2_hi, kd, x);
        r = fma(-ln2_lo, kd, r) * 0.0625;
        p = taylor[0];
        for (int i = 1; i < 8; i++)
            p = fma(p, r, taylor[i]);
        y = r * p;
        for (int i = 0; i < 3; i++)
            y = y * (y + 2);
        y = fma(y + 2, y, 1.0);
    } else {
        r = x - ln2_hi * kd;
        r = (r - ln2_lo * kd) * 0.0625;
        p = taylor[0];
        for (int i = 1; i < 8; i++)
            p = p * r + taylor[i];
        y = r * p;
        for (int i = 0; i < 4; i++)
            y = y * (y + 2);
        y = y + 1.0;
    }
    int e = k + 1023;
    if (e <= 0) { /* a subnormal result: 2^(e-1) then 2^-1022, so only the last step rounds */
        if (e < -52)
            return 0;
        return y * pow2_biased(e + 1022) * pow2_biased(1);
    }
    if (e >= 0x7ff)
        return INFINITY;
    return y * pow2_biased(e);
}

double ag_go_sinh(double x)
{
    /* Hart & Cheney #2029 (20.36 digits) below 0.5 */
    const double P0 = -0.6307673640497716991184787251e+6, P1 = -0.8991272022039509355398013511e+5,
                 P2 = -0.2894211355989563807284660366e+4, P3 = -0.2630563213397497062819489e+2,
                 Q0 = -0.6307673640497716991212077277e+6, Q1 = 0.1521517378790019070696485176e+5,
                 Q2 = -0.173678953558233699533450911e+3;
    bool neg = x < 0;
    double a = neg ? -x : x, r;
    if (a > 21) {
        r = ag_go_exp(a) / 2;
    } else if (a > 0.5) {
        double ex = ag_go_exp(a);
        r = (ex - 1 / ex) * 0.5;
    } else {
        double sq = a * a;
        r = (((P3 * sq + P2) * sq + P1) * sq + P0) * a;
        r = r / (((sq + Q2) * sq + Q1) * sq + Q0);
    }
    return neg ? -r : r;
}

double ag_go_cosh(double x)
{
    double a = fabs(x);
    if (a > 21)
        return ag_go_exp(a) / 2;
    double ex = ag_go_exp(a);
    return (ex + 1 / ex) * 0.5; /* not (e^a + e^-a) / 2: that differs from Prometheus' cosh */
}

double ag_go_tanh(double x)
{
    /* Cephes: x + x^3 P(x^2)/Q(x^2) (Cody & Waite) below 0.625, else 1 - 2/(e^2|x| + 1) */
    const double P0 = -9.64399179425052238628e-1, P1 = -9.92877231001918586564e1,
                 P2 = -1.61468768441708447952e3, Q0 = 1.12811678491632931402e2,
                 Q1 = 2.23548839060100448583e3, Q2 = 4.84406305325125486048e3;
    const double maxlog = 8.8029691931113054295988e+01; /* ln 2^127 */
    double z = fabs(x);
    if (z > 0.5 * maxlog)
        return x < 0 ? -1 : 1;
    if (z >= 0.625) {
        double s = ag_go_exp(2 * z);
        z = 1 - 2 / (s + 1);
        return x < 0 ? -z : z;
    }
    if (x == 0)
        return x;
    double s = x * x;
    return x + x * s * ((P0 * s + P1) * s + P2) / (((s + Q0) * s + Q1) * s + Q2);
}
