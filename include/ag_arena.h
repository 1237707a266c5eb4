/* ag_arena.h - a bump allocator for per-request memory.
 *
 * One arena per request: the remote-write decoder allocates the uncompressed body, the protobuf
 * structures and every label string from it, and the whole request is released at once by
 * ag_arena_free. Individual allocations are never freed. An optional byte cap turns a hostile
 * request into AG_ENOMEM-style NULL returns instead of unbounded growth.
 */
#ifndef AG_ARENA_H
#define AG_ARENA_H

#include <stddef.h>

typedef struct ag_arena ag_arena_t;

/* Creates an arena whose blocks are at least `block_size` bytes and whose total size never
 * exceeds `cap` bytes (0 = no cap). Returns NULL when out of memory. */
ag_arena_t *ag_arena_new(size_t block_size, size_t cap);
/* Frees every block; NULL is a no-op. */
void ag_arena_free(ag_arena_t *a);
/* 16-byte aligned memory valid until ag_arena_free, or NULL (out of memory or over the cap). */
void *ag_arena_alloc(ag_arena_t *a, size_t n);
/* Total bytes obtained from malloc so far. */
size_t ag_arena_used(const ag_arena_t *a);

#endif
