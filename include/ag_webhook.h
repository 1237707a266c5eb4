/* ag_webhook.h - signing of outgoing webhooks (Standard Webhooks 1.0), used by the scaler
 * signal sender (daemon/forecast/webhooks.c). HMAC-SHA256 and base64 come from OpenSSL's
 * libcrypto. */
#ifndef AG_WEBHOOK_H
#define AG_WEBHOOK_H

#include <stddef.h>

/* HMAC-SHA256 of msg[0..mlen) with key[0..klen) into out[32]. 0, or -1 on failure. */
int ag_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                   unsigned char out[32]);

/* The webhook-signature header value "v1,<base64 HMAC-SHA256(key, id.ts.body)>" into out
 * (NUL-terminated; 64 bytes suffice). The key is the base64 part of a "whsec_..." secret, else
 * the secret's bytes. 0, or -1 on a malformed secret or a short buffer. */
int ag_webhook_sign(const char *secret, const char *id, const char *ts, const char *body,
                    char *out, size_t outlen);

#endif
