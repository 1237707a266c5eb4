/* arena.c - bump allocation in malloc'd blocks, released all at once (see ag_arena.h).
 *
 * Requests larger than half a block get a block of their own, so a large uncompressed body
 * does not waste the tail of a regular block. The cap counts bytes obtained from malloc.
 */
#include "ag_arena.h"

#include <stdint.h>
#include <stdlib.h>

typedef struct block {
    struct block *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char mem[];
} block_t;

struct ag_arena {
    block_t *head;
    size_t block_size;
    size_t cap;
    size_t total;
};

ag_arena_t *ag_arena_new(size_t block_size, size_t cap)
{
    ag_arena_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->block_size = block_size < 256 ? 256 : block_size;
    a->cap = cap;
    return a;
}

void ag_arena_free(ag_arena_t *a)
{
    if (!a) return;
    block_t *b = a->head;
    while (b) {
        block_t *n = b->next;
        free(b);
        b = n;
    }
    free(a);
}

static block_t *new_block(ag_arena_t *a, size_t size)
{
    if (size > SIZE_MAX - sizeof(block_t)) return NULL;
    size_t bytes = sizeof(block_t) + size;
    if (a->cap && (bytes > a->cap || a->total > a->cap - bytes)) return NULL;
    block_t *b = malloc(bytes);
    if (!b) return NULL;
    b->size = size;
    b->used = 0;
    a->total += bytes;
    return b;
}

void *ag_arena_alloc(ag_arena_t *a, size_t n)
{
    if (n == 0) n = 1;
    if (n > SIZE_MAX - 15) return NULL;
    n = (n + 15) & ~(size_t)15;
    block_t *b = a->head;
    if (b && b->size - b->used >= n) {
        void *p = b->mem + b->used;
        b->used += n;
        return p;
    }
    if (n > a->block_size / 2) {
        /* A dedicated block, linked behind the current one so its free tail stays usable. */
        block_t *big = new_block(a, n);
        if (!big) return NULL;
        big->used = n;
        if (b) {
            big->next = b->next;
            b->next = big;
        } else {
            big->next = NULL;
            a->head = big;
        }
        return big->mem;
    }
    block_t *nb = new_block(a, a->block_size);
    if (!nb) return NULL;
    nb->next = a->head;
    a->head = nb;
    nb->used = n;
    return nb->mem;
}

size_t ag_arena_used(const ag_arena_t *a) { return a->total; }
