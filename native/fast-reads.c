// Reads the FUSE thread answers itself, never entering JavaScript (docs/FUSE-BINDING.md).
//
// Each store has a state block shared with JavaScript (agent/store/fast-read-gate.ts). While
// `enabled` is set, a read that ends at or before `end` is a pread of the binding's own
// duplicate of the store's temp file descriptor. JavaScript shuts the gate and waits for
// `in_flight` to reach zero before it drops a byte or closes the file.
//
// Each open handle gets a slot; the slot's number and generation ride in the high 32 bits of
// fh, which JavaScript never sees. On macOS a release can reach the daemon while a read of the
// same handle is still being served (page-ins use a handle without holding a reference), so a
// slot counts the reads using it: release marks it dead and bumps its generation, and it is
// freed (its reference dropped, its number reused) only once no read uses it.
//
// Threads: slots are taken, freed and swept only on the JavaScript thread (open's answer,
// release, retire); FUSE threads only count themselves in and out of a slot and a block.

#include "fusestream.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

// Shared with JavaScript byte for byte (FastReadGate.STATE_BYTES).
typedef struct {
  int32_t enabled;
  int32_t in_flight;
  int64_t reads;
  int64_t bytes;
  int64_t end;
  int32_t fd_plus_one;  // the binding's duplicate, shared by the store's handles; 0: none (zeroed memory means none)
  int32_t handles;      // slots attached to this block and not yet freed (JavaScript thread only)
  int32_t retired;      // the store closed: no new handle gets a slot
  int32_t unused;
} fast_state_t;

typedef struct {
  fast_state_t *state;  // NULL while free
  napi_ref state_ref;   // keeps the block's memory alive while a slot points at it
  uint32_t gen;         // bumped at release: a stale fh never matches a reused slot
  int32_t users;        // reads between their check of this slot and their last use of it
  int32_t dead;         // released, freed once `users` is zero
} fast_slot_t;

// 15 bits of slot number (plus one) and 16 bits of generation fit in fh's high 32 bits.
#define FAST_SLOTS 32768

static fast_slot_t slots[FAST_SLOTS];
static uint32_t free_list[FAST_SLOTS];
static uint32_t free_count = 0;
static uint32_t used_count = 0;
// Released slots a read was still using; freed by a later sweep.
static uint32_t pending[FAST_SLOTS];
static uint32_t pending_count = 0;

static int decode (uint64_t fh, uint32_t *idx, uint32_t *gen) {
  uint32_t hi = (uint32_t) (fh >> 32);
  uint32_t slot1 = hi & 0xffff;
  if (slot1 == 0 || slot1 > FAST_SLOTS) return 0;
  *idx = slot1 - 1;
  *gen = hi >> 16;
  return 1;
}

static void slot_free (napi_env env, uint32_t idx) {
  fast_slot_t *s = &slots[idx];
  fast_state_t *st = s->state;
  if (--st->handles == 0) {
    int32_t fd1 = __atomic_exchange_n(&st->fd_plus_one, 0, __ATOMIC_SEQ_CST);
    if (fd1 > 0) close(fd1 - 1);
  }
  napi_delete_reference(env, s->state_ref);
  s->state_ref = NULL;
  __atomic_store_n(&s->state, NULL, __ATOMIC_SEQ_CST);
  __atomic_store_n(&s->dead, 0, __ATOMIC_SEQ_CST);
  free_list[free_count++] = idx;
}

static void sweep_pending (napi_env env) {
  uint32_t kept = 0;
  for (uint32_t i = 0; i < pending_count; i++) {
    uint32_t idx = pending[i];
    if (__atomic_load_n(&slots[idx].users, __ATOMIC_SEQ_CST) == 0) slot_free(env, idx);
    else pending[kept++] = idx;
  }
  pending_count = kept;
}

static fast_state_t * state_of (napi_env env, napi_value value) {
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, value, &data, &len) != napi_ok || len < sizeof(fast_state_t)) return NULL;
  if (((uintptr_t) data) % sizeof(int64_t) != 0) return NULL;
  return (fast_state_t *) data;
}

