/* forecast_int.h - internals shared by the files of daemon/forecast (not a public contract).
 *
 * The detector (detect.c) reads and adjusts the Holt-Winters state directly (level adoption,
 * scale reset), and the byte formats of both live next to the structs they serialise.
 */
#ifndef AG_FORECAST_INT_H
#define AG_FORECAST_INT_H

#include "ag_forecast.h"

#define HW_SIGMA_PER_MAD 1.2533141373155003 /* sqrt(pi/2): sd of a normal per mean |x| */
#define HW_WARM_CLIP 8 /* robust updates start once the scale has seen this many residuals */

struct ag_hw {
    ag_hw_config_t c;
    /* derived from c (recomputed, never serialised) */
    double gd_step, gw_step; /* per-sample season gains */
    double scale_gain;       /* per-step gain of the residual scale */
    uint32_t md, mw;         /* samples per visit of a daily / weekly bucket */
    /* state */
    int64_t t_last;  /* INT64_MIN before the first sample */
    uint64_t n;      /* samples learned */
    uint64_t nscale; /* residuals the scale has learned from */
    double level, trend;
    double scale;    /* EWMA of the clipped |residual| (mean absolute deviation) */
    int32_t last_db, last_wb; /* last buckets visited, -1 before any */
    double *sd, *sw;          /* seasons (day_buckets, week_buckets entries; may be NULL) */
    double off_d, off_w;      /* bucket value = sd[b] - off_d: keeps each season's mean at 0
                                 (the mean goes to the level) in O(1) per update */
    uint32_t *vd, *vw;        /* samples learned per bucket (saturating) */
    uint8_t *fd, *fw;         /* per bucket: bit 0 an anomaly in the current visit, bit 1 one in
                                 the previous visit (recurring anomalies become the pattern) */
};

/* ag_hw_update with separate weights for the level/trend/scale and for the seasons; settle_week
 * holds the weekly season back while a daily bucket is in its first visit (see hw.c); relearn > 0
 * makes the daily season learn unclipped with that share per visit (after a pattern change).
 * A sample kept out of the seasons (sweight < 0.5) is an anomaly at its time of day and week;
 * when the previous visit of the same bucket had one too, the bucket takes the deviation anyway:
 * what happens at the same time every day or week (a cron job) is the pattern. */
int hw_update(ag_hw_t *m, int64_t t, double v, double weight, double sweight, double relearn,
              bool settle_week, double *resid);
/* True when the bucket of a season that t falls into is still in its first cycle: the model
 * has never seen this time of day or week. */
bool hw_novel(const ag_hw_t *m, int64_t t);
/* Robust residual standard deviation with its floor (never 0, always finite). */
double hw_sigma(const ag_hw_t *m);
/* Serialisation helpers (little endian), shared by hw.c and detect.c. */
typedef struct rd {
    const uint8_t *p, *end, *start;
    bool bad;
} rd_t;
void wr_u8(ag_buf_t *b, uint8_t v);
void wr_u32(ag_buf_t *b, uint32_t v);
void wr_u64(ag_buf_t *b, uint64_t v);
void wr_f64(ag_buf_t *b, double v);
uint8_t rd_u8(rd_t *r);
uint32_t rd_u32(rd_t *r);
uint64_t rd_u64(rd_t *r);
double rd_f64(rd_t *r);
/* Reads a double that must be finite (else marks the reader bad). */
double rd_fin(rd_t *r);

#endif
