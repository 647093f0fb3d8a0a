// getattr and readdir the FUSE thread answers itself from a copy of the catalogue that
// JavaScript hands over (agent/fs/metadata-snapshot.ts), so listing the mount never waits for
// the event loop. JavaScript drops the copy in the same turn as any change to the catalogue and
// hands over a new one a turn later; while there is none, JavaScript answers.
//
// The copy, as JavaScript encodes it (little-endian): u32 count, then per node: u8 is_dir,
// 3 bytes unused, u32 path_bytes, f64 size, f64 mtime_ms, the path ("/", "/a/b.bin").
//
// Swapping: a reader holds the lock only to take a reference to the current copy, never for a
// whole listing, so overlapping listings of a large folder cannot starve JavaScript's swap (which
// runs on the event loop); the last reference frees an old copy.

#include "fusestream.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Bytes of a node before its path, and the least a node takes (a path of one byte).
#define NODE_HEAD 24
#define NODE_MIN (NODE_HEAD + 1)

typedef struct {
  const char *path;     // NUL-terminated, in the table's blob
  uint32_t path_len;
  const char *name;     // the last component, for readdir
  int is_dir;
  uint64_t size;
  uint64_t mtime_ms;
  uint32_t first_child; // into children
  uint32_t child_count;
} entry_t;

typedef struct {
  int32_t refs;         // the fs_meta's own, plus one per reader using it
  entry_t *entries;
  uint32_t count;
  int32_t *slots;       // open addressing by path hash; -1 is empty
  uint32_t mask;
  uint32_t *children;   // entry indices, grouped by parent
  char *blob;
} table_t;

struct fs_meta {
  pthread_mutex_t lock; // guards `current` (the pointer, not the table)
  table_t *current;
  uint64_t answers;
};

static uint32_t hash (const char *s, uint32_t len) {
  uint32_t h = 2166136261u;
  for (uint32_t i = 0; i < len; i++) h = (h ^ (uint8_t) s[i]) * 16777619u;
  return h;
}

static int32_t find (const table_t *t, const char *path, uint32_t len) {
  for (uint32_t i = hash(path, len) & t->mask;; i = (i + 1) & t->mask) {
    int32_t e = t->slots[i];
    if (e < 0) return -1;
    const entry_t *m = &t->entries[e];
    if (m->path_len == len && memcmp(m->path, path, len) == 0) return e;
  }
}

static void table_free (table_t *t) {
  if (t == NULL) return;
  free(t->entries);
  free(t->slots);
  free(t->children);
  free(t->blob);
  free(t);
}

// A double from JavaScript as a non-negative integer: negative (a Last-Modified before 1970),
// NaN or out of range become 0, which converting would leave undefined.
static uint64_t clamp_u64 (double v) {
  return v > 0 && v < 9.0e18 ? (uint64_t) v : 0;
}

// NULL when the encoding is not well formed (then JavaScript keeps answering).
static table_t * build (const uint8_t *data, size_t len) {
  uint32_t count;
  if (len < 4) return NULL;
  memcpy(&count, data, 4);
  // Checked before any allocation: a count the buffer cannot hold is malformed, not a loop.
  if ((uint64_t) count > (len - 4) / NODE_MIN) return NULL;
  table_t *t = calloc(1, sizeof(table_t));
  if (t == NULL) return NULL;
  t->refs = 1;
  t->count = count;
  t->entries = calloc(count > 0 ? count : 1, sizeof(entry_t));
  t->blob = malloc(len); // paths plus their NULs fit in the encoding's own size
  uint64_t nslots = 16;
  while (nslots < (uint64_t) count * 2) nslots <<= 1;
  t->mask = (uint32_t) (nslots - 1);
  t->slots = malloc(sizeof(int32_t) * nslots);
  t->children = calloc(count > 0 ? count : 1, sizeof(uint32_t));
  int32_t *parent = malloc(sizeof(int32_t) * (count > 0 ? count : 1));
  if (t->entries == NULL || t->blob == NULL || t->slots == NULL || t->children == NULL || parent == NULL) goto fail;
  memset(t->slots, 0xff, sizeof(int32_t) * nslots);

  size_t at = 4, blob_at = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (len - at < NODE_HEAD) goto fail;
    uint32_t path_len;
    double size, mtime;
    memcpy(&path_len, data + at + 4, 4);
    memcpy(&size, data + at + 8, 8);
    memcpy(&mtime, data + at + 16, 8);
    entry_t *m = &t->entries[i];
    m->is_dir = data[at] != 0;
    m->size = clamp_u64(size);
    m->mtime_ms = clamp_u64(mtime);
    at += NODE_HEAD;
    if (path_len == 0 || path_len > len - at || data[at] != '/') goto fail;
    if (memchr(data + at, '\0', path_len) != NULL) goto fail;
    memcpy(t->blob + blob_at, data + at, path_len);
    t->blob[blob_at + path_len] = '\0';
    m->path = t->blob + blob_at;
    m->path_len = path_len;
    m->name = strrchr(m->path, '/') + 1;
    blob_at += path_len + 1;
    at += path_len;
    if (find(t, m->path, path_len) >= 0) goto fail;
    uint32_t slot = hash(m->path, path_len) & t->mask;
    while (t->slots[slot] >= 0) slot = (slot + 1) & t->mask;
    t->slots[slot] = (int32_t) i;
  }

  // Children, grouped by parent: count, place the groups, fill them.
  for (uint32_t i = 0; i < count; i++) {
    entry_t *m = &t->entries[i];
    uint32_t parent_len = (uint32_t) (m->name - m->path) - 1;
    if (m->path_len == 1) parent[i] = -1; // the root
    else parent[i] = find(t, m->path, parent_len == 0 ? 1 : parent_len);
    if (parent[i] >= 0) t->entries[parent[i]].child_count++;
  }
  uint32_t next = 0;
  for (uint32_t i = 0; i < count; i++) {
    t->entries[i].first_child = next;
    next += t->entries[i].child_count;
    t->entries[i].child_count = 0;
  }
  for (uint32_t i = 0; i < count; i++) {
    if (parent[i] < 0) continue;
    entry_t *p = &t->entries[parent[i]];
    t->children[p->first_child + p->child_count++] = i;
  }
  free(parent);
  return t;

