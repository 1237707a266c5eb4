/* compact.c - giving the data file's free space back to the filesystem at a clean shutdown.
 *
 * LMDB reuses freed pages but never shrinks data.mdb, so the file keeps its high-water mark: the
 * WAL grows to storage's checkpoint threshold (64 MiB) before a checkpoint frees it, and
 * retention frees whole ranges of chunks. When the store closes cleanly and at least half of the
 * file is free (and the file is at least `compact_min_bytes`, and at most 1 GiB of it is in use,
 * so that stopping stays quick; larger files can be compacted offline with `mdb_copy -c`), LMDB
 * writes a compacted copy of every table (mdb_env_copyfd2 with MDB_CP_COMPACT: live pages only,
 * renumbered) to data.mdb.compact, which is fsynced, then renamed over data.mdb once the
 * environment is closed, and the directory is fsynced. A crash before the rename leaves the old file as it was (the
 * stale copy is deleted at the next open); after it, the new file is complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

bool store_compact_copy(ag_store_t *s)
{
    MDB_envinfo info;
    MDB_stat st;
    size_t nfree;
    if (mdb_env_info(s->env, &info) || mdb_env_stat(s->env, &st) || free_pages(s->env, &nfree))
        return false;
    size_t pages = info.me_last_pgno + 1, bytes = pages * st.ms_psize;
    /* Bounded so that a stop never takes long: at most COMPACT_MAX_LIVE bytes are copied. */
    if (nfree * 2 < pages || bytes < s->opts.compact_min_bytes ||
        (pages - nfree) * st.ms_psize > COMPACT_MAX_LIVE)
        return false;
    char p[4200];
    compact_path(s, p, sizeof p, COMPACT_NAME);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    int rc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
    if (!rc && fsync(fd) != 0) rc = errno;
    if (close(fd) != 0 && !rc) rc = errno;
    if (rc) {
        AG_WARN("\"cannot compact the data file, keeping it as it is\" err=\"%s\"",
                mdb_strerror(rc));
        unlink(p);
        return false;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    AG_INFO("\"compacted the data file\" pages=%zu free=%zu seconds=%.3f", pages, nfree,
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
