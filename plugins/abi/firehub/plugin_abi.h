/* firehub connector plugin ABI. Pure C: nothing C++-only crosses this boundary.
 *
 * A plugin exports exactly one symbol, the alias `firehub_connector_v1` (Boost.DLL
 * BOOST_DLL_ALIAS), which is a function returning a pointer to a static fh_connector_descriptor.
 * The host reads abi_major/abi_minor/struct_size first (their offsets never change), refuses a
 * different major or a newer minor, and only then touches the rest of the descriptor.
 *
 * Records cross as serialised firehub.v1.Record protobuf bytes through the emit() callback. The
 * bytes are only valid during that call. Errors cross as a status code plus a message written
 * into a caller-supplied buffer. Exceptions must never cross: the SDK's shim catches them.
 */
#ifndef FIREHUB_PLUGIN_ABI_H
#define FIREHUB_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bump the major for any incompatible change (a field moved, a signature changed). Bump the minor
 * for additions at the end of a struct; a host accepts plugins of its major with minor <= its own.
 */
#define FH_ABI_MAJOR 1
#define FH_ABI_MINOR 3

/* The name of the exported alias that returns the descriptor. */
#define FH_CONNECTOR_SYMBOL "firehub_connector_v1"

typedef enum fh_status {
  FH_OK = 0,
  FH_RETRY = 1,          /* transient: the host may try the same input again later */
  FH_ERROR = 2,          /* the input (or call) is invalid; retrying the same bytes will not help */
  FH_INVALID_CONFIG = 3, /* create(): the configuration was rejected */
  FH_FAULT = 4           /* ABI 1.2: the connector itself failed (a bug, not bad input); the host
                            marks the feed failed */
} fh_status;

/* Where in the pipeline a rejection happened; mirrors the dead-letter stages. */
typedef enum fh_stage {
  FH_STAGE_DECODE = 1,  /* bytes could not be parsed into fields */
  FH_STAGE_VALIDATE = 2 /* fields parsed but a value is out of range or missing */
} fh_stage;

/* One rejected piece of input (a CSV line, a JSON object), reported instead of a record. */
typedef struct fh_rejection {
  fh_stage stage;
  const char* reason; /* NUL-terminated; names the field that failed */
  const uint8_t* raw; /* the offending bytes; valid during the callback only */
  size_t raw_len;
  const char* source_offset; /* e.g. "line 7"; NUL-terminated, may be "" */
} fh_rejection;

/* Callbacks the host gives to decode(). All are called synchronously from decode() on the
 * caller's thread; pointers passed to them are valid during the call only. */
typedef struct fh_host_callbacks {
  uint32_t struct_size;
  /* One normalised record: serialised firehub.v1.Record. The host owns the envelope fields
   * feed_id, agency, received_at, s2_cell and provenance.connector_*; the plugin fills the rest,
   * with provenance.source_record_id set. */
  void (*emit)(void* host_ctx, const uint8_t* record, size_t len);
  void (*reject)(void* host_ctx, const fh_rejection* rejection);
  /* level: 0 debug, 1 info, 2 warning, 3 error. */
  void (*log)(void* host_ctx, int level, const char* message);
  /* --- ABI 1.1: byte streams (TCP). Check struct_size before use. --- */
  /* Bytes to send back to the peer after the decoded records were committed (e.g. a GB/T 26875
   * confirm frame). */
  void (*reply)(void* host_ctx, const uint8_t* bytes, size_t len);
  /* For stream input: how many leading bytes of the input were used; the rest (an incomplete
   * frame) is offered again with the next bytes. Not calling it means all were used. */
  void (*consumed)(void* host_ctx, size_t bytes);
  /* --- ABI 1.2 --- */
  /* The source bytes (a CSV line, a JSON object, a frame) of the records emitted next, until the
   * next call. The host keeps them with a record the hub itself later rejects, so the dead letter
   * holds what the agency sent and can be replayed through the connector. */
  void (*source)(void* host_ctx, const uint8_t* raw, size_t len);
  /* --- ABI 1.3 --- */
  /* A piece of input understood but not made into a record, because the connector maps nothing
   * of its kind (e.g. a FHIR Organization): counted in the push's answer as skipped, by kind
   * (NUL-terminated, e.g. "Organization"), with the reason. Not a rejection: nothing is wrong
   * with it. */
  void (*skip)(void* host_ctx, const char* kind, const char* reason);
} fh_host_callbacks;

typedef struct fh_decode_input {
  uint32_t struct_size;
  const uint8_t* data;
  size_t len;
  const char* content_type; /* e.g. "text/csv", "application/json", "application/x-ndjson";
                               "application/x-gbt26875" for a GB/T 26875 TCP byte stream */
  const char* feed_id;
  const char* agency;
} fh_decode_input;

typedef struct fh_connector_descriptor {
  /* --- fixed header: never moves --- */
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t struct_size; /* sizeof(fh_connector_descriptor) as the plugin was built */
  /* --- v1.0 --- */
  const char* id;            /* reverse-DNS style: "firehub.connector.weather" */
  const char* version;       /* the plugin's own semantic version, "1.2.0" */
  const char* domain;        /* the records' domain, "weather" */
  const char* description;   /* one line for operators */
  const char* config_schema; /* JSON Schema (draft 2020-12) of the feed config, as text */

  /* Creates an instance for one feed from its JSON config ("{}" when empty). On failure returns
   * FH_INVALID_CONFIG (or FH_ERROR) and writes a NUL-terminated reason into err. */
  fh_status (*create)(const char* config_json, size_t config_len, void** instance, char* err,
                      size_t err_len);
  /* Decodes one body. Emits records and rejections through cb. Returns FH_OK when the body was
   * understood (even if some pieces were rejected), FH_ERROR when it cannot be parsed at all.
   * An instance is used by one thread at a time. */
  fh_status (*decode)(void* instance, const fh_decode_input* input, const fh_host_callbacks* cb,
                      void* host_ctx, char* err, size_t err_len);
  void (*destroy)(void* instance);
} fh_connector_descriptor;

typedef const fh_connector_descriptor* (*fh_connector_entry_fn)(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FIREHUB_PLUGIN_ABI_H */
