/* webhooks.c - signed scaler signals pushed to webhooks through a durable outbox.
 *
 * Each (scaler, webhook URL) pair has one outbox slot: the newest undelivered signal. A new
 * signal replaces an undelivered one, so a receiver that was down gets the latest state when it
 * comes back, not a backlog. The slot is a store record ("outbox:<scaler>\0<url>" -> message
 * id, signing secret, body) written before delivery is attempted and deleted once a receiver
 * answered 2xx, so a restart resends what was not delivered (with its message id: receivers
 * deduplicate by it).
 *
 * Messages follow Standard Webhooks 1.0: headers webhook-id (unique per message, the same on
 * every retry), webhook-timestamp (unix seconds of the attempt) and webhook-signature
 * "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>", the key being the base64 part of a
 * "whsec_..." secret, or the secret's bytes otherwise; no secret, no signature. HMAC-SHA256
 * and base64 come from OpenSSL's libcrypto, HTTP from libcurl (both Debian packages). Failed
 * attempts (no answer, non-2xx) are retried with exponential backoff from 1 s up to 5 min.
 * A sender thread does the deliveries, so a slow receiver delays nobody else.
 *
 * Payload (Content-Type: application/json):
 *   {"type":"scaler.signal","reason":"changed"|"heartbeat","scaler":"api","desired_replicas":7,
 *    "recommended_replicas":7,"current_load":912.4,"forecast_peak":1100.2,"forecast":1000.5,
 *    "lead_time_seconds":300,"min_replicas":1,"max_replicas":50,
 *    "generated_at":"2026-11-27T10:00:00Z","timestamp":1795773600}
 */
#include <curl/curl.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ag_log.h"
#include "ag_time.h"
#include "ag_webhook.h"
#include "service_int.h"

#define BACKOFF_MAX_MS (5 * 60 * 1000)
#define SEND_TIMEOUT_S 10
#define OUTBOX_PREFIX "outbox:"

typedef struct slot {
    char *key;            /* store record key: outbox:<scaler>\0<url> */
    size_t key_len;
    char *scaler, *url, *secret; /* owned */
    char *id;             /* message id */
    char *body;           /* JSON */
    bool pending;
    int attempts;
    int64_t next_ms;      /* monotonic-ish wall ms of the next attempt */
    /* what was last enqueued for this slot (heartbeat / change detection) */
    uint32_t last_desired;
    int64_t last_enqueued_ms;
    bool have_last;
} slot_t;

#define RECENT_MAX 64

/* A delivery attempt, for GET /api/v1/scalers (the dashboard shows the last ones). */
typedef struct attempt {
    char scaler[72];
    char url[200];
    char id[96];
    int64_t at;
    long status; /* 0: no answer */
} attempt_t;

struct webhooks {
    ag_models_t *m;
    attempt_t recent[RECENT_MAX]; /* ring, under lock */
    size_t recent_head, recent_n;
    pthread_t thread;
    bool started, stop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    slot_t *slots;
    size_t n, cap;
    uint64_t seq;
    _Atomic uint64_t ok, failed;
};

static void slot_free(slot_t *s)
{
    free(s->key);
    free(s->scaler);
    free(s->url);
    free(s->secret);
    free(s->id);
    free(s->body);
}

static slot_t *slot_find(webhooks_t *w, const char *scaler, const char *url)
{
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->slots[i].scaler, scaler) && !strcmp(w->slots[i].url, url))
            return &w->slots[i];
    return NULL;
}

static slot_t *slot_add(webhooks_t *w, const char *scaler, const char *url)
{
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 8;
        slot_t *ns = realloc(w->slots, nc * sizeof *ns);
        if (!ns) return NULL;
        w->slots = ns;
        w->cap = nc;
    }
    slot_t *s = &w->slots[w->n];
    memset(s, 0, sizeof *s);
    size_t ls = strlen(scaler), lu = strlen(url);
    s->key_len = strlen(OUTBOX_PREFIX) + ls + 1 + lu;
    s->key = malloc(s->key_len + 1);
    s->scaler = strdup(scaler);
    s->url = strdup(url);
    if (!s->key || !s->scaler || !s->url || s->key_len > AG_BLOB_KEY_MAX) {
        slot_free(s);
        return NULL;
    }
    memcpy(s->key, OUTBOX_PREFIX, strlen(OUTBOX_PREFIX));
    memcpy(s->key + strlen(OUTBOX_PREFIX), scaler, ls + 1);
    memcpy(s->key + strlen(OUTBOX_PREFIX) + ls + 1, url, lu + 1);
    w->n++;
    return s;
}

/* Record value: id\0secret\0body (the secret empty when none: a signal queued under one
 * configuration is delivered, signed, even if a later one dropped the webhook). */
