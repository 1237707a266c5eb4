/* auto.c - zero-config anomaly detection on every series (detection.auto).
 *
 * The store calls auto_observe on its committer thread for each series of each accepted request
 * (ag_store_observer_t). The series' 64-byte observer slot holds an ag_tiny_t (56 bytes) and,
 * in byte 56, the last score written for the series in hundredths. Status bytes: 0 new,
 * AG_SLOT_LOADED restored from disk (checked before use), ST_ACTIVE, ST_IGNORED (augur_* names:
 * the service's outputs and augurd's own metrics, never scored). Series named like counters (*_total, *_count,
 * *_sum, *_bucket) are scored on their per-second rate (ag_tiny_step_counter), others on their
 * value. Each new sample is scored (O(1), no allocation); a score of at least AG_AUTO_MIN_SCORE, or the first one below it after such a
 * score, is appended to the committer-side buffer with a copy of the series' labels. When the
 * group's commit returns, auto_group_end hands the buffer to the service thread (or drops it
 * when the commit failed: those samples were refused, and the slots are restored from the last
 * checkpoint by the store). The thread (auto_flush) writes the scores as
 * augur_auto_anomaly_score{metric="<source name>", <source labels>}, a name the store selects
 * only for queries that name it (AG_EXPLICIT_PREFIX).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ag_log.h"
#include "service_int.h"

#define ST_ACTIVE 2
#define ST_IGNORED 3
#define SLOT_LASTQ 56

_Static_assert(sizeof(ag_tiny_t) <= SLOT_LASTQ, "ag_tiny_t must leave room in the slot");

void auto_buf_reset(auto_buf_t *b)
{
    ag_buf_reset(&b->labels);
    b->n = 0;
    b->oom = false;
}

void auto_buf_free(auto_buf_t *b)
{
    ag_buf_free(&b->labels);
    free(b->ev);
    memset(b, 0, sizeof *b);
}

static void buf_event(auto_buf_t *b, const char *labels, size_t len, int64_t t, uint8_t q,
                      size_t *loff)
{
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        auto_ev_t *ne = realloc(b->ev, nc * sizeof *ne);
        if (!ne) {
            b->oom = true;
            return;
        }
        b->ev = ne;
        b->cap = nc;
    }
    if (*loff == SIZE_MAX) { /* the labels once per series and request */
        *loff = b->labels.len;
        ag_buf_append(&b->labels, labels, len);
        if (!ag_buf_ok(&b->labels)) {
            b->oom = true;
            return;
        }
    }
    b->ev[b->n++] = (auto_ev_t){*loff, len, t, q};
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n > k && memcmp(s + n - k, suffix, k) == 0;
}

static bool is_counter_name(const char *name, size_t n)
{
    return ends_with(name, n, "_total") || ends_with(name, n, "_count") ||
           ends_with(name, n, "_sum") || ends_with(name, n, "_bucket");
}

bool auto_observe(void *ctx, const char *labels, size_t labels_len, uint8_t *slot,
                  uint8_t *status, const ag_sample_t *smp, size_t n)
{
    ag_models_t *m = ctx;
    if (*status == ST_IGNORED || !atomic_load_explicit(&m->auto_on, memory_order_relaxed))
        return false;
    ag_tiny_t tiny;
    if (*status != ST_ACTIVE) {
        size_t nl = 0;
        const char *name = ag_labels_get(labels, labels_len, "__name__", &nl);
        /* Never scored: augur_* names - the service's own outputs (models, scalers, these
         * scores) and augurd's own metrics scraped back into it (an anomaly would move
         * augur_anomalies_detected_total, itself then anomalous). */
        if (name && nl > 6 && !memcmp(name, "augur_", 6)) {
            *status = ST_IGNORED;
            return true;
        }
        bool ok = false;
        if (*status == AG_SLOT_LOADED) {
            /* Restored bytes: accept them only if they make a valid detector. */
            uint8_t saved[AG_TINY_SAVED_SIZE];
            memcpy(&tiny, slot, sizeof tiny);
            ag_tiny_save(&tiny, saved);
            ok = ag_tiny_load(saved, sizeof saved, &tiny) == AG_OK && slot[SLOT_LASTQ] <= 100;
        }
        if (!ok) {
            ag_tiny_init(&tiny);
            /* Counters (by Prometheus' naming conventions) are scored on their rate. */
            if (name && is_counter_name(name, nl)) tiny.flags = AG_TINY_COUNTER;
            memset(slot, 0, AG_STORE_SLOT_SIZE);
            memcpy(slot, &tiny, sizeof tiny);
        }
        *status = ST_ACTIVE;
    }
    memcpy(&tiny, slot, sizeof tiny);
    uint8_t lastq = slot[SLOT_LASTQ];
    size_t loff = SIZE_MAX;
    uint64_t scored = 0;
    for (size_t i = 0; i < n; i++) {
        if (tiny.n && smp[i].t <= tiny.t_last) continue;
        double sc = ag_tiny_step(&tiny, smp[i].t, smp[i].v);
        scored++;
        uint8_t q = (uint8_t)lrint(sc * 100.0);
        if (q > 100) q = 100;
        if (q >= (uint8_t)lrint(AG_AUTO_MIN_SCORE * 100) || lastq) {
            if (q < (uint8_t)lrint(AG_AUTO_MIN_SCORE * 100)) q = 0;
            buf_event(&m->cur, labels, labels_len, smp[i].t, q, &loff);
            lastq = q;
        }
    }
    memcpy(slot, &tiny, sizeof tiny);
    slot[SLOT_LASTQ] = lastq;
    if (scored) atomic_fetch_add_explicit(&m->st_auto, scored, memory_order_relaxed);
    return scored > 0;
}

