/* A plugin built against a future ABI major: the host must refuse it and keep running. */
#include "firehub/plugin_abi.h"

static fh_status create_fn(const char* c, size_t n, void** i, char* e, size_t el) {
  (void)c;
  (void)n;
  (void)i;
  (void)e;
  (void)el;
  return FH_ERROR;
}
static fh_status decode_fn(void* i, const fh_decode_input* in, const fh_host_callbacks* cb,
                           void* ctx, char* e, size_t el) {
  (void)i;
  (void)in;
  (void)cb;
  (void)ctx;
  (void)e;
  (void)el;
  return FH_ERROR;
}
static void destroy_fn(void* i) { (void)i; }

static const fh_connector_descriptor descriptor = {FH_ABI_MAJOR + 1,
                                                   0,
                                                   sizeof(fh_connector_descriptor),
                                                   "firehub.connector.future",
                                                   "9.0.0",
                                                   "weather",
                                                   "a plugin from the future",
                                                   "{}",
                                                   create_fn,
                                                   decode_fn,
                                                   destroy_fn};

static const fh_connector_descriptor* entry(void) { return &descriptor; }

/* What BOOST_DLL_ALIAS produces: an exported variable holding the function's address. */
__attribute__((visibility("default"))) const void* firehub_connector_v1 = (const void*)&entry;