fail:
  free(parent);
  table_free(t);
  return NULL;
}

static void unref (table_t *t) {
  if (t != NULL && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0) table_free(t);
}

// The current copy with a reference the caller gives back (unref), or NULL.
static table_t * take (fs_meta_t *meta) {
  pthread_mutex_lock(&meta->lock);
  table_t *t = meta->current;
  if (t != NULL) __atomic_add_fetch(&t->refs, 1, __ATOMIC_ACQ_REL);
  pthread_mutex_unlock(&meta->lock);
  return t;
}

static void fill_stat (const entry_t *m, struct stat *st) {
  memset(st, 0, sizeof(struct stat));
  st->st_mode = m->is_dir ? (S_IFDIR | 0555) : (S_IFREG | 0444);
  st->st_uid = getuid();
  st->st_gid = getgid();
  st->st_size = (off_t) m->size;
  st->st_nlink = m->is_dir ? 2 : 1;
  st->st_blksize = m->is_dir ? 0 : 4096;
  st->st_blocks = m->is_dir ? 0 : (blkcnt_t) ((m->size + 511) / 512);
  struct timespec ts = { .tv_sec = (time_t) (m->mtime_ms / 1000), .tv_nsec = (long) (m->mtime_ms % 1000) * 1000000 };
#ifdef __APPLE__
  st->st_atimespec = ts;
  st->st_mtimespec = ts;
  st->st_ctimespec = ts;
#else
  st->st_atim = ts;
  st->st_mtim = ts;
  st->st_ctim = ts;
#endif
}

fs_meta_t * fs_meta_create (void) {
  fs_meta_t *meta = calloc(1, sizeof(fs_meta_t));
  if (meta != NULL) pthread_mutex_init(&meta->lock, NULL);
  return meta;
}

int fs_meta_getattr (fs_meta_t *meta, const char *path, struct stat *st) {
  table_t *t = meta == NULL ? NULL : take(meta);
  if (t == NULL) return 1;
  int32_t e = find(t, path, (uint32_t) strlen(path));
  if (e >= 0) fill_stat(&t->entries[e], st);
  __atomic_add_fetch(&meta->answers, 1, __ATOMIC_RELAXED);
  unref(t);
  return e >= 0 ? 0 : -ENOENT;
}

int fs_meta_readdir (fs_meta_t *meta, const char *path, void *buf, fuse_fill_dir_t filler) {
  table_t *t = meta == NULL ? NULL : take(meta);
  if (t == NULL) return 1;
  int res;
  int32_t e = find(t, path, (uint32_t) strlen(path));
  if (e < 0) {
    res = -ENOENT;
  } else if (!t->entries[e].is_dir) {
    res = -ENOTDIR;
  } else {
    const entry_t *d = &t->entries[e];
    res = 0;
    if (filler(buf, ".", NULL, 0) == 0 && filler(buf, "..", NULL, 0) == 0) {
      for (uint32_t i = 0; i < d->child_count; i++) {
        if (filler(buf, t->entries[t->children[d->first_child + i]].name, NULL, 0) != 0) break;
      }
    }
  }
  __atomic_add_fetch(&meta->answers, 1, __ATOMIC_RELAXED);
  unref(t);
  return res;
}

int fs_meta_set (fs_meta_t *meta, const uint8_t *data, size_t len) {
  table_t *next = data == NULL ? NULL : build(data, len);
  pthread_mutex_lock(&meta->lock);
  table_t *old = meta->current;
  meta->current = next;
  pthread_mutex_unlock(&meta->lock);
  unref(old); // freed now, or by the last reader still using it
  return data == NULL || next != NULL;
}

uint64_t fs_meta_answers (fs_meta_t *meta) {
  return __atomic_load_n(&meta->answers, __ATOMIC_RELAXED);
}