static int slot_persist(webhooks_t *w, const slot_t *s, bool del)
{
    ag_buf_t v = AG_BUF_INIT;
    if (!del) {
        ag_buf_append(&v, s->id, strlen(s->id) + 1);
        ag_buf_append(&v, s->secret ? s->secret : "", (s->secret ? strlen(s->secret) : 0) + 1);
        ag_buf_append(&v, s->body, strlen(s->body));
    }
    if (!del && !ag_buf_ok(&v)) return AG_ENOMEM;
    ag_blob_in_t b = {s->key, s->key_len, del ? NULL : v.data, v.len};
    ag_write_req_t req = {NULL, 0, NULL, 0, NULL, &b, 1};
    ag_write_res_t res;
    int rc = ag_store_write(w->m->store, &req, &res);
    ag_buf_free(&v);
    return rc;
}

static int load_rec(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    webhooks_t *w = ctx;
    const char *k = key, *v = val;
    size_t pl = strlen(OUTBOX_PREFIX);
    const char *z = memchr(k + pl, 0, klen - pl);
    const char *vz = memchr(v, 0, vlen);
    const char *sz = vz ? memchr(vz + 1, 0, vlen - (size_t)(vz + 1 - v)) : NULL;
    if (!z || !vz || !sz) return AG_OK;
    char *scaler = strndup(k + pl, (size_t)(z - (k + pl)));
    char *url = strndup(z + 1, klen - (size_t)(z + 1 - k));
    slot_t *s = scaler && url ? slot_add(w, scaler, url) : NULL;
    if (s) {
        s->id = strdup(v);
        s->secret = sz > vz + 1 ? strdup(vz + 1) : NULL;
        s->body = strndup(sz + 1, vlen - (size_t)(sz + 1 - v));
        s->pending = s->id && s->body && (sz == vz + 1 || s->secret);
    }
    free(scaler);
    free(url);
    return AG_OK;
}

/* ---- signing ------------------------------------------------------------------------------- */

int ag_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                   unsigned char out[32])
{
    unsigned int len = 0;
    if (klen > (size_t)INT32_MAX) return -1;
    if (!HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &len) || len != 32) return -1;
    return 0;
}

/* The HMAC key of a secret: the base64 part of "whsec_...", else the bytes themselves. */
static int secret_key(const char *secret, unsigned char *key, size_t cap, size_t *len)
{
    if (!strncmp(secret, "whsec_", 6)) {
        const char *b = secret + 6;
        size_t bl = strlen(b);
        if (bl % 4 || (bl / 4) * 3 > cap) return -1;
        int n = EVP_DecodeBlock(key, (const unsigned char *)b, (int)bl);
        if (n < 0) return -1;
        while (bl && b[bl - 1] == '=') bl--, n--;
        *len = (size_t)n;
        return 0;
    }
    size_t n = strlen(secret);
    if (n > cap) return -1;
    memcpy(key, secret, n);
    *len = n;
    return 0;
}

int ag_webhook_sign(const char *secret, const char *id, const char *ts, const char *body,
                    char *out, size_t outlen)
{
    unsigned char key[512];
    size_t klen;
    if (secret_key(secret, key, sizeof key, &klen)) return -1;
    size_t n = strlen(id) + strlen(ts) + strlen(body) + 3;
    char *msg = malloc(n);
    if (!msg) return -1;
    int ml = snprintf(msg, n, "%s.%s.%s", id, ts, body);
    unsigned char mac[32];
    unsigned int mlen = 32;
    bool ok = ag_hmac_sha256(key, klen, msg, (size_t)ml, mac) == 0;
    free(msg);
    if (!ok || outlen < 3 + 4 * ((mlen + 2) / 3) + 1) return -1;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mlen);
    return 0;
}

/* ---- delivery ------------------------------------------------------------------------------ */

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

/* One attempt; returns the HTTP status (0 when there was no answer). */
static long deliver(const char *url, const char *secret, const char *id, const char *body)
{
    CURL *c = curl_easy_init();
    if (!c) return 0;
    char ts[32], sig[128], h1[300], h2[64], h3[160];
    snprintf(ts, sizeof ts, "%lld", (long long)(ag_now_ms() / 1000));
    struct curl_slist *hdr = NULL;
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    snprintf(h1, sizeof h1, "webhook-id: %s", id);
    snprintf(h2, sizeof h2, "webhook-timestamp: %s", ts);
    hdr = curl_slist_append(hdr, h1);
    hdr = curl_slist_append(hdr, h2);
    if (secret && !ag_webhook_sign(secret, id, ts, body, sig, sizeof sig)) {
        snprintf(h3, sizeof h3, "webhook-signature: %s", sig);
        hdr = curl_slist_append(hdr, h3);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)SEND_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "augurd");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return status;
}

