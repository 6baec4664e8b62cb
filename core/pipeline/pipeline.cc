#include "firehub/pipeline.h"
#include "firehub/v1/precision.h"

#include <absl/container/flat_hash_map.h>
#include <google/protobuf/util/time_util.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>

#include <chrono>
#include <cmath>
#include <random>
#include <set>
#include <thread>

#include "firehub/classification.h"
#include "firehub/log.h"

namespace firehub::pipeline {
namespace {

using google::protobuf::util::TimeUtil;

bool validLonLat(const firehub::v1::Point& p) {
  return std::isfinite(p.lon()) && std::isfinite(p.lat()) && p.lon() >= -180 && p.lon() <= 180 &&
         p.lat() >= -90 && p.lat() <= 90;
}

bool validGeometry(const firehub::v1::Geometry& g, firehub::v1::Point& anchor) {
  if (g.has_point()) {
    anchor = g.point();
    return validLonLat(g.point());
  }
  const firehub::v1::Polygon* first = nullptr;
  auto check_polygon = [&](const firehub::v1::Polygon& poly) {
    if (poly.rings_size() == 0) return false;
    for (const auto& ring : poly.rings()) {
      if (ring.points_size() < 4) return false;
      for (const auto& p : ring.points()) {
        if (!validLonLat(p)) return false;
      }
    }
    if (!first) first = &poly;
    return true;
  };
  if (g.has_polygon()) {
    if (!check_polygon(g.polygon())) return false;
  } else if (g.has_multi_polygon() && g.multi_polygon().polygons_size() > 0) {
    for (const auto& poly : g.multi_polygon().polygons()) {
      if (!check_polygon(poly)) return false;
    }
  } else {
    return false;
  }
  double lon = 0, lat = 0;
  for (const auto& p : first->rings(0).points()) {
    lon += p.lon();
    lat += p.lat();
  }
  anchor.set_lon(lon / first->rings(0).points_size());
  anchor.set_lat(lat / first->rings(0).points_size());
  return true;
}

}  // namespace

namespace {

std::string checkEnvelope(const firehub::v1::Record& r, const std::string& domain,
                          firehub::v1::Point& anchor, bool require_geometry) {
  if (r.body_case() == firehub::v1::Record::BODY_NOT_SET) return "record has no body";
  if (r.domain() != domain)
    return "record domain '" + r.domain() + "' is not the connector's '" + domain + "'";
  if (r.entity_id().empty() || r.entity_id().size() > 256)
    return "record entity_id is empty or longer than 256";
  if (r.entity_type().empty()) return "record entity_type is empty";
  if (r.provenance().source_record_id().empty()) return "record has no provenance.source_record_id";
  if (!r.has_observed_at() || r.observed_at().seconds() < TimeUtil::kTimestampMinSeconds ||
      r.observed_at().seconds() > TimeUtil::kTimestampMaxSeconds || r.observed_at().nanos() < 0 ||
      r.observed_at().nanos() > 999999999)
    return "record observed_at is missing or invalid";
  if ((!require_geometry || r.unplaced()) && !r.has_geometry()) return "";
  if (!r.has_geometry() || !validGeometry(r.geometry(), anchor))
    return "record geometry is missing or out of range";
  return "";
}

}  // namespace

std::string checkRecord(const firehub::v1::Record& r, const std::string& domain,
                        firehub::v1::Point& anchor) {
  return checkEnvelope(r, domain, anchor, true);
}

std::string checkEmitted(const firehub::v1::Record& r, const std::string& domain) {
  firehub::v1::Point anchor;
  bool placed_by_hub = r.op() == firehub::v1::OP_PATCH || r.has_located_by() || r.has_place_hint();
  return checkEnvelope(r, domain, anchor, !placed_by_hub);
}

Result<std::string> resolveAgainstLatest(
    firehub::v1::Record& r,
    const std::function<Result<std::optional<firehub::v1::Record>>(const std::string&)>&
        latest_of) {
  if (r.op() == firehub::v1::OP_PATCH) {
    const std::string key = lake::entityKey(r);
    auto base = latest_of(key);
    if (!base.isOk()) return base.status();
    if (!base.value())
      return "patch for unknown entity " + key + ": its full record must arrive first";
    firehub::v1::Record merged = std::move(*base.value());
    const auto* oneof = firehub::v1::Record::descriptor()->FindOneofByName("body");
    const auto* reflection = firehub::v1::Record::GetReflection();
    const auto* patch_body = reflection->GetOneofFieldDescriptor(r, oneof);
    const auto* base_body = reflection->GetOneofFieldDescriptor(merged, oneof);
    if (patch_body == nullptr || patch_body != base_body) {
      return "patch body type differs from the latest record of " + key;
    }
    reflection->MutableMessage(&merged, base_body)
        ->MergeFrom(reflection->GetMessage(r, patch_body));
    if (r.has_geometry()) *merged.mutable_geometry() = r.geometry();
    if (r.classification() != firehub::v1::CLASSIFICATION_UNSPECIFIED) {
      merged.set_classification(r.classification());
    }
    // The merged state is as new as the newer of its parts: a reading taken just before the
    // registry entry was refreshed still updates the entity.
    const auto& base_at = merged.observed_at();
    if (r.observed_at().seconds() > base_at.seconds() ||
        (r.observed_at().seconds() == base_at.seconds() &&
         r.observed_at().nanos() > base_at.nanos())) {
      *merged.mutable_observed_at() = r.observed_at();
    }
    *merged.mutable_provenance() = r.provenance();
    merged.set_op(firehub::v1::OP_UPSERT);  // stored as the entity's full new state
    r = std::move(merged);
  }
  if (!r.has_geometry() && r.has_located_by()) {
    const std::string key = lake::entityKeyOf(r.located_by());
    auto base = latest_of(key);
    if (!base.isOk()) return base.status();
    if (!base.value() || !base.value()->has_geometry()) {
      return "cannot place the record: no located " + key + " is known yet";
    }
    *r.mutable_geometry() = base.value()->geometry();
  }
  return std::string();
}

std::string domainTopic(const std::string& domain) { return "firehub.v1." + domain; }

namespace {

int64_t steadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Content type of a dead letter that holds what the connector emitted (not the source bytes).
constexpr const char* kRecordBytesType = "application/x-protobuf; proto=firehub.v1.Record";

void markRecordBytes(firehub::v1::DeadLetter& dl) {
  dl.set_content_type(kRecordBytesType);
  dl.clear_replay_prefix();
}

// The header line of a CSV body, with its line end.
std::string_view csvHeaderLine(std::string_view body) {
  size_t nl = body.find('\n');
  return nl == std::string_view::npos ? body : body.substr(0, nl + 1);
}

bool policy_stops(const registry::FeedSpec& spec,
                  const std::vector<firehub::v1::DeadLetter>& dead) {
  return spec.errors.tolerance == registry::ErrorPolicy::Tolerance::kNone && !dead.empty();
}

}  // namespace

Result<IngestSummary> Pipeline::ingest(const IngestRequest& request) {
  auto feed = feeds_.get(request.feed_id);
  if (!feed) return Status::notFound("no feed '" + request.feed_id + "'");
  plugin::ConnectorInstance* connector = feed->connector();
  if (!connector) {
    return Status::failedPrecondition("feed '" + request.feed_id +
                                      "' is inactive: " + feed->reason());
  }
  std::unique_lock<std::timed_mutex> feed_lock(feed->pushMutex(), std::defer_lock);
  if (!feed_lock.try_lock_for(std::chrono::milliseconds(options_.busy_timeout_ms))) {
    int64_t since = feed->decodingSince().load();
    std::string why = since > 0 ? "its connector has been decoding one body for " +
                                      std::to_string((steadyMs() - since) / 1000) + " s"
                                : "earlier pushes are still being stored";
    return Status::unavailable("feed '" + request.feed_id + "' is busy: " + why + "; retry later");
  }
  if (feed->paused() && !request.replay_of) {
    std::string stopped = feed->stoppedReason();
    return Status::failedPrecondition(
        "feed '" + request.feed_id + "' is " +
        (stopped.empty() ? std::string("paused")
                         : "stopped by its error policy (" + stopped + ")") +
        "; POST /api/v1/feeds/" + request.feed_id + "/resume to take data again");
  }
  const registry::ErrorPolicy& policy = feed->spec().errors;
  static thread_local std::mt19937 rng{std::random_device{}()};
  for (int retry = 0;; ++retry) {
    auto result = attempt(*feed, request);
    if (result.isOk() || result.status().code() != StatusCode::kUnavailable ||
        retry >= policy.retries) {
      if (!result.isOk() && retry > 0) {
        return Status(result.status().code(),
                      result.status().message() + " (after " + std::to_string(retry) + " retries)");
      }
      return result;
    }
    // Exponential back-off with full jitter, so feeds failing together do not retry together.
    int64_t cap = std::min(policy.max_backoff_ms, policy.backoff_ms << std::min(retry, 20));
    int64_t wait_ms = std::uniform_int_distribution<int64_t>(cap / 2, cap)(rng);
    metrics_.countRecords(request.feed_id, "retry", 1);
    FIREHUB_LOG(kWarning, "pipeline",
                "feed " << request.feed_id << ": " << result.status().message() << "; retry "
                        << retry + 1 << " in " << wait_ms << " ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  }
}

// One body on its way through the pipeline: the records and dead letters the connector's decode
// produces, each record completed from the lake (patches, placements), checked and given the
// fields the host owns, before they are committed together.
class Body {
 public:
  // `charset`: what the body was sent in (it is here as UTF-8); dead letters go back to it.
  Body(lake::Lake& lake, const PipelineOptions& options, registry::Feed& feed,
       const IngestRequest& request, std::string charset)
      : charset_(std::move(charset)),
        lake_(lake),
        options_(options),
        feed_(feed),
        request_(request),
        spec_(feed.spec()),
        descriptor_(feed.connector()->plugin().descriptor()),
        domain_(descriptor_.domain),
        topic_(domainTopic(domain_)),
        public_topic_(topic_ + ".public"),
        crs_(parseCrs(spec_.crs).value_or(Crs::kWgs84)),
        received_(TimeUtil::GetCurrentTime()) {}

  // Runs the feed's connector over the body; the records and dead letters wait in this object.
  Status decode() {
    sink_.on_source = [this](std::string_view raw) {
      source_.assign(raw.data(), raw.size());
      have_source_ = true;
    };
    sink_.on_record = [this](std::string_view bytes) { onRecord(bytes); };
    sink_.on_skip = [this](std::string_view kind, std::string_view reason) {
      ++summary_.skipped;
      auto& k = summary_.skipped_kinds[std::string(kind.substr(0, 64))];
      if (k.first++ == 0) k.second = std::string(reason.substr(0, 200));
    };
    sink_.on_reject = [this](const fh_rejection& rej) {
      deadLetter(rej.stage == FH_STAGE_VALIDATE ? "validate" : "decode",
                 rej.reason ? rej.reason : "rejected",
                 std::string_view(reinterpret_cast<const char*>(rej.raw), rej.raw_len),
                 rej.source_offset ? rej.source_offset : "");
    };
    feed_.decodingSince() = steadyMs();
    Status decoded = feed_.connector()->decode(request_.body, request_.content_type, spec_.id,
                                               spec_.agency, sink_);
    feed_.decodingSince() = 0;
    if (decoded.code() == StatusCode::kInternal) {
      feed_.setFault(decoded.message());
    } else if (garbage_ > 0) {
      feed_.setFault(std::string("connector ") + descriptor_.id + " emitted " +
                     std::to_string(garbage_) +
                     " piece(s) that are not a firehub.v1.Record or not of its domain");
    } else if (decoded.isOk()) {
      feed_.setFault("");
    }
    return decoded;
  }

  std::vector<lake::StoreItem>& items() { return items_; }
  const std::vector<firehub::v1::DeadLetter>& dead() const { return dead_; }
  IngestSummary& summary() { return summary_; }
  plugin::DecodeSink& sink() { return sink_; }
  // A failure to read the state a patch or reference needs (the push is retried).
  const Status& lakeError() const { return lake_error_; }
  const google::protobuf::Timestamp& received() const { return received_; }

 private:
  void deadLetter(const std::string& stage, const std::string& reason, std::string_view raw,
                  const std::string& offset) {
    firehub::v1::DeadLetter dl;
    dl.set_feed_id(spec_.id);
    dl.set_agency(spec_.agency);
    dl.set_connector_id(descriptor_.id);
    dl.set_connector_version(descriptor_.version);
    dl.set_stage(stage);
    dl.set_reason(reason);
    *dl.mutable_at() = received_;
    dl.set_raw(textInCharset(raw, charset_));
    dl.set_source_offset(request_.source.empty() ? offset
                         : offset.empty()        ? request_.source
                                                 : request_.source + " " + offset);
    dl.set_content_type(request_.content_type +
                        (charset_ == "utf-8" ? "" : "; charset=" + charset_));
    dl.set_restricted(domainHasRestrictedFields(descriptor_.domain));
    if (request_.content_type == "text/csv" && stage != "transport") {
      dl.set_replay_prefix(textInCharset(csvHeaderLine(request_.body), charset_));
    }
    dead_.push_back(std::move(dl));
    if (summary_.errors.size() < options_.max_reported_errors) {
      const std::string at = dead_.back().source_offset();
      summary_.errors.push_back((at.empty() ? "" : at + ": ") + reason);
    }
  }

  // The newest record of an entity: earlier in this body, else in the lake. The newest per entity
  // of this body is gathered here, from the records kept since the last ask (most bodies hold no
  // patch or reference, and their records pay nothing for it).
  Result<std::optional<firehub::v1::Record>> latestOf(const std::string& key) {
    for (; latest_of_items_ < items_.size(); ++latest_of_items_) {
      const lake::StoreItem& item = items_[latest_of_items_];
      auto [known, added] = batch_latest_.try_emplace(item.entity_key, latest_of_items_);
      if (!added &&
          TimeUtil::TimestampToMicroseconds(items_[known->second].record().observed_at()) <=
              TimeUtil::TimestampToMicroseconds(item.record().observed_at()))
        known->second = latest_of_items_;
    }
    if (auto it = batch_latest_.find(key); it != batch_latest_.end()) {
      return std::optional<firehub::v1::Record>(items_[it->second].record());
    }
    return lake_.latest(key);
  }

  void onRecord(std::string_view bytes) {
    if (!arena_) {  // the records of this push are allocated on one arena, freed together
      google::protobuf::ArenaOptions blocks;
      blocks.start_block_size = 4096;
      blocks.max_block_size = 256 << 10;
      arena_ = std::make_shared<google::protobuf::Arena>(blocks);
    }
    lake::StoreItem item(arena_);
    firehub::v1::Record& r = item.record();
    if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      deadLetter("decode", "connector emitted bytes that are not a firehub.v1.Record", bytes, "");
      markRecordBytes(dead_.back());
      ++garbage_;
      return;
    }
    r.clear_placed_by();  // the host's to set
    r.clear_unplaced_reason();
    if (r.domain() != domain_) ++garbage_;            // checkRecord dead-letters it below
    if (crs_ != Crs::kWgs84) recordToWgs84(r, crs_);  // before a reference places it in WGS 84
    if (have_source_) bytes = source_;
    std::string offset = r.provenance().source_offset();
    if (!lake_error_.isOk()) return;
    Result<std::string> resolved =
        resolveAgainstLatest(r, [this](const std::string& key) { return latestOf(key); });
    if (!resolved.isOk()) {
      lake_error_ = resolved.status();
      return;
    }
    if (!resolved.value().empty()) {
      const bool keep = r.op() != firehub::v1::OP_PATCH && r.has_located_by() &&
                        r.located_by().keep_unplaced() && !r.has_geometry();
      // A withdrawal of something this hub has not seen (a CAP Update or Cancel that came first)
      // needs no place: stored unplaced, it is the entity's newest state, so the withdrawn thing
      // stays withdrawn when it arrives later. Nothing was refused: no dead letter.
      if (!(keep && r.op() == firehub::v1::OP_RETRACT)) {
        deadLetter("validate", resolved.value(), bytes, offset);
        if (!have_source_) markRecordBytes(dead_.back());
        if (!keep) return;
      }
      r.set_unplaced(true);  // stored without a place; a dead letter says why (but a withdrawal)
    }
    if (!r.has_geometry() && r.has_place_hint() && r.op() != firehub::v1::OP_RETRACT &&
        r.op() != firehub::v1::OP_PATCH)
      placeFromHint(r);
    // Kept at the precision its JSON writes (7 decimal places, milliseconds), before its place is
    // worked out: a record read back from its topic is the record stored, on every replica.
    firehub::v1::roundToKeptPrecision(r);
    firehub::v1::Point anchor;
    std::string problem = checkRecord(r, domain_, anchor);
    if (!problem.empty()) {
      deadLetter("validate", problem, bytes, offset);
      if (!have_source_) markRecordBytes(dead_.back());
      return;
    }
    fillEnvelope(item, anchor);
    items_.push_back(std::move(item));
  }

  // A record that names its place (district codes, an address) instead of giving it: placed by
  // the district outlines, else kept unplaced with the reason (shown with it, not on the map).
  void placeFromHint(firehub::v1::Record& r) {
    static const Gazetteer kNone({});
    std::string why;
    if ((options_.gazetteer ? *options_.gazetteer : kNone).place(r, why)) return;
    r.set_unplaced(true);
    r.set_unplaced_reason(why);
    if (summary_.unplaced.size() < options_.max_reported_errors)
      summary_.unplaced.emplace_back(r.provenance().source_offset(), why);
  }

  // The envelope fields the host owns, and the topics the record goes to.
  void fillEnvelope(lake::StoreItem& item, const firehub::v1::Point& anchor) {
    firehub::v1::Record& r = item.record();
    r.set_id(spec_.id + ":" + r.provenance().source_record_id());
    r.set_feed_id(spec_.id);
    r.set_agency(spec_.agency);
    *r.mutable_received_at() = received_;
    firehub::v1::roundToKeptPrecision(*r.mutable_received_at());
    if (r.op() == firehub::v1::OP_UNSPECIFIED) r.set_op(firehub::v1::OP_UPSERT);
    if (r.classification() == firehub::v1::CLASSIFICATION_UNSPECIFIED) {
      r.set_classification(firehub::v1::CLASSIFICATION_INTERNAL);
    }
    if (r.has_geometry()) {
      const S2CellId leaf(S2LatLng::FromDegrees(anchor.lat(), anchor.lon()));
      r.set_s2_cell(leaf.parent(options_.cell_level).ToToken());
      item.leaf_cell = leaf.id();  // the lake's geo index and latest pointer use the same point
    }
    auto* prov = r.mutable_provenance();
    prov->set_connector_id(descriptor_.id);
    prov->set_connector_version(descriptor_.version);
    prov->set_transport(request_.transport);
    // A body type with restricted fields is also published redacted, on <topic>.public.
    item.topics.reserve(2);
    item.topics.push_back(topic_);
    if (bodyHasRestrictedFields(r)) item.topics.push_back(public_topic_);
    item.entity_key = lake::entityKey(r);
  }

  std::string charset_;
  lake::Lake& lake_;
  const PipelineOptions& options_;
  registry::Feed& feed_;
  const IngestRequest& request_;
  const registry::FeedSpec& spec_;
  const fh_connector_descriptor& descriptor_;
  const std::string domain_, topic_, public_topic_;
  const Crs crs_;
  const google::protobuf::Timestamp received_;
  std::vector<lake::StoreItem> items_;
  std::vector<firehub::v1::DeadLetter> dead_;
  IngestSummary summary_;
  plugin::DecodeSink sink_;
  // Newest record per entity in this body, so a patch or a reference can follow its base in the
  // same push.
  absl::flat_hash_map<std::string, size_t> batch_latest_;
  size_t latest_of_items_ = 0;  // items_ gathered into batch_latest_
  Status lake_error_;
  size_t garbage_ = 0;  // pieces that show the connector itself is broken
  // What the agency sent for the records that follow (plugins of ABI >= 1.2 say so); a record
  // the hub rejects is dead-lettered with these bytes, so it can be replayed.
  std::string source_;
  bool have_source_ = false;
  std::shared_ptr<google::protobuf::Arena> arena_;
};

Result<IngestSummary> Pipeline::attempt(registry::Feed& feed, const IngestRequest& request) {
  // A text body in another charset goes to the connector as UTF-8.
  std::string text, charset, note;
  IngestRequest as_utf8;
  if (request.content_type == kXlsxType) {  // a spreadsheet's sheet goes as CSV
    auto csv = spreadsheetAsCsv(request.body, feed.spec().sheet);
    if (!csv.isOk()) return csv.status();
    text = std::move(csv).value();
    as_utf8 = request;
    as_utf8.body = text;
    as_utf8.content_type = "text/csv";
    Body sheet(lake_, options_, feed, as_utf8, "utf-8");
    return decodeAndCommit(feed, as_utf8, sheet, "");
  }
  FIREHUB_RETURN_IF_ERROR(textAsUtf8(request.body, request.content_type, request.charset,
                                     feed.spec().encoding, text, charset, &note));
  if (charset != "utf-8") {
    as_utf8 = request;
    as_utf8.body = text;
  }
  const IngestRequest& in = charset != "utf-8" ? as_utf8 : request;
  Body body(lake_, options_, feed, in, charset);
  return decodeAndCommit(feed, in, body, note);
}

Result<IngestSummary> Pipeline::decodeAndCommit(registry::Feed& feed, const IngestRequest& request,
                                                Body& body, const std::string& note) {
  Status decoded = body.decode();
  if (!decoded.isOk()) {
    feed.setLastError(decoded.message());
    return decoded;  // nothing of this body is stored
  }
  if (!note.empty()) {
    auto& errors = body.summary().errors;
    errors.insert(errors.begin(), note);
  }
  if (!body.lakeError().isOk()) {
    feed.setLastError(body.lakeError().message());
    return body.lakeError();  // could not read the state a patch or reference needs: retry later
  }
  if (request.replay_of && !body.dead().empty()) {  // still failing: the dead letter stays as it is
    body.summary().rejected = body.dead().size();
    return body.summary();
  }
  return commitBody(feed, request, body);
}

Result<IngestSummary> Pipeline::commitBody(registry::Feed& feed, const IngestRequest& request,
                                           Body& body) {
  const auto& spec = feed.spec();
  const auto received = body.received();
  auto& items = body.items();
  const auto& dead = body.dead();
  IngestSummary& summary = body.summary();
  bool stop_feed = policy_stops(spec, dead);
  if (stop_feed) items.clear();  // nothing of a body with a bad record is stored

  auto& counters = feed.counters();
  std::vector<uint64_t> resolved;
  if (request.replay_of) resolved.push_back(*request.replay_of);
  auto committed = lake_.commit(
      std::move(items), dead,
      [&](const lake::CommitResult& r, std::vector<std::pair<std::string, std::string>>& meta) {
        registry::FeedStats stats{
            counters.accepted + r.stored, counters.rejected + r.dead_lettered,
            counters.duplicates + r.duplicates,
            r.stored > 0 ? received.seconds() : counters.last_record_at.load()};
        meta.emplace_back(registry::feedStatsKey(spec.id), registry::encodeFeedStats(stats));
        meta.insert(meta.end(), request.meta.begin(), request.meta.end());
      },
      resolved);
  if (committed.isOk() && stop_feed) {
    counters.rejected += committed->dead_lettered;
    metrics_.countRecords(spec.id, "rejected", committed->dead_lettered);
    std::string reason = summary.errors.front();
    Status stopped = feeds_.stop(spec.id, reason);
    if (!stopped.isOk()) return stopped;
    feed.setLastError(reason);
    return Status::invalidArgument(reason + "; feed '" + spec.id +
                                   "' is now stopped (errors.tolerance = none) and nothing of this "
                                   "body was stored: fix the source, then POST /api/v1/feeds/" +
                                   spec.id + "/resume and send it again");
  }
  if (!committed.isOk()) {
    feed.setLastError(committed.status().message());
    FIREHUB_LOG(kError, "pipeline", "feed " << spec.id << ": " << committed.status().toString());
    return committed.status();
  }
  summary.consumed = body.sink().consumed.value_or(request.body.size());
  summary.reply = std::move(body.sink().reply);
  summary.accepted = committed->stored;
  summary.duplicates = committed->duplicates;
  summary.rejected = committed->dead_lettered;
  if (committed->foreign > 0 && summary.errors.size() < options_.max_reported_errors) {
    summary.errors.push_back(
        std::to_string(committed->foreign) +
        " record(s) name entities that belong to another agency: not stored, see "
        "the dead letters of feed " +
        spec.id);
  }

  counters.accepted += summary.accepted;
  counters.rejected += summary.rejected;
  counters.duplicates += summary.duplicates;
  if (summary.accepted > 0) counters.last_record_at = received.seconds();
  if (!summary.errors.empty()) feed.setLastError(summary.errors.front());
  metrics_.countRecords(spec.id, "accepted", summary.accepted);
  metrics_.countRecords(spec.id, "rejected", summary.rejected);
  metrics_.countRecords(spec.id, "duplicate", summary.duplicates);
  metrics_.setOutboxDepth(static_cast<double>(lake_.outboxDepth()));
  if (summary.accepted > 0 && on_commit_) on_commit_();
  return summary;
}

Result<std::vector<ReplayResult>> Pipeline::replay(const std::vector<uint64_t>& sequences) {
  std::vector<ReplayResult> out;
  size_t resolved_any = 0;
  for (uint64_t seq : sequences) {
    ReplayResult r;
    r.sequence = seq;
    auto letter = lake_.getDeadLetter(seq);
    if (!letter.isOk()) return letter.status();
    if (!letter.value()) {
      r.reason = "no dead letter " + std::to_string(seq) + " (already replayed or discarded)";
      out.push_back(std::move(r));
      continue;
    }
    const auto& dl = *letter.value();
    r.feed_id = dl.feed_id();
    static const std::set<std::string> kReplayable = {"transport", "decode", "validate"};
    if (!kReplayable.count(dl.stage())) {
      r.reason =
          "stage '" + dl.stage() + "' is not replayable (only transport, decode and validate)";
    } else if (dl.content_type() == kRecordBytesType) {
      r.reason =
          "it holds what the connector emitted, not the source bytes (connector ABI < 1.2): "
          "send the source again";
    } else if (dl.content_type() == kTruncatedType) {
      r.reason =
          "it holds only the start of what was sent: send the source again (a dropped file "
          "waits in the drop directory's failed/)";
    } else if (dl.raw().empty()) {
      r.reason = "the dead letter holds no raw bytes";
    } else if (!feeds_.get(dl.feed_id())) {
      r.reason = "feed '" + dl.feed_id() + "' no longer exists";
    } else {
      std::string body = dl.replay_prefix() + dl.raw();
      IngestRequest req;
      req.feed_id = dl.feed_id();
      req.body = body;
      // "text/csv; charset=gb18030": the bytes as they were sent, in their charset.
      const std::string& type = dl.content_type();
      req.content_type = type.substr(0, type.find(';'));
      if (const size_t at = type.find("; charset="); at != std::string::npos)
        req.charset = type.substr(at + 10);
      req.transport = "replay";
      req.replay_of = seq;
      auto result = ingest(req);
      if (!result.isOk()) {
        r.reason = result.status().message();
        if (result.status().code() == StatusCode::kUnavailable ||
            result.status().code() == StatusCode::kResourceExhausted) {
          return result.status();  // the lake is in trouble: stop here, nothing was changed
        }
      } else if (result->rejected > 0) {
        r.reason = result->errors.empty() ? "still rejected" : result->errors.front();
      } else {
        r.resolved = true;
        r.accepted = result->accepted;
        r.duplicates = result->duplicates;
        ++resolved_any;
      }
    }
    out.push_back(std::move(r));
  }
  if (resolved_any > 0) {
    FIREHUB_LOG(
        kInfo, "pipeline",
        "replay: " << resolved_any << " of " << sequences.size() << " dead letters now stored");
  }
  return out;
}

}  // namespace firehub::pipeline
