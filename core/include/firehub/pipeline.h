// The ingest pipeline: decode (through the feed's connector) -> validate and normalise the
// envelope -> dedupe and route -> one atomic lake commit. A body is acknowledged only after its
// commit returned; rejected pieces go to the dead-letter column family in the same commit.
// @remark Thread-safe; pushes to one feed are decoded one at a time (the connector instance is
// not shared between threads), different feeds in parallel.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firehub/lake.h"
#include "firehub/metrics.h"
#include "firehub/registry.h"
#include "firehub/status.h"

namespace firehub::pipeline {

// District outlines (map.outlines) the pipeline places records by when a connector gives a
// place hint instead of a geometry (gazetteer.cc).
struct District {
  std::string code;  // GB/T 2260 administrative-division code, "" when the outline has none
  std::string name;
  firehub::v1::Geometry outline;  // Polygon or MultiPolygon
};
class Gazetteer {
 public:
  explicit Gazetteer(std::vector<District> districts);
  size_t size() const { return districts_.size(); }
  // Places `r` from its place hint: codes on the union of the districts they name (a city or
  // province code: all its districts; a code not among the outlines: the nearest enclosing one
  // that is), else names at a point inside the one district named. Sets `placed_by`; false with
  // `why` when nothing matches.
  bool place(firehub::v1::Record& r, std::string& why) const;