static void *sender_main(void *arg)
{
    webhooks_t *w = arg;
    pthread_setname_np(pthread_self(), "augur-webhook"); /* as top -H and ps -L show it */
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        int64_t now = ag_now_ms(), next = now + 1000;
        slot_t *due = NULL;
        for (size_t i = 0; i < w->n; i++) {
            slot_t *s = &w->slots[i];
            if (!s->pending) continue;
            if (s->next_ms <= now) {
                due = s;
                break;
            }
            if (s->next_ms < next) next = s->next_ms;
        }
        if (!due) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t wait = next - now;
            if (wait > 1000) wait = 1000;
            if (wait < 1) wait = 1;
            ts.tv_nsec += (long)(wait * 1000000L);
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&w->cond, &w->lock, &ts);
            continue;
        }
        /* Copies: the slot may be replaced by a newer signal while we send. */
        char *url = strdup(due->url), *id = strdup(due->id), *body = strdup(due->body);
        char *secret = due->secret ? strdup(due->secret) : NULL;
        size_t idx = (size_t)(due - w->slots);
        pthread_mutex_unlock(&w->lock);
        long st = url && id && body ? deliver(url, secret, id, body) : 0;
        pthread_mutex_lock(&w->lock);
        attempt_t *at = &w->recent[w->recent_head];
        w->recent_head = (w->recent_head + 1) % RECENT_MAX;
        if (w->recent_n < RECENT_MAX) w->recent_n++;
        slot_t *s = idx < w->n ? &w->slots[idx] : NULL;
        snprintf(at->scaler, sizeof at->scaler, "%s", s ? s->scaler : "");
        snprintf(at->url, sizeof at->url, "%s", url ? url : "");
        snprintf(at->id, sizeof at->id, "%s", id ? id : "");
        at->at = ag_now_ms();
        at->status = st;
        bool same = s && s->pending && s->id && id && !strcmp(s->id, id);
        if (st >= 200 && st < 300) {
            atomic_fetch_add(&w->ok, 1);
            if (same) {
                /* Under the lock, so a newer signal cannot be installed (and persisted) between
                 * this check and the delete. */
                s->pending = false;
                slot_persist(w, s, true);
            }
        } else {
            atomic_fetch_add(&w->failed, 1);
            if (same) {
                s->attempts++;
                int64_t back = 1000LL << (s->attempts < 9 ? s->attempts - 1 : 8);
                if (back > BACKOFF_MAX_MS) back = BACKOFF_MAX_MS;
                s->next_ms = ag_now_ms() + back;
                if (s->attempts == 1 || s->attempts % 10 == 0)
                    AG_WARN("\"webhook delivery failed, will retry\" url=%s status=%ld attempts=%d",
                            url, st, s->attempts);
            }
        }
        free(url);
        free(id);
        free(body);
        free(secret);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int webhooks_start(ag_models_t *m, webhooks_t **out)
{
    *out = NULL;
    webhooks_t *w = calloc(1, sizeof *w);
    if (!w) return AG_ENOMEM;
    w->m = m;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = ag_store_blobs(m->store, OUTBOX_PREFIX, strlen(OUTBOX_PREFIX), load_rec, w);
    if (rc) AG_WARN("\"cannot read the webhook outbox\" err=\"%s\"", ag_strerror(rc));
    size_t pending = 0;
    for (size_t i = 0; i < w->n; i++) pending += w->slots[i].pending;
    if (pending) AG_INFO("\"webhook outbox loaded\" undelivered=%zu", pending);
    if (pthread_create(&w->thread, NULL, sender_main, w)) {
        webhooks_stop(w);
        return AG_ENOMEM;
    }
    w->started = true;
    *out = w;
    return AG_OK;
}

void webhooks_stop(webhooks_t *w)
{
    if (!w) return;
    if (w->started) {
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
    }
    for (size_t i = 0; i < w->n; i++) slot_free(&w->slots[i]);
    free(w->slots);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    curl_global_cleanup();
    free(w);
}

