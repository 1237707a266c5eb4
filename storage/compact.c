/* compact.c - giving the data file's free space back to the filesystem at a clean shutdown.
 *
 * LMDB reuses freed pages but never shrinks data.mdb, so the file keeps its high-water mark: the
 * WAL grows to storage's checkpoint threshold (64 MiB) before a checkpoint frees it, and
 * retention frees whole ranges of chunks. Its B-trees also stay as their last writes left them:
 * a page split in the middle leaves two half-full pages, and records that were rewritten
 * smaller (open chunks replaced by packed ones) leave gaps. When the store closes cleanly, the
 * file is at least `compact_min_bytes` and at most 1 GiB of it is in use (so that stopping
 * stays quick; larger files can be compacted offline with `mdb_copy -c`), every table is
 * rewritten in key order into a new environment in data.mdb.compact (MDB_APPEND, so every page
 * but a table's last is full), the copy's entry counts are checked against the original's, the
 * file is fsynced, and it is renamed over data.mdb once the original environment is closed; then
 * the directory is fsynced. A crash before the rename leaves the old file as it was (the stale
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

/* Copies table `name` of `from` (read transaction) into `to`'s environment, committing every
 * COPY_TXN_ENTRIES entries so that the copy's dirty pages stay bounded. *count gets the number
 * of entries copied. */
#define COPY_TXN_ENTRIES 65536
static int copy_table(MDB_txn *from, MDB_env *to, const char *name, size_t *count)
{
    MDB_dbi src, dst;
    unsigned int flags;
    MDB_txn *w = NULL;
    MDB_cursor *rc_cur = NULL, *wc = NULL;
    int rc = mdb_dbi_open(from, name, 0, &src);
    if (!rc) rc = mdb_dbi_flags(from, src, &flags);
    if (!rc) rc = mdb_cursor_open(from, src, &rc_cur);
    if (!rc) rc = mdb_txn_begin(to, NULL, 0, &w);
    if (!rc) rc = mdb_dbi_open(w, name, MDB_CREATE | (flags & (MDB_DUPSORT | MDB_DUPFIXED |
                                                                MDB_INTEGERKEY | MDB_REVERSEKEY |
                                                                MDB_INTEGERDUP | MDB_REVERSEDUP)),
                               &dst);
    if (!rc) rc = mdb_cursor_open(w, dst, &wc);
    MDB_val k, v, last = {0, NULL};
    size_t n = 0;
    bool dup = flags & MDB_DUPSORT;
    int op = MDB_FIRST;
    while (!rc && (rc = mdb_cursor_get(rc_cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        /* A repeated key of a sorted-duplicates table appends to its list; every other put
         * appends at the end of the table. */
        bool same = dup && last.mv_data && last.mv_size == k.mv_size &&
                    memcmp(last.mv_data, k.mv_data, k.mv_size) == 0;
        rc = mdb_cursor_put(wc, &k, &v, same ? MDB_APPENDDUP : MDB_APPEND);
        if (rc) break;
        last = k; /* the read transaction's pages stay valid while it is open */
        if (++n % COPY_TXN_ENTRIES == 0) {
            mdb_cursor_close(wc);
            wc = NULL;
            rc = mdb_txn_commit(w);
            w = NULL;
            if (!rc) rc = mdb_txn_begin(to, NULL, 0, &w);
            if (!rc) rc = mdb_cursor_open(w, dst, &wc);
        }
    }
    if (rc == MDB_NOTFOUND) rc = 0;
    if (wc) mdb_cursor_close(wc);
    if (w) {
        if (!rc) rc = mdb_txn_commit(w);
        else mdb_txn_abort(w);
    }
    if (rc_cur) mdb_cursor_close(rc_cur);
    *count = n;
    return rc;
}

/* Entries of table `name` in a read transaction of env (SIZE_MAX when it cannot be read). */
static size_t table_entries(MDB_txn *t, const char *name)
{
    MDB_dbi d;
    MDB_stat st;
    return mdb_dbi_open(t, name, 0, &d) || mdb_stat(t, d, &st) ? SIZE_MAX : st.ms_entries;
}

/* Rewrites every named table of s->env into a new environment in file `path`. */
static int repack(ag_store_t *s, const char *path, size_t map_size, size_t *tables)
{
    MDB_env *to = NULL;
    MDB_txn *from = NULL;
    MDB_cursor *names = NULL;
    MDB_dbi main_dbi;
    int rc = mdb_env_create(&to);
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
        size_t n = 0;
        if ((rc = copy_table(from, to, name, &n))) break;
        MDB_txn *check;
        if ((rc = mdb_txn_begin(to, NULL, MDB_RDONLY, &check))) break;
        size_t copied = table_entries(check, name);
        mdb_txn_abort(check);
        if (table_entries(from, name) != n || copied != n) {
            rc = MDB_CORRUPTED; /* the copy must hold exactly what the original holds */
            break;
        }
        (*tables)++;
    }
    if (rc == MDB_NOTFOUND) rc = 0;
    if (names) mdb_cursor_close(names);
    if (from) mdb_txn_abort(from);
    if (!rc) rc = mdb_env_sync(to, 1);
    if (to) mdb_env_close(to);
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
