/* compact.c - giving the data file's free space back to the filesystem at a clean shutdown.
 *
 * LMDB reuses freed pages but never shrinks data.mdb, so the file keeps its high-water mark: the
 * WAL grows to storage's checkpoint threshold (64 MiB) before a checkpoint frees it, and
 * retention frees whole ranges of chunks. Its B-trees also stay as their last writes left them:
 * a page split in the middle leaves two half-full pages, and records that were rewritten
 * smaller (open chunks replaced by packed ones) leave gaps. When the store closes cleanly, the
 * file is at least `compact_min_bytes` (default 0) and at most 1 GiB of it is in use (so that
 * stopping stays quick; larger files can be compacted offline with `mdb_copy -c`), every table is
 * rewritten in key order into a new environment in data.mdb.compact (MDB_APPEND, so every page
 * but a table's last is full), series labels, observer slots and postings are folded into cold
 * records and packed chunks lose the first timestamp their key repeats (formats: store_int.h),
 * the copy is checked against the original, the file is fsynced, and it is renamed over
 * data.mdb once the original environment is closed; then the directory is fsynced. A crash before the rename leaves the old file as it was (the stale
 * copy is deleted at the next open); after it, the new file is complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ag_log.h"
#include "store_int.h"

#define COMPACT_NAME "data.mdb.compact"
#define COMPACT_MAX_LIVE (1ULL << 30) /* about a second or two of writing on a plain disk */

static void compact_path(const ag_store_t *s, char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", s->path, name);
}

void store_compact_cleanup(const ag_store_t *s)
{
    char p[4200];
    compact_path(s, p, sizeof p, COMPACT_NAME);
    if (unlink(p) == 0) AG_INFO("\"removed an unfinished compacted copy\" file=\"%s\"", p);
}

/* Free pages of the environment: the sum of the freelist records' counts. */
static int free_pages(MDB_env *env, size_t *out)
{
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc) return rc;
    if ((rc = mdb_cursor_open(txn, 0, &c))) { /* dbi 0: LMDB's freelist */
        mdb_txn_abort(txn);
        return rc;
    }
    MDB_val k, v;
    size_t n = 0;
    while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
        size_t cnt;
        if (v.mv_size < sizeof cnt) continue;
        memcpy(&cnt, v.mv_data, sizeof cnt); /* an array of page numbers led by its length */
        n += cnt;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    *out = n;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The writing side of a table copy: puts in key order, committing every COPY_TXN_ENTRIES so
 * that the copy's dirty pages stay bounded. */
#define COPY_TXN_ENTRIES 65536
typedef struct writer {
    MDB_env *env;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_dbi dbi;
    bool dup;
    MDB_val last; /* the last key put (points into the source's pages or `keybuf`) */
    unsigned char keybuf[17];
    size_t n; /* records put */
} writer_t;

static int writer_put(writer_t *w, MDB_val *k, MDB_val *v)
{
    /* A repeated key of a sorted-duplicates table appends to its list; every other put appends
     * at the end of the table. */
    bool same = w->dup && w->last.mv_data && w->last.mv_size == k->mv_size &&
                memcmp(w->last.mv_data, k->mv_data, k->mv_size) == 0;
    int rc = mdb_cursor_put(w->cur, k, v, same ? MDB_APPENDDUP : MDB_APPEND);
    if (rc) return rc;
    w->last = *k;
    if (++w->n % COPY_TXN_ENTRIES == 0) {
        mdb_cursor_close(w->cur);
        w->cur = NULL;
        rc = mdb_txn_commit(w->txn);
        w->txn = NULL;
        if (!rc) rc = mdb_txn_begin(w->env, NULL, 0, &w->txn);
        if (!rc) rc = mdb_cursor_open(w->txn, w->dbi, &w->cur);
    }
    return rc;
}

/* Folding per-id records into cold groups (format: store_int.h): the records of one range of
 * `span` ids, per-id ones newer than the group's members, become one group. */
