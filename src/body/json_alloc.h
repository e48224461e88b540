/*
 * json_alloc.h - the per-thread block cache for jansson (json_alloc.c);
 * internal to tern.
 */
#ifndef TERN_BODY_JSON_ALLOC_H
#define TERN_BODY_JSON_ALLOC_H

/* Hands jansson the caching malloc/free, if it still uses malloc and free
 * (not under AddressSanitizer).  Call before jansson allocates on other
 * threads; tern_app_new does. */
void tern__json_alloc_install(void);

/* Frees the blocks the calling thread keeps (tern_app_free does). */
void tern__json_alloc_drain(void);

#endif /* TERN_BODY_JSON_ALLOC_H */