 private:
  std::vector<const District*> byCode(const std::string& code, std::string& via) const;
  std::vector<District> districts_;
};

struct PipelineOptions {
  // S2 level of Record.s2_cell (the fusion grid). Default: 15 (~280 m cells).
  int cell_level = 15;
  // Rejection reasons returned to the caller of one push (all go to the DLQ). Default: 20.
  size_t max_reported_errors = 20;
  // How long a push waits for the feed's previous push (one body is decoded at a time per
  // feed) before it gets 503; a connector decoding one body longer than this is reported as
  // blocked. Default: 10 s.
  int64_t busy_timeout_ms = 10000;
  // District outlines for place hints (a CAP area's geocodes, a FHIR address). Default: none
  // (such records are kept unplaced, saying so).
  std::shared_ptr<const Gazetteer> gazetteer;
};

struct IngestRequest {
  std::string feed_id;
  std::string_view body;
  std::string content_type;  // media type without parameters, lower case
  std::string transport = "http_push";
  // Replay of the dead letter with this sequence: the body is its raw bytes. Nothing is stored
  // unless every piece now passes; then the records and the removal of the dead letter are one
  // commit. Paused feeds accept replays (an operator fixes, replays, then resumes).
  std::optional<uint64_t> replay_of;
  // Where the body came from, put before each dead letter's place in it (a Kafka source:
  // "<topic>/<partition>@<offset>"). Empty: nothing.
  std::string source;
  // Meta entries written in the same commit as the body's records (a Kafka source's next offset:
  // exactly once into the lake, even across a crash). Written also when nothing is stored.
  std::vector<std::pair<std::string, std::string>> meta;
  // The charset the Content-Type declares (lower case; empty: none, the feed's encoding then).
  std::string charset;
};

// A Content-Type's media type, lower case, without parameters (the JSON-lines aliases as
// application/x-ndjson).
std::string mediaType(const std::string& content_type);
// The charset parameter of a Content-Type, lower case, unquoted ("" when it has none).
std::string charsetOf(const std::string& content_type);

// Text in other charsets than UTF-8 (text_encoding.cc).
//
// The name iconv knows a charset by, "utf-8" for UTF-8 and ASCII, "gb18030" for GB18030 and its
// subsets (GBK, GB2312, CP936); empty when it is not known.
std::string canonicalCharset(const std::string& name);
// Where `s` stops being valid UTF-8 (npos when it is).
size_t invalidUtf8At(std::string_view s);
Result<std::string> convertCharset(std::string_view in, const std::string& from,
                                   const std::string& to);
// A text body (the accepted text media types; other types pass unchanged) read as UTF-8: in the
// charset the Content-Type declares, else the one an XML declaration names, else the feed's
// encoding (utf-8, gb18030, or auto: UTF-8 when it is valid, else GB18030). `out` gets the
// converted text and `charset` what it was read in; `out` stays empty when the body is UTF-8
// already. InvalidArgument naming the charset and the first byte that is not valid in it;
// except that a body nothing declared (the feed's utf-8) with stray bytes that does not read as
// GB18030 as a whole passes unchanged, `note` saying where (its connector refuses those rows).
Status textAsUtf8(std::string_view body, const std::string& content_type,
                  const std::string& declared, const std::string& encoding, std::string& out,
                  std::string& charset, std::string* note = nullptr);
// UTF-8 text back in `charset` (what was sent, for a dead letter); unchanged when it cannot be.
std::string textInCharset(std::string_view utf8, const std::string& charset);

// Spreadsheets (spreadsheet.cc): an .xlsx body goes to the connector as the CSV of one sheet
// (`sheet`, or the first), cells as Excel stores them (dates in a date format as ISO 8601 local
// date-times). InvalidArgument when it is not an .xlsx package or has no such sheet.
inline constexpr const char* kXlsxType =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
Result<std::string> spreadsheetAsCsv(std::string_view xlsx, const std::string& sheet);

// Positions from Chinese web maps (crs.cc): a feed's `crs` says what its connector's
// coordinates are in; they are converted to WGS 84 on ingest.
enum class Crs { kWgs84, kCgcs2000, kGcj02, kBd09 };
// "wgs84", "cgcs2000", "gcj02", "bd09"; nullopt for another name.
std::optional<Crs> parseCrs(const std::string& name);
const char* crsName(Crs crs);
lake::LonLat toWgs84(lake::LonLat p, Crs from);
lake::LonLat fromWgs84(lake::LonLat p, Crs to);
// The record's geometry converted to WGS 84; provenance.original_crs names `from` and
// provenance.original_position keeps the first position as it was (the point, or a polygon's
// first vertex). Nothing changes for WGS 84; CGCS2000 is recorded but not moved.
void recordToWgs84(firehub::v1::Record& r, Crs from);

struct IngestSummary {
  size_t accepted = 0;
  size_t rejected = 0;
  size_t duplicates = 0;
  // Pieces of kinds the connector maps to nothing (e.g. a FHIR Organization), by kind, with the
  // first reason given for each.
  size_t skipped = 0;
  std::map<std::string, std::pair<size_t, std::string>> skipped_kinds;
  std::vector<std::string> errors;  // "line 3: field 'rh_pct' = 140 is outside [0, 100]"
  // Records stored without a place (a place hint nothing matched): where in the body, and why.
  std::vector<std::pair<std::string, std::string>> unplaced;
  // Streams (TCP): bytes of the body the connector used (the rest is an incomplete frame), and
  // the reply for the peer, given only after the commit succeeded.
  size_t consumed = 0;
  std::string reply;
};

// Content type of a dead letter whose raw bytes are only the start of what was sent (not
// replayable).
inline constexpr const char* kTruncatedType = "application/octet-stream; truncated";

// Topic of a domain's canonical records: firehub.v1.<domain>.
std::string domainTopic(const std::string& domain);

// The envelope contract every record a connector emits must meet (body set, domain = the
// connector's, entity, source record id, valid time and geometry). Returns "" when it holds,
// else the reason. `anchor` receives the point that places the record on the grid.
std::string checkRecord(const firehub::v1::Record& record, const std::string& domain,
                        firehub::v1::Point& anchor);

// The contract for what a connector emits, before the hub completes it: as checkRecord, except
// that an OP_PATCH or a record with `located_by` may come without geometry.
std::string checkEmitted(const firehub::v1::Record& record, const std::string& domain);

// Completes a record from the lake's latest state: an OP_PATCH is merged into the entity's latest
// record (and stored as OP_UPSERT), a record without geometry takes the geometry of the entity
// named by `located_by`. Returns "" when done, a reason when the record cannot be completed, or
// an error Status when the lake could not be read.
Result<std::string> resolveAgainstLatest(
    firehub::v1::Record& record,
    const std::function<Result<std::optional<firehub::v1::Record>>(const std::string&)>& latest_of);

// The outcome of replaying one dead letter.
struct ReplayResult {
  uint64_t sequence = 0;
  std::string feed_id;
  bool resolved = false;  // now stored; the dead letter is gone
  size_t accepted = 0;
  size_t duplicates = 0;
  std::string reason;  // why it still fails or cannot be replayed
};

// Records a child hub forwards up its tier link (tiers), already in the shared schema: a body
// of firehub.v1.Record messages, each preceded by its size as a varint (kForwardedType).
inline constexpr const char* kForwardedType = "application/vnd.firehub.records+protobuf";
// Provenance.transport of what came down from the parent hub: never forwarded up again.
inline constexpr const char* kFromParentTransport = "tier_down";
// Names a record its origin hub's, as it leaves the hub that took it in from its agency:
// provenance.origin_hub/origin_level set, and its id, entity id, feed, agency and located_by
// entity prefixed "<hub>/" (two counties' hydrant H001 stay two hydrants). A record named so
// already (it has an origin) is left as it is.
void nameForOrigin(firehub::v1::Record& record, const std::string& hub, const std::string& level);

struct ForwardRequest {
  std::string from_hub;    // the child's tier.name (the agency of its key here)
  std::string from_level;  // the child's tier.level
  std::string here;        // this hub's tier.name: a record that passed it already is a loop
  std::vector<std::string> domains;  // what the child's key may write
  std::string_view body;
};
struct ForwardSummary {
  size_t accepted = 0;
  size_t duplicates = 0;  // sent before (a retry after a lost answer): stored once
  size_t rejected = 0;    // dead letters of feed "tier:<from_hub>"
  size_t looped = 0;      // records that came from this hub or passed it: dropped
  std::vector<std::string> errors;
};

class Body;  // one body's decode (pipeline.cc)

class Pipeline {
 public:
  Pipeline(lake::Lake& lake, registry::FeedRegistry& feeds, Metrics& metrics,
           PipelineOptions options = {})
      : lake_(lake), feeds_(feeds), metrics_(metrics), options_(options) {}