void auto_group_end(void *ctx, bool committed)
{
    ag_models_t *m = ctx;
    if (!m->cur.n && !m->cur.oom) return;
    if (!committed || m->cur.oom) {
        if (m->cur.oom) AG_WARN("\"out of memory buffering anomaly scores; some were dropped\"");
        auto_buf_reset(&m->cur);
        return;
    }
    pthread_mutex_lock(&m->lock);
    if (!m->out.n) {
        auto_buf_t t = m->out;
        m->out = m->cur;
        m->cur = t;
    } else {
        /* The thread is behind: append, rebasing label offsets. */
        size_t base = m->out.labels.len;
        ag_buf_append(&m->out.labels, m->cur.labels.data, m->cur.labels.len);
        for (size_t i = 0; i < m->cur.n && ag_buf_ok(&m->out.labels); i++) {
            auto_ev_t ev = m->cur.ev[i];
            ev.off += base;
            size_t dummy = ev.off;
            buf_event(&m->out, NULL, 0, ev.t, ev.q, &dummy);
            if (!m->out.oom) m->out.ev[m->out.n - 1].len = ev.len;
        }
        if (!ag_buf_ok(&m->out.labels)) m->out.oom = true;
    }
    auto_buf_reset(&m->cur);
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static const auto_buf_t *g_sort_buf; /* auto_flush's sort context (service thread only) */

static int ev_cmp(const void *a, const void *b)
{
    const auto_ev_t *x = a, *y = b;
    int c = ag_labels_cmp(g_sort_buf->labels.data + x->off, x->len,
                          g_sort_buf->labels.data + y->off, y->len);
    if (c) return c;
    return x->t < y->t ? -1 : x->t > y->t;
}

void auto_flush(ag_models_t *m, auto_buf_t *evs)
{
    if (!evs->n) return;
    /* One output series per source per request: group a source's scores in time order. */
    g_sort_buf = evs;
    qsort(evs->ev, evs->n, sizeof *evs->ev, ev_cmp);
    g_sort_buf = NULL;
    batch_t b = {0};
    long is = -1;
    uint64_t alarms = 0;
    for (size_t i = 0; i < evs->n; i++) {
        const auto_ev_t *ev = &evs->ev[i];
        const char *lab = evs->labels.data + ev->off;
        if (i == 0 || ag_labels_cmp(lab, ev->len, evs->labels.data + evs->ev[i - 1].off,
                                    evs->ev[i - 1].len) != 0) {
            is = batch_series(&b, OUT_AUTO_SCORE, NULL, lab, ev->len);
        } else if (ev->t == evs->ev[i - 1].t) {
            continue;
        }
        batch_sample(&b, is, ev->t, ev->q / 100.0);
        alarms += ev->q >= 50;
    }
    ag_errmsg_t e = {{0}, -1};
    uint64_t written = 0;
    int rc = batch_write(m->store, &b, &written, &e);
    atomic_fetch_add(&m->st_out, written);
    atomic_fetch_add(&m->st_anom, alarms);
    if (rc && rc != AG_ESHUTDOWN) {
        atomic_fetch_add(&m->st_wfail, 1);
        AG_WARN("\"cannot write zero-config anomaly scores\" err=\"%s\"", e.msg);
    }
}
