#!/usr/bin/env bash
# anomaly_bench.sh - quality and speed of the forecasting/anomaly module (issue 5), on this machine.
#
#   tests/bench/anomaly_bench.sh [--quick]
#
# 1. Scores `build/augur detect` on the labelled anomaly set beside the checkout
#    (../shared/anomaly-set) with its NAB scorer: the threshold optimised per profile, the 2-fold
#    cross-validated figure, and the shipped default threshold (0.5); then the same for the tiny
#    detector (`augur detect --tiny`). Needs python3 with numpy and pandas (score.sh finds one).
# 2. Times the model updates in a tight loop (a small C program built here against
#    build/libaugur.a, so CSV parsing and printing are not counted): Holt-Winters updates,
#    detector steps and tiny-detector steps per second on one core, and the bytes of state per
#    series of each detector (the saved form, which is what persistence stores).
# --quick skips the scoring. Run with nice when other work shares the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
SET=../shared/anomaly-set
make -s build/augur build/libaugur.a >/dev/null

if [[ "${1:-}" != "--quick" && -d "$SET" ]]; then
  OUT=${TMPDIR:-/tmp}/augur-anomaly-bench
  rm -rf "$OUT"
  mkdir -p "$OUT"
  for spec in "augur:build/augur detect" "augur-tiny:build/augur detect --tiny"; do
    name=${spec%%:*}; cmd=${spec#*:}
    bash "$SET/score/score.sh" --name "$name" --out "$OUT/$name" "$cmd" > "$OUT/$name.txt" 2>&1 \
      || { cat "$OUT/$name.txt"; exit 1; }
    echo "== $cmd (optimised threshold | 2-fold)"
    grep -A5 '^| detector' "$OUT/$name.txt"
    PY=$(sed -n 's/.*python: //p' "$OUT/$name.txt" | head -n1)
    echo "== $cmd at the default threshold 0.5"
    "$PY" "$SET/score/score.py" --results-dir "$OUT/$name/results" "$name" --threshold 0.5 \
      | grep -E "^\| ($name|detector) \|"
    echo
  done
fi

mkdir -p build/bench
cat > build/bench/forecast_speed.c <<'C'
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "ag_forecast.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
    enum { N = 4000000 };
    const long long t0 = 1767571200000LL, step = 300000;
    double *v = malloc(N * sizeof *v);
    unsigned long long x = 88172645463325252ULL;
    for (long i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[i] = 1000 + 400 * sin(i * 2 * M_PI / 288) + (double)(x % 1000) / 20.0;
    }
    ag_detect_config_t c;
    ag_detect_config_default(&c, step);
    ag_hw_t *m;
    ag_hw_new(&c.hw, &m);
    double t = now(), sink = 0;
    for (long i = 0; i < N; i++) ag_hw_update(m, t0 + i * step, v[i], 1, NULL);
    double hw_rate = N / (now() - t);
    ag_detect_t *d;
    ag_detect_new(&c, &d);
    t = now();
    for (long i = 0; i < N; i++) {
        ag_detect_result_t r;
        ag_detect_step(d, t0 + i * step, v[i], &r);
        sink += r.score;
    }
    double det_rate = N / (now() - t);
    ag_tiny_t s;
    ag_tiny_init(&s);
    t = now();
    for (long i = 0; i < N; i++) sink += ag_tiny_step(&s, t0 + i * step, v[i]);
    double tiny_rate = N / (now() - t);
    ag_buf_t b = AG_BUF_INIT, hb = AG_BUF_INIT;
    ag_detect_save(d, &b);
    ag_hw_save(m, &hb);
    printf("Holt-Winters updates/s (day+week seasons, 5-minute steps): %.3g\n", hw_rate);
    printf("detector steps/s (model + scoring layer):                  %.3g\n", det_rate);
    printf("tiny detector steps/s:                                     %.3g\n", tiny_rate);
    printf("state per series: detector %zu bytes saved (model alone %zu; scoring model 288 daily + 672 weekly buckets, forecaster 288 + 168),"
           " tiny detector %zu bytes in memory / %d saved\n",
           b.len, hb.len, sizeof(ag_tiny_t), AG_TINY_SAVED_SIZE);
    if (sink < 0) puts("");
    ag_buf_free(&b);
    ag_buf_free(&hb);
    ag_detect_free(d);
    ag_hw_free(m);
    free(v);
    return 0;
}
C
gcc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -o build/bench/forecast_speed build/bench/forecast_speed.c build/libaugur.a -lm
./build/bench/forecast_speed