  // NotFound: unknown feed. FailedPrecondition: the feed's connector is not loaded, or the feed
  // is paused or stopped. InvalidArgument: the body cannot be parsed at all, or (with
  // errors.tolerance = none) it held a bad record and the feed is now stopped; nothing of the
  // body is stored. Unavailable / ResourceExhausted: the lake could not commit after the feed's
  // retries (nothing acknowledged; retry later).
  Result<IngestSummary> ingest(const IngestRequest& request);

  // Sends dead letters (stages transport, decode, validate) through their feed's current
  // connector again; those that now pass are stored and removed in one commit, the others stay
  // unchanged. Unavailable / ResourceExhausted when the lake fails (the rest is not tried).
  Result<std::vector<ReplayResult>> replay(const std::vector<uint64_t>& sequences);

  // Stores what a child hub forwarded as this hub's own records with their origin: a record the
  // child took in itself gets origin_hub/origin_level, and its id, entity id, feed and agency
  // prefixed "<child>/" (two counties' hydrant H001 stay two hydrants); one forwarded through
  // the child keeps its origin and gains the child in `hops`. Each record is checked as a
  // connector's is; a failing one, or one of a domain the child's key does not hold, is a dead
  // letter of feed "tier:<child>". Ids already stored are duplicates, so a resent batch is stored
  // once. InvalidArgument when the body cannot be read at all (nothing stored); Unavailable when
  // the lake fails.
  Result<ForwardSummary> ingestForwarded(const ForwardRequest& request);

  // Warnings a parent hub sends down the tier link: CAP warnings (weather_warning records) with
  // their origin, as the parent made them. Stored with transport kFromParentTransport, so they
  // never go up again; ids stored before are duplicates (the parent sends what is active on
  // every poll). Anything else is a dead letter of feed "tier:parent".
  Result<ForwardSummary> ingestFromParent(std::string_view body);

  const PipelineOptions& options() const { return options_; }

  // Called after every successful commit that stored records (wakes the publisher).
  void setCommitListener(std::function<void()> fn) { on_commit_ = std::move(fn); }

 private:
  // One try of a push: decoded (a Body), then committed.
  Result<IngestSummary> attempt(registry::Feed& feed, const IngestRequest& request);
  Result<IngestSummary> commitBody(registry::Feed& feed, const IngestRequest& request, Body& body);
  // Runs the connector over a body (as the connector reads it), then commits; `note` goes first
  // among the answer's errors.
  Result<IngestSummary> decodeAndCommit(registry::Feed& feed, const IngestRequest& request,
                                        Body& body, const std::string& note);
  // Tier links (forwarded.cc).
  firehub::v1::DeadLetter tierDeadLetter(const std::string& feed, const std::string& hub,
                                         const std::string& reason, const std::string& bytes,
                                         size_t index, bool restricted) const;
  Result<ForwardSummary> commitTier(const std::string& feed, std::vector<lake::StoreItem>& items,
                                    const std::vector<firehub::v1::DeadLetter>& dead,
                                    ForwardSummary& summary);

  lake::Lake& lake_;
  registry::FeedRegistry& feeds_;
  Metrics& metrics_;
  PipelineOptions options_;
  std::function<void()> on_commit_;
};

}  // namespace firehub::pipeline