typedef struct fold {
    size_t plen;              /* key prefix before the id: 0 for series, 1 for slots */
    uint64_t span;            /* ids per range */
    unsigned char prefix[1];
    uint64_t first;           /* the range being collected; 0 when none */
    group_member_t have[GROUP_IDS]; /* by id - first; len SIZE_MAX when absent */
    ag_buf_t raw, out, craw;  /* the range's old group, inflated; the new group; its check */
    group_member_t *gm, *check;
    size_t ngm, capgm, ncheck, capcheck;
} fold_t;

static void fold_reset(fold_t *f, uint64_t first)
{
    f->first = first;
    for (size_t i = 0; i < f->span; i++) f->have[i] = (group_member_t){0, NULL, SIZE_MAX};
}

/* Writes the collected range as one group, after checking that it decodes to what went in. */
static int fold_flush(fold_t *f, writer_t *w)
{
    if (!f->first) return 0;
    group_member_t m[GROUP_IDS];
    size_t n = 0;
    for (size_t i = 0; i < f->span; i++)
        if (f->have[i].len != SIZE_MAX) m[n++] = (group_member_t){f->first + i, f->have[i].val,
                                                                  f->have[i].len};
    f->first = 0;
    ag_buf_reset(&f->out);
    if (!n) return 0;
    uint64_t first = group_first(m[0].id, f->span);
    if (group_encode(m, n, first, &f->out)) return ENOMEM;
    int rc = group_decode(f->out.data, f->out.len, first, f->span, &f->craw, &f->check,
                          &f->ncheck, &f->capcheck);
    if (rc == AG_ENOMEM) return ENOMEM;
    if (rc || f->ncheck != n) return MDB_CORRUPTED;
    for (size_t i = 0; i < n; i++)
        if (f->check[i].id != m[i].id || f->check[i].len != m[i].len ||
            memcmp(f->check[i].val, m[i].val, m[i].len) != 0)
            return MDB_CORRUPTED;
    memcpy(w->keybuf, f->prefix, f->plen);
    key_put_u64(w->keybuf + f->plen, first);
    w->keybuf[f->plen + 8] = 0;
    MDB_val k = {f->plen + 9, w->keybuf}, v = {f->out.len, f->out.data};
    return writer_put(w, &k, &v);
}

/* Takes one source record into the fold; false when it is not a per-id record or group. */
static int fold_take(fold_t *f, writer_t *w, const MDB_val *k, const MDB_val *v, bool *taken)
{
    const unsigned char *kp = k->mv_data;
    *taken = false;
    if (k->mv_size < f->plen + 8 || memcmp(kp, f->prefix, f->plen) != 0) return 0;
    bool grouped = k->mv_size == f->plen + 9 && kp[f->plen + 8] == 0;
    if (k->mv_size != f->plen + 8 && !grouped) return 0;
    uint64_t id = key_get_u64(kp + f->plen);
    if (id == 0 || (grouped && group_first(id, f->span) != id)) return 0;
    int rc;
    if (f->first != group_first(id, f->span)) {
        if ((rc = fold_flush(f, w))) return rc;
        fold_reset(f, group_first(id, f->span));
    }
    *taken = true;
    if (!grouped) { /* newer than a group member of the same id */
        f->have[id - f->first] = (group_member_t){id, v->mv_data, v->mv_size};
        return 0;
    }
    /* The range's group sorts after its first id's own record and before the others: its
     * members fill what that record did not. The inflated list lives in `raw` until the range
     * is flushed (one group per range). */
    rc = group_decode(v->mv_data, v->mv_size, id, f->span, &f->raw, &f->gm, &f->ngm, &f->capgm);
    if (rc) return rc == AG_ENOMEM ? ENOMEM : MDB_CORRUPTED;
    for (size_t i = 0; i < f->ngm; i++)
        if (f->have[f->gm[i].id - id].len == SIZE_MAX) f->have[f->gm[i].id - id] = f->gm[i];
    return 0;
}

/* Copies table `name` of `from` (read transaction) into `to`'s environment; `fold` (or NULL)
 * folds its per-id records into groups. *written gets the records written. */
