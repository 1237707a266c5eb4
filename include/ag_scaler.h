/* ag_scaler.h - predictive scaling (issue 6): desired replicas from a load forecast, and the
 * reactive HPA-style policy it is measured against.
 *
 * ag_scaler_t is pure (no I/O, no threads), so the daemon's scaler policies and `augur
 * simulate` run the same code. Each step (every policy interval) it learns the current load
 * with an ag_detect model (the load's daily/weekly pattern; anomalous samples do not move the
 * forecaster), forecasts the load over the lead time (the time a new replica needs to be ready)
 * and takes, for each point up to the lead time, the upper bound that the load stays below with
 * probability `confidence`. The peak of those bounds and of the current load, divided by what a
 * replica should carry (capacity x target utilisation), rounded up and clamped to [min, max],
 * is the raw recommendation; scale-downs are stabilised like the HPA's: the desired count is
 * the largest raw recommendation of the last `stabilization` window.
 *
 * The reactive policy (ag_hpa_*) copies the Kubernetes HPA's algorithm: every sync it compares
 * the current utilisation with the target, ignores ratios within the tolerance (10%), and
 * recommends ceil(replicas x ratio); scale-downs take the largest recommendation of the
 * stabilization window (5 minutes). It sees only the present.
 *
 * Ownership: ag_scaler_new creates, ag_scaler_free releases (NULL fine). Not thread safe.
 */
#ifndef AG_SCALER_H
#define AG_SCALER_H

#include <stdbool.h>
#include <stdint.h>

#include "ag_buf.h"
#include "ag_err.h"
#include "ag_forecast.h"

typedef struct ag_scaler_policy {
    double capacity;       /* load one replica carries at 100% utilisation, > 0 */
    double target;         /* target utilisation, (0, 1] */
    double confidence;     /* the upper bound's probability, [0.5, 1) (0.5: the forecast mean) */
    int64_t lead_ms;       /* forecast horizon: time for a new replica to be ready, >= 0 */
    int64_t interval_ms;   /* evaluation interval (the model's step), > 0 */
    int64_t stabilization_ms; /* scale-down window, >= 0 */
    uint32_t min_replicas, max_replicas; /* 0 <= min <= max, max >= 1 */
} ag_scaler_policy_t;

/* Defaults: target 0.8, confidence 0.9, lead 5m, interval 15s, stabilization 5m, 1..100
 * replicas; capacity must be set. */
void ag_scaler_policy_default(ag_scaler_policy_t *p);
/* AG_EINVAL with a message naming the field when out of range. */
int ag_scaler_policy_check(const ag_scaler_policy_t *p, ag_errmsg_t *e);

typedef struct ag_scaler ag_scaler_t;

/* A scaler with an empty model (ag_detect_config_default for the interval, unless dc is
 * non-NULL). AG_EINVAL (bad policy or model config), AG_ENOMEM. */
int ag_scaler_new(const ag_scaler_policy_t *p, const ag_detect_config_t *dc, ag_scaler_t **out);
void ag_scaler_free(ag_scaler_t *s);
/* Replaces the policy (a reload); the model and the window are kept. AG_EINVAL. */
int ag_scaler_set_policy(ag_scaler_t *s, const ag_scaler_policy_t *p);
const ag_detect_t *ag_scaler_detector(const ag_scaler_t *s);
ag_detect_t *ag_scaler_detector_mut(ag_scaler_t *s);

typedef struct ag_scaler_result {
    double load;          /* the load learned (NaN when the sample was not usable) */
    double peak;          /* the bound used: max(load, upper bounds over the lead time) */
    double forecast;      /* the forecast mean at t + lead */
    double score;         /* the load's anomaly score */
    uint32_t raw;         /* replicas the peak needs (clamped) */
    uint32_t desired;     /* after scale-down stabilisation */
} ag_scaler_result_t;

/* Learns the load at t and recommends. A NaN/Inf load (no data) keeps the last recommendation
 * (the model learns nothing). AG_ECONFLICT when t is not after the last step (nothing changes).
 * Before the model has a forecast, the recommendation follows the current load alone. */
int ag_scaler_step(ag_scaler_t *s, int64_t t, double load, ag_scaler_result_t *r);

/* Versioned bytes: the detector and the stabilisation window. Same contract as ag_detect_save /
 * ag_detect_load; the policy is not saved (it comes from the configuration). */
int ag_scaler_save(const ag_scaler_t *s, ag_buf_t *out);
int ag_scaler_load(const uint8_t *d, size_t len, const ag_scaler_policy_t *p, ag_scaler_t **out,
                   ag_errmsg_t *e);

/* ---- the reactive baseline ----------------------------------------------------------------- */

typedef struct ag_hpa {
    ag_scaler_policy_t p;   /* capacity, target, min/max, stabilization; interval = sync period */
    double tolerance;       /* 0.1 */
    uint32_t replicas;      /* current (ready) replicas the controller believes in */
    /* recommendations of the stabilization window: a ring of (t, replicas) */
    int64_t rt[256];
    uint32_t rv[256];
    uint32_t head, n;
} ag_hpa_t;

void ag_hpa_init(ag_hpa_t *h, const ag_scaler_policy_t *p, uint32_t replicas);
/* One sync at t with the load carried by `ready` replicas now: returns the desired count. */
uint32_t ag_hpa_step(ag_hpa_t *h, int64_t t, double load, uint32_t ready);

#endif
