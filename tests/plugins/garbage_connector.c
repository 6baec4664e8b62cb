/* A connector that returns garbage: bytes that are not a firehub.v1.Record, and a well-formed
 * record of another domain than it declares. The host must dead-letter both, mark the feed failed
 * and keep serving everything else. */
#include <string.h>

#include "firehub/plugin_abi.h"

static int instance_tag;

static fh_status create_fn(const char* c, size_t n, void** i, char* e, size_t el) {
  (void)c;
  (void)n;
  (void)e;
  (void)el;
  *i = &instance_tag;
  return FH_OK;
}

static fh_status decode_fn(void* i, const fh_decode_input* in, const fh_host_callbacks* cb,
                           void* ctx, char* e, size_t el) {
  (void)i;
  (void)e;
  (void)el;
  static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x13, 0x37};
  cb->emit(ctx, garbage, sizeof garbage);
  /* Record{domain: "police"} (field 4, length-delimited) from a connector of domain "weather". */
  static const uint8_t other_domain[] = {0x22, 0x06, 'p', 'o', 'l', 'i', 'c', 'e'};
  cb->emit(ctx, other_domain, sizeof other_domain);
  /* And the input itself, as if it were a record. */
  cb->emit(ctx, in->data, in->len);
  return FH_OK;
}

static void destroy_fn(void* i) { (void)i; }

static const fh_connector_descriptor descriptor = {FH_ABI_MAJOR,
                                                   FH_ABI_MINOR,
                                                   sizeof(fh_connector_descriptor),
                                                   "firehub.connector.garbage",
                                                   "0.0.1",
                                                   "weather",
                                                   "emits garbage",
                                                   "{}",
                                                   create_fn,
                                                   decode_fn,
                                                   destroy_fn};

static const fh_connector_descriptor* entry(void) { return &descriptor; }

__attribute__((visibility("default"))) const void* firehub_connector_v1 = (const void*)&entry;