void fs_fast_attach (napi_env env, struct fuse_file_info *info, napi_value fd_value, napi_value state_value) {
  sweep_pending(env);
  int32_t fd;
  if (napi_get_value_int32(env, fd_value, &fd) != napi_ok || fd < 0) return;
  fast_state_t *st = state_of(env, state_value);
  if (st == NULL || st->retired) return;

  uint32_t idx;
  if (free_count > 0) idx = free_list[--free_count];
  else if (used_count < FAST_SLOTS) idx = used_count++;
  else return; // every slot taken: this handle's reads all go to JavaScript

  if (__atomic_load_n(&st->fd_plus_one, __ATOMIC_SEQ_CST) == 0) {
    // One duplicate per store, not per handle: a thousand open handles cost one descriptor.
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) {
      free_list[free_count++] = idx;
      return;
    }
    __atomic_store_n(&st->fd_plus_one, own + 1, __ATOMIC_SEQ_CST);
  }
  st->handles++;
  fast_slot_t *s = &slots[idx];
  napi_create_reference(env, state_value, 1, &(s->state_ref));
  __atomic_store_n(&s->state, st, __ATOMIC_SEQ_CST);
  uint32_t hi = ((s->gen & 0xffff) << 16) | (idx + 1);
  info->fh = (info->fh & 0xffffffffULL) | ((uint64_t) hi << 32);
}

void fs_fast_release (napi_env env, struct fuse_file_info *info) {
  uint32_t idx, gen;
  if (!decode(info->fh, &idx, &gen)) return;
  info->fh &= 0xffffffffULL;
  fast_slot_t *s = &slots[idx];
  if (s->state == NULL || __atomic_load_n(&s->dead, __ATOMIC_SEQ_CST) || (s->gen & 0xffff) != gen) return;
  // Dead first, then look at users; a read counts itself in first, then looks at dead. Both
  // sequentially consistent: either this sees the read, or the read sees the slot dead.
  __atomic_store_n(&s->dead, 1, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&s->gen, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&s->users, __ATOMIC_SEQ_CST) == 0) slot_free(env, idx);
  else pending[pending_count++] = idx;
  sweep_pending(env);
}

int fs_fast_read (struct fuse_file_info *info, char *buf, size_t len, off_t offset) {
  uint32_t idx, gen;
  if (!decode(info->fh, &idx, &gen)) return -1;
  fast_slot_t *s = &slots[idx];
  int res = -1;
  __atomic_add_fetch(&s->users, 1, __ATOMIC_SEQ_CST);
  fast_state_t *st = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST);
  if (st != NULL && !__atomic_load_n(&s->dead, __ATOMIC_SEQ_CST) && (__atomic_load_n(&s->gen, __ATOMIC_SEQ_CST) & 0xffff) == gen) {
    // Announce the read before looking at the gate; JavaScript shuts the gate before it looks
    // at in_flight. Both sequentially consistent: one of the two always sees the other.
    __atomic_add_fetch(&st->in_flight, 1, __ATOMIC_SEQ_CST);
    int fd = __atomic_load_n(&st->fd_plus_one, __ATOMIC_SEQ_CST) - 1; // read once: the same descriptor throughout
    if (fd >= 0 && __atomic_load_n(&st->enabled, __ATOMIC_SEQ_CST) != 0 &&
        (int64_t) offset + (int64_t) len <= __atomic_load_n(&st->end, __ATOMIC_SEQ_CST)) {
      size_t done = 0;
      int failed = 0;
      while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, offset + (off_t) done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { failed = 1; break; }
        if (n == 0) break; // end of file: a short read, as the kernel expects there
        done += (size_t) n;
      }
      if (!failed) {
        __atomic_add_fetch(&st->reads, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&st->bytes, (int64_t) done, __ATOMIC_RELAXED);
        res = (int) done;
      }
    }
    __atomic_sub_fetch(&st->in_flight, 1, __ATOMIC_SEQ_CST);
  }
  __atomic_sub_fetch(&s->users, 1, __ATOMIC_SEQ_CST);
  return res;
}

void fs_fast_retire (napi_env env, napi_value state_value) {
  fast_state_t *st = state_of(env, state_value);
  if (st == NULL) return;
  st->retired = 1;
  // JavaScript shut the gate and drained in_flight first: no read will touch the descriptor again.
  int32_t fd1 = __atomic_exchange_n(&st->fd_plus_one, 0, __ATOMIC_SEQ_CST);
  if (fd1 > 0) close(fd1 - 1);
  sweep_pending(env);
}

void fs_open_cache (struct fuse_file_info *info, int keep_cache) {
  info->keep_cache = keep_cache != 0;
#ifdef __APPLE__
  // macFUSE drops a file's cached pages (and attributes) at open only when told to: keep_cache
  // = 0 alone leaves a changed file's old pages visible there (its own auto_cache does this).
  if (!keep_cache) {
    info->purge_ubc = 1;
    info->purge_attr = 1;
  }
#endif
}