static int copy_table(MDB_txn *from, MDB_env *to, const char *name, fold_t *fold,
                      size_t *written)
{
    MDB_dbi src;
    unsigned int flags = 0;
    MDB_cursor *rcur = NULL;
    writer_t w = {.env = to};
    int rc = mdb_dbi_open(from, name, 0, &src);
    if (!rc) rc = mdb_dbi_flags(from, src, &flags);
    if (!rc) rc = mdb_cursor_open(from, src, &rcur);
    if (!rc) rc = mdb_txn_begin(to, NULL, 0, &w.txn);
    if (!rc) rc = mdb_dbi_open(w.txn, name, MDB_CREATE | (flags & (MDB_DUPSORT | MDB_DUPFIXED |
                                                                    MDB_INTEGERKEY |
                                                                    MDB_REVERSEKEY |
                                                                    MDB_INTEGERDUP |
                                                                    MDB_REVERSEDUP)),
                               &w.dbi);
    if (!rc) rc = mdb_cursor_open(w.txn, w.dbi, &w.cur);
    w.dup = flags & MDB_DUPSORT;
    if (fold && w.dup) fold = NULL; /* groups are for plain tables */
    if (fold) fold_reset(fold, 0);
    bool chunks = strcmp(name, "chunks") == 0;
    ag_buf_t stripped = AG_BUF_INIT;
    MDB_val k, v;
    int op = MDB_FIRST;
    while (!rc && (rc = mdb_cursor_get(rcur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        bool taken = false;
        if (fold && (rc = fold_take(fold, &w, &k, &v, &taken))) break;
        if (taken) continue;
        if (fold && (rc = fold_flush(fold, &w))) break;
        MDB_val sv = v;
        if (chunks && k.mv_size == 16 &&
            chunk_val_strip(v.mv_data, v.mv_size, chunk_key_mint(k.mv_data), &stripped)) {
            sv.mv_size = stripped.len; /* the pack's first timestamp is the key's */
            sv.mv_data = stripped.data;
        }
        rc = writer_put(&w, &k, &sv);
    }
    ag_buf_free(&stripped);
    if (rc == MDB_NOTFOUND) rc = 0;
    if (!rc && fold) rc = fold_flush(fold, &w);
    if (w.cur) mdb_cursor_close(w.cur);
    if (w.txn) {
        if (!rc) rc = mdb_txn_commit(w.txn);
        else mdb_txn_abort(w.txn);
    }
    if (rcur) mdb_cursor_close(rcur);
    *written = w.n;
    return rc;
}

/* ---- postings: every list into `postings_cold` (store_int.h) ---------------------------- */

/* Merges `postings` and `postings_cold` of the source, key by key, into the copy's
 * `postings_cold` (only ids of series that still exist); the copy's `postings` is empty.
 * *written gets the lists written. */
static int copy_postings(ag_store_t *s, MDB_txn *from, MDB_env *to, size_t *written)
{
    MDB_dbi hot, cold = 0, dhot;
    unsigned int flags = 0;
    bool have_cold = false;
    MDB_cursor *hc = NULL, *cc = NULL;
    writer_t w = {.env = to};
    idset_t ids = {0}, check = {0};
    ag_buf_t enc = AG_BUF_INIT;
    int rc = mdb_dbi_open(from, "postings", 0, &hot);
    if (!rc) rc = mdb_dbi_flags(from, hot, &flags);
    if (!rc) {
        int crc = mdb_dbi_open(from, "postings_cold", 0, &cold);
        have_cold = crc == 0;
        if (crc && crc != MDB_NOTFOUND) rc = crc;
    }
    if (!rc) rc = mdb_cursor_open(from, hot, &hc);
    if (!rc && have_cold) rc = mdb_cursor_open(from, cold, &cc);
    if (!rc) rc = mdb_txn_begin(to, NULL, 0, &w.txn);
    if (!rc) rc = mdb_dbi_open(w.txn, "postings", MDB_CREATE | (flags & (MDB_DUPSORT |
                                                                       MDB_DUPFIXED)), &dhot);
    if (!rc) rc = mdb_dbi_open(w.txn, "postings_cold", MDB_CREATE, &w.dbi);
    if (!rc) rc = mdb_cursor_open(w.txn, w.dbi, &w.cur);
    MDB_val hk, hv, ck, cv;
    int hrc = rc ? MDB_NOTFOUND : mdb_cursor_get(hc, &hk, &hv, MDB_FIRST);
    int crc = rc || !have_cold ? MDB_NOTFOUND : mdb_cursor_get(cc, &ck, &cv, MDB_FIRST);
    while (!rc && (hrc == 0 || crc == 0)) {
        int order = hrc ? 1 : crc ? -1 : mdb_cmp(from, hot, &hk, &ck);
        MDB_val key = order <= 0 ? hk : ck;
        ids.n = 0;
        if ((order <= 0 && (rc = postings_dups(hc, &ids))) ||
            (order >= 0 && (rc = cold_postings_each(cv.mv_data, cv.mv_size, idset_push_cb,
                                                    &ids)))) {
            rc = rc == AG_ENOMEM ? ENOMEM : MDB_CORRUPTED;
            break;
        }
        idset_normalize(&ids);
        size_t n = 0;
        for (size_t i = 0; i < ids.n; i++)
            if (head_by_id(&s->head, ids.v[i])) ids.v[n++] = ids.v[i];
        if (n) {
            ag_buf_reset(&enc);
            if (cold_postings_encode(ids.v, n, &enc)) {
                rc = ENOMEM;
                break;
            }
            check.n = 0;
            rc = cold_postings_each(enc.data, enc.len, idset_push_cb, &check);
            if (rc == AG_ENOMEM) {
                rc = ENOMEM;
                break;
            }
            if (rc || check.n != n || memcmp(check.v, ids.v, n * sizeof *ids.v) != 0) {
                rc = MDB_CORRUPTED; /* the list must decode to what went in */
                break;
            }
            MDB_val v = {enc.len, enc.data};
            /* `key` points into the source's pages, valid while `from` is open */
            if ((rc = writer_put(&w, &key, &v))) break;
        }
        if (order <= 0) hrc = mdb_cursor_get(hc, &hk, &hv, MDB_NEXT_NODUP);
        if (order >= 0) crc = mdb_cursor_get(cc, &ck, &cv, MDB_NEXT);
    }
    if (!rc && hrc && hrc != MDB_NOTFOUND) rc = hrc;
    if (!rc && crc && crc != MDB_NOTFOUND) rc = crc;
    if (w.cur) mdb_cursor_close(w.cur);
    if (w.txn) {
        if (!rc) rc = mdb_txn_commit(w.txn);
        else mdb_txn_abort(w.txn);
    }
    if (hc) mdb_cursor_close(hc);
    if (cc) mdb_cursor_close(cc);
    free(ids.v);
    free(check.v);
    ag_buf_free(&enc);
    *written = w.n;
    return rc;
}

/* Entries of table `name` in a read transaction of env (SIZE_MAX when it cannot be read). */
static size_t table_entries(MDB_txn *t, const char *name)
{
    MDB_dbi d;
    MDB_stat st;
    return mdb_dbi_open(t, name, 0, &d) || mdb_stat(t, d, &st) ? SIZE_MAX : st.ms_entries;
}

/* Rewrites every named table of s->env into a new environment in file `path`, folding the
 * series labels and observer slots into cold groups and the postings into cold lists. */
static int repack(ag_store_t *s, const char *path, size_t map_size, size_t *tables)
{
    MDB_env *to = NULL;
    MDB_txn *from = NULL;
    MDB_cursor *names = NULL;
    MDB_dbi main_dbi;
    fold_t *fold = calloc(1, sizeof *fold);
    int rc = fold ? mdb_env_create(&to) : ENOMEM;
    if (!rc) rc = mdb_env_set_maxdbs(to, 32);
    if (!rc) rc = mdb_env_set_mapsize(to, map_size);
    /* No lock file (nobody else opens the copy) and no syncs until the single one at the end. */
    if (!rc) rc = mdb_env_open(to, path, MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC, 0644);
    if (!rc) rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &from);
    if (!rc) rc = mdb_dbi_open(from, NULL, 0, &main_dbi);
    if (!rc) rc = mdb_cursor_open(from, main_dbi, &names);
    MDB_val k, v;
    *tables = 0;
    int op = MDB_FIRST;
    while (!rc && (rc = mdb_cursor_get(names, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        char name[64];
        if (k.mv_size == 0 || k.mv_size >= sizeof name) { /* not a table of ours */
            rc = MDB_INCOMPATIBLE;
            break;
        }
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = 0;
        bool series = strcmp(name, "series") == 0, models = strcmp(name, "models") == 0;
        bool postings = strcmp(name, "postings") == 0;
        if (strcmp(name, "postings_cold") == 0) continue; /* merged with `postings` */
        fold->plen = models ? 1 : 0;
        fold->span = models ? GROUP_SLOT_IDS : GROUP_SERIES_IDS;
        fold->prefix[0] = SLOT_KEY_TAG;
        size_t n = 0;
        rc = postings ? copy_postings(s, from, to, &n)
                      : copy_table(from, to, name, series || models ? fold : NULL, &n);
        if (rc) break;
        MDB_txn *check;
        if ((rc = mdb_txn_begin(to, NULL, MDB_RDONLY, &check))) break;
        size_t copied = table_entries(check, postings ? "postings_cold" : name);
        if (postings && table_entries(check, "postings") != 0) copied = SIZE_MAX;
        mdb_txn_abort(check);
        /* The copy holds what was written; a table copied as it was, what the original holds. */
        if (copied != n ||
            (!series && !models && !postings && table_entries(from, name) != n)) {
            rc = MDB_CORRUPTED;
            break;
        }
        (*tables)++;
    }
    if (rc == MDB_NOTFOUND) rc = 0;
    if (names) mdb_cursor_close(names);
    if (from) mdb_txn_abort(from);
    if (!rc) rc = mdb_env_sync(to, 1);
    if (to) mdb_env_close(to);
    if (fold) {
        ag_buf_free(&fold->raw);
        ag_buf_free(&fold->out);
        ag_buf_free(&fold->craw);
        free(fold->gm);
        free(fold->check);
        free(fold);
    }
    return rc;
}

bool store_compact_copy(ag_store_t *s)
{
    MDB_envinfo info;
    MDB_stat st;
    size_t nfree;
    if (mdb_env_info(s->env, &info) || mdb_env_stat(s->env, &st) || free_pages(s->env, &nfree))
        return false;
    size_t pages = info.me_last_pgno + 1, bytes = pages * st.ms_psize;
    /* Bounded so that a stop never takes long: at most COMPACT_MAX_LIVE bytes are copied. */
    if (bytes < s->opts.compact_min_bytes || (pages - nfree) * st.ms_psize > COMPACT_MAX_LIVE)
        return false;
    char p[4200];
    compact_path(s, p, sizeof p, COMPACT_NAME);
    unlink(p);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    size_t tables = 0;
    int rc = repack(s, p, info.me_mapsize, &tables);
    struct stat fst;
    if (!rc && stat(p, &fst) != 0) rc = errno;
    if (rc) {
        AG_WARN("\"cannot compact the data file, keeping it as it is\" err=\"%s\"",
                mdb_strerror(rc));
        unlink(p);
        return false;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    AG_INFO("\"compacted the data file\" bytes_before=%zu bytes_after=%lld free_pages=%zu "
            "tables=%zu seconds=%.3f",
            bytes, (long long)fst.st_size, nfree, tables,
            (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
    return true;
}

void store_compact_install(const ag_store_t *s)
{
    char from[4200], to[4200];
    compact_path(s, from, sizeof from, COMPACT_NAME);
    compact_path(s, to, sizeof to, "data.mdb");
    if (rename(from, to) != 0) {
        AG_WARN("\"cannot install the compacted data file, keeping the old one\" err=\"%s\"",
                strerror(errno));
        unlink(from);
        return;
    }
    int dfd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0)
            AG_WARN("\"cannot sync the data directory after compaction\" err=\"%s\"",
                    strerror(errno));
        close(dfd);
    }
}
