/* ag_labels.h - label sets: validation, the canonical encoding, hashing and ordering.
 *
 * A label set is an array of (name, value) pairs of NUL-terminated strings, sorted by name with
 * unique names. Its canonical encoding, used as the stored form and as the identity of a series,
 * is the concatenation of `name \0 value \0` for each pair in order. Because NUL may not appear in
 * names or values, comparing two encodings bytewise (shorter prefix first) orders label sets
 * exactly as Prometheus' labels.Compare does.
 */
#ifndef AG_LABELS_H
#define AG_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ag_buf.h"
#include "ag_err.h"

#define AG_METRIC_NAME "__name__"
/* The longest label name accepted whatever the configuration says: a name and a cut value
 * must fit one LMDB key (511 bytes) in the postings table. */
#define AG_LABEL_NAME_MAX 400

typedef struct ag_label {
    const char *name;
    const char *value;
} ag_label_t;

/* True when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
bool ag_utf8_valid(const char *s, size_t n);
/* [a-zA-Z_][a-zA-Z0-9_]* */
bool ag_label_name_valid(const char *s, size_t n);
/* [a-zA-Z_:][a-zA-Z0-9_:]* */
bool ag_metric_name_valid(const char *s, size_t n);

/* Checks a label set received from a client: at least one label, `__name__` present with a
 * valid metric name, names valid, at most AG_LABEL_NAME_MAX bytes and strictly ascending
 * (sorted, unique), values non-empty
 * UTF-8 without NUL. Returns 0 or AG_EINVAL with a message naming the offending label. */
int ag_labels_validate(const ag_label_t *l, size_t n, ag_errmsg_t *e);
/* The same for labels whose lengths are known (name[0..name_len), value[0..value_len), each
 * followed by a NUL as in a canonical encoding); no strlen. */
typedef struct ag_label_ref {
    const char *name, *value;
    size_t name_len, value_len;
} ag_label_ref_t;
int ag_labels_validate_ref(const ag_label_ref_t *l, size_t n, ag_errmsg_t *e);

/* Appends the canonical encoding of `l` to `out` (the set must already be valid). */
void ag_labels_encode(const ag_label_t *l, size_t n, ag_buf_t *out);
/* Splits an encoding into pairs that point into `enc` (which must outlive them). Writes at most
 * `max` pairs; *n receives the number of pairs in the encoding. Returns 0, or AG_ECORRUPT when
 * the encoding is malformed, or AG_ELIMIT when it holds more than `max` pairs. */
int ag_labels_decode(const char *enc, size_t len, ag_label_t *out, size_t max, size_t *n);
/* Walks an encoding pair by pair: starting with *pos = 0, each call sets name/value (pointing
 * into enc) and their lengths and returns true, until the encoding is exhausted (false). */
bool ag_labels_next(const char *enc, size_t len, size_t *pos, const char **name, size_t *nl,
                    const char **value, size_t *vl);
/* Finds label `name` in an encoding; returns its value (pointing into enc) and sets *vlen, or
 * returns NULL when absent. */
const char *ag_labels_get(const char *enc, size_t len, const char *name, size_t *vlen);
/* Bytewise comparison of two encodings, which is Prometheus' label-set order. */
int ag_labels_cmp(const char *a, size_t alen, const char *b, size_t blen);
/* A 64-bit hash of an encoding for in-memory tables (8 bytes per step; it may change between
 * versions, so it is never stored). */
uint64_t ag_labels_hash(const char *enc, size_t len);
/* A 64-bit hash of bytes that is stable across versions (FNV-1a based; it is stored on disk,
 * in the postings keys of values too long for a key). */
uint64_t ag_labels_hash_stable(const char *enc, size_t len);

#endif