static char *payload(const ag_scaler_def_t *d, int64_t t, const ag_scaler_result_t *r,
                     const char *reason)
{
    ag_buf_t b = AG_BUF_INIT;
    char ts[40];
    ag_rfc3339(t, ts, sizeof ts);
    ag_buf_printf(&b, "{\"type\":\"scaler.signal\",\"reason\":\"%s\",\"scaler\":", reason);
    ag_buf_json_str(&b, d->name, strlen(d->name));
    ag_buf_printf(&b, ",\"desired_replicas\":%u,\"recommended_replicas\":%u", r->desired, r->raw);
    const struct {
        const char *k;
        double v;
    } nums[] = {{"current_load", r->load}, {"forecast_peak", r->peak}, {"forecast", r->forecast}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        ag_buf_printf(&b, ",\"%s\":", nums[i].k);
        if (isfinite(nums[i].v)) ag_buf_float(&b, nums[i].v);
        else ag_buf_puts(&b, "null");
    }
    ag_buf_printf(&b, ",\"lead_time_seconds\":%.3f,\"min_replicas\":%u,\"max_replicas\":%u,"
                  "\"generated_at\":\"%s\",\"timestamp\":",
                  (double)d->lead_ms / 1000.0, d->min_replicas, d->max_replicas, ts);
    ag_buf_ts_seconds(&b, t);
    ag_buf_puts(&b, "}");
    ag_buf_putc(&b, 0);
    if (!ag_buf_ok(&b)) {
        ag_buf_free(&b);
        return NULL;
    }
    return b.data; /* owned by the caller */
}

void webhooks_signal(ag_models_t *m, const ag_scaler_def_t *d, int64_t t,
                     const ag_scaler_result_t *r)
{
    webhooks_t *w = m->hooks;
    if (!w || !d->nwebhooks) return;
    int64_t now = ag_now_ms();
    for (size_t i = 0; i < d->nwebhooks; i++) {
        const ag_webhook_def_t *h = &d->webhooks[i];
        pthread_mutex_lock(&w->lock);
        slot_t *s = slot_find(w, d->name, h->url);
        if (!s) s = slot_add(w, d->name, h->url);
        if (!s) {
            pthread_mutex_unlock(&w->lock);
            AG_ERROR("\"out of memory queueing a webhook\" scaler=%s", d->name);
            continue;
        }
        const char *reason = NULL;
        if (!s->have_last || s->last_desired != r->desired) reason = "changed";
        else if (now - s->last_enqueued_ms >= d->heartbeat_ms) reason = "heartbeat";
        if (!reason) {
            pthread_mutex_unlock(&w->lock);
            continue;
        }
        char *body = payload(d, t, r, reason);
        char id[128];
        snprintf(id, sizeof id, "msg_%s_%lld_%llu", d->name, (long long)t,
                 (unsigned long long)++w->seq);
        char *nid = strdup(id);
        char *sec = h->secret ? strdup(h->secret) : NULL;
        if (!body || !nid || (h->secret && !sec)) {
            free(body);
            free(nid);
            free(sec);
            pthread_mutex_unlock(&w->lock);
            continue;
        }
        free(s->body);
        free(s->id);
        free(s->secret);
        s->body = body;
        s->id = nid;
        s->secret = sec;
        s->pending = true;
        s->attempts = 0;
        s->next_ms = now;
        s->last_desired = r->desired;
        s->last_enqueued_ms = now;
        s->have_last = true;
        /* Durable before the first attempt; under the lock so the sender's delete of an older
         * delivered message cannot remove it. */
        int rc = slot_persist(w, s, false);
        if (rc && rc != AG_ESHUTDOWN)
            AG_WARN("\"cannot write the webhook outbox; the signal is kept in memory only\" "
                    "scaler=%s err=\"%s\"", d->name, ag_strerror(rc));
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
    }
}

void webhooks_recent_json(webhooks_t *w, const char *scaler, size_t max, ag_buf_t *o)
{
    ag_buf_putc(o, '[');
    if (w) {
        pthread_mutex_lock(&w->lock);
        size_t k = 0;
        for (size_t i = 0; i < w->recent_n && k < max; i++) {
            const attempt_t *a = &w->recent[(w->recent_head + RECENT_MAX - 1 - i) % RECENT_MAX];
            if (strcmp(a->scaler, scaler) != 0) continue;
            char ts[40];
            ag_rfc3339(a->at, ts, sizeof ts);
            if (k++) ag_buf_putc(o, ',');
            ag_buf_printf(o, "{\"time\":\"%s\",\"url\":", ts);
            ag_buf_json_str(o, a->url, strlen(a->url));
            ag_buf_puts(o, ",\"id\":");
            ag_buf_json_str(o, a->id, strlen(a->id));
            ag_buf_printf(o, ",\"status\":%ld,\"result\":\"%s\"}", a->status,
                          a->status >= 200 && a->status < 300 ? "success" : "failure");
        }
        pthread_mutex_unlock(&w->lock);
    }
    ag_buf_putc(o, ']');
}

void webhooks_stats(webhooks_t *w, uint64_t *ok, uint64_t *failed, uint64_t *pending)
{
    *ok = *failed = *pending = 0;
    if (!w) return;
    *ok = atomic_load(&w->ok);
    *failed = atomic_load(&w->failed);
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->n; i++) *pending += w->slots[i].pending;
    pthread_mutex_unlock(&w->lock);
}
