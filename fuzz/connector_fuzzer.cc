// libFuzzer target for one connector's decode(), through its C ABI as the host calls it. The
// first input byte picks the content type, the rest is the body. Every emitted record must parse
// as a firehub.v1.Record; everything else (crashes, leaks, UB) is found by the sanitizers.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "firehub/plugin_abi.h"
#include "firehub/v1/record.pb.h"

extern "C" const fh_connector_descriptor* FUZZ_CONNECTOR(void);

namespace {

const char* const kTypes[] = {"text/csv",
                              "application/json",
                              "application/x-ndjson",
                              "application/geo+json",
                              "application/fhir+json",
                              "application/xml",
                              "application/cap+xml",
                              "application/x-gbt26875"};
constexpr size_t kTypeCount = sizeof kTypes / sizeof kTypes[0];

void emit(void*, const uint8_t* bytes, size_t len) {
  firehub::v1::Record r;
  if (!r.ParseFromArray(bytes, static_cast<int>(len))) std::abort();  // the SDK only emits records
}
void reject(void*, const fh_rejection* r) {
  if (!r || !r->reason) std::abort();  // every rejection names a reason
}
void logFn(void*, int, const char*) {}
void reply(void*, const uint8_t*, size_t) {}
void consumed(void* ctx, size_t bytes) { *static_cast<size_t*>(ctx) = bytes; }
void source(void*, const uint8_t*, size_t) {}

void* instance() {
  static void* created = [] {
    const fh_connector_descriptor* d = FUZZ_CONNECTOR();
    void* i = nullptr;
    char err[256];
    if (d->create("{}", 2, &i, err, sizeof err) != FH_OK) std::abort();
    return i;
  }();
  return created;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const fh_connector_descriptor* d = FUZZ_CONNECTOR();
  fh_decode_input in{};
  in.struct_size = sizeof in;
  in.data = data + 1;
  in.len = size - 1;
  in.content_type = kTypes[data[0] % kTypeCount];
  in.feed_id = "fuzz";
  in.agency = "fuzz";
  fh_host_callbacks cb{};
  cb.struct_size = sizeof cb;
  cb.emit = &emit;
  cb.reject = &reject;
  cb.log = &logFn;
  cb.reply = &reply;
  cb.consumed = &consumed;
  cb.source = &source;
  size_t used = in.len;
  char err[1024];
  fh_status st = d->decode(instance(), &in, &cb, &used, err, sizeof err);
  if (st == FH_FAULT) std::abort();  // a connector fault on some input is a bug to fix
  if (used > in.len) std::abort();
  return 0;
}
