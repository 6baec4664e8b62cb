/* A connector whose decode() blocks: until the file named in its config ("release_file") exists,
 * at most 120 s (tests must end). The host must keep serving the other feeds, answer further
 * pushes to this feed with 503 instead of hanging, and report the feed as failed (blocked). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "firehub/plugin_abi.h"

typedef struct blocking {
  char release_file[512];
} blocking;

static blocking instances[16];
static int used;

static fh_status create_fn(const char* c, size_t n, void** i, char* e, size_t el) {
  if (used >= 16) {
    snprintf(e, el, "too many instances");
    return FH_ERROR;
  }
  blocking* b = &instances[used++];
  b->release_file[0] = '\0';
  /* {"release_file":"/path"}: the value between the third and fourth quote. */
  const char* key = "\"release_file\"";
  const char* k = memmem(c, n, key, strlen(key));
  if (k) {
    const char* start = strchr(k + strlen(key), '"');
    const char* end = start ? strchr(start + 1, '"') : NULL;
    if (start && end && (size_t)(end - start - 1) < sizeof b->release_file) {
      memcpy(b->release_file, start + 1, (size_t)(end - start - 1));
      b->release_file[end - start - 1] = '\0';
    }
  }
  *i = b;
  return FH_OK;
}

static fh_status decode_fn(void* i, const fh_decode_input* in, const fh_host_callbacks* cb,
                           void* ctx, char* e, size_t el) {
  (void)in;
  (void)cb;
  (void)ctx;
  blocking* b = (blocking*)i;
  for (int waited = 0; waited < 1200; ++waited) {
    if (b->release_file[0] && access(b->release_file, F_OK) == 0) break;
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  snprintf(e, el, "released");
  return FH_ERROR;
}

static void destroy_fn(void* i) { (void)i; }

static const fh_connector_descriptor descriptor = {FH_ABI_MAJOR,
                                                   FH_ABI_MINOR,
                                                   sizeof(fh_connector_descriptor),
                                                   "firehub.connector.blocking",
                                                   "0.0.1",
                                                   "weather",
                                                   "blocks in decode",
                                                   "{}",
                                                   create_fn,
                                                   decode_fn,
                                                   destroy_fn};

static const fh_connector_descriptor* entry(void) { return &descriptor; }

__attribute__((visibility("default"))) const void* firehub_connector_v1 = (const void*)&entry;
