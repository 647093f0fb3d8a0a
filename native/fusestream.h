// fusestream's own native code, compiled into fuse-native's binding (patches/fuse-native+2.2.6.patch
// only adds these files to binding.gyp and calls the functions below). docs/FUSE-BINDING.md.
#ifndef FUSESTREAM_H
#define FUSESTREAM_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 29
#endif

#include <fuse.h>
#include <node_api.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

// fast-reads.c: reads the FUSE thread answers with a pread of the temp file, never entering
// JavaScript, while the file's gate (agent/store/fast-read-gate.ts) lets them through.

// open succeeded and JavaScript handed over { fd, state }: give the handle a slot (in fh's high bits).
void fs_fast_attach(napi_env env, struct fuse_file_info *info, napi_value fd, napi_value state);
// release, on the JavaScript thread: the handle's slot goes once no read is using it.
void fs_fast_release(napi_env env, struct fuse_file_info *info);
// Any FUSE thread: the read's byte count, or -1 when JavaScript must answer it.
int fs_fast_read(struct fuse_file_info *info, char *buf, size_t len, off_t offset);
// The store closed (its gate shut and drained): close the binding's descriptor of its temp file now,
// so a dropped file's blocks are freed while programs still hold it open.
void fs_fast_retire(napi_env env, napi_value state);
// open's answer about the kernel's cached pages of the file (keep them, or drop them).
void fs_open_cache(struct fuse_file_info *info, int keep_cache);

// metadata.c: getattr and readdir answered by the FUSE thread from a copy of the catalogue.

typedef struct fs_meta fs_meta_t;

fs_meta_t *fs_meta_create(void);
// 0 or -errno when answered from the copy; 1 when there is no copy and JavaScript must answer.
int fs_meta_getattr(fs_meta_t *meta, const char *path, struct stat *st);
int fs_meta_readdir(fs_meta_t *meta, const char *path, void *buf, fuse_fill_dir_t filler);
// Swaps in a copy built from `data` (NULL: none). 0 when `data` could not be built (then there is none).
int fs_meta_set(fs_meta_t *meta, const uint8_t *data, size_t len);
uint64_t fs_meta_answers(fs_meta_t *meta);

#endif
