// What a child hub forwards up its tier link: records in the shared schema, checked as a
// connector's are, given their origin, and stored in one commit.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/util/time_util.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>

#include <algorithm>
#include <chrono>
#include <functional>

#include "firehub/classification.h"
#include "firehub/log.h"
#include "firehub/pipeline.h"
#include "firehub/v1/precision.h"

namespace firehub::pipeline {
namespace {

using google::protobuf::util::TimeUtil;

constexpr size_t kMaxRecordBytes = 16 << 20;

void prefix(std::string* field, const std::string& hub) {
  if (!field->empty()) *field = hub + "/" + *field;
}

google::protobuf::Timestamp nowStamp() {
  return TimeUtil::MillisecondsToTimestamp(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
}

// Each size-delimited record of a body, with its index; InvalidArgument when the framing is
// broken (nothing of the body is taken then).
Status forEachDelimited(std::string_view body,
                        const std::function<void(std::string&& bytes, size_t index)>& fn) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(body.data()),
                                            static_cast<int>(body.size()));
  in.SetTotalBytesLimit(static_cast<int>(std::min<size_t>(body.size() + 16, INT32_MAX)));
  std::vector<std::string> records;
  while (!in.ExpectAtEnd()) {
    const std::string at = "record " + std::to_string(records.size() + 1);
    uint32_t size = 0;
    if (!in.ReadVarint32(&size) || size > kMaxRecordBytes) {
      return Status::invalidArgument(at + ": not a size-delimited firehub.v1.Record (" +
                                     kForwardedType + ")");
    }
    std::string bytes;
    if (!in.ReadString(&bytes, static_cast<int>(size)))
      return Status::invalidArgument(at + ": the body ends inside it");
    records.push_back(std::move(bytes));
  }
  for (size_t i = 0; i < records.size(); ++i) fn(std::move(records[i]), i);
  return Status::ok();
}

// The fields this hub owns: when it received the record, its grid cell, its entity key, its
// topics.
void finish(lake::StoreItem& item, const firehub::v1::Point& anchor,
            const google::protobuf::Timestamp& now, int cell_level) {
  firehub::v1::Record& r = item.record();
  *r.mutable_received_at() = now;
  const S2CellId leaf(S2LatLng::FromDegrees(anchor.lat(), anchor.lon()));
  r.set_s2_cell(leaf.parent(cell_level).ToToken());
  item.leaf_cell = leaf.id();
  item.entity_key = lake::entityKey(r);
  item.topics.push_back(domainTopic(r.domain()));
  if (bodyHasRestrictedFields(r)) item.topics.push_back(domainTopic(r.domain()) + ".public");
}

}  // namespace

void nameForOrigin(firehub::v1::Record& r, const std::string& hub, const std::string& level) {
  auto* prov = r.mutable_provenance();
  if (!prov->origin_hub().empty()) return;
  prov->set_origin_hub(hub);
  prov->set_origin_level(level);
  prefix(r.mutable_id(), hub);
  prefix(r.mutable_entity_id(), hub);
  prefix(r.mutable_feed_id(), hub);
  prefix(r.mutable_agency(), hub);
  if (r.has_located_by()) prefix(r.mutable_located_by()->mutable_entity_id(), hub);
}

firehub::v1::DeadLetter Pipeline::tierDeadLetter(const std::string& feed, const std::string& hub,
                                                 const std::string& reason,
                                                 const std::string& bytes, size_t index,
                                                 bool restricted) const {
  firehub::v1::DeadLetter dl;
  dl.set_feed_id(feed);
  dl.set_agency(hub);
  dl.set_connector_id("firehub.tier");
  dl.set_stage("validate");
  dl.set_reason(reason);
  *dl.mutable_at() = nowStamp();
  dl.set_raw(bytes);
  dl.set_source_offset("record " + std::to_string(index + 1));
  dl.set_content_type(kForwardedType);
  dl.set_restricted(restricted);
  return dl;
}

Result<ForwardSummary> Pipeline::commitTier(const std::string& feed,
                                            std::vector<lake::StoreItem>& items,
                                            const std::vector<firehub::v1::DeadLetter>& dead,
                                            ForwardSummary& summary) {
  auto committed = lake_.commit(items, dead);
  if (!committed.isOk()) {
    FIREHUB_LOG(kError, "pipeline", feed << ": " << committed.status().toString());
    return committed.status();
  }
  summary.accepted = committed->stored;
  summary.duplicates = committed->duplicates;
  summary.rejected = committed->dead_lettered;
  metrics_.countRecords(feed, "accepted", static_cast<double>(summary.accepted));
  metrics_.countRecords(feed, "rejected", static_cast<double>(summary.rejected));
  metrics_.countRecords(feed, "duplicate", static_cast<double>(summary.duplicates));
  metrics_.setOutboxDepth(static_cast<double>(lake_.outboxDepth()));
  if (summary.accepted > 0 && on_commit_) on_commit_();
  return summary;
}

Result<ForwardSummary> Pipeline::ingestForwarded(const ForwardRequest& request) {
  ForwardSummary summary;
  const auto now = nowStamp();
  const std::string feed = "tier:" + request.from_hub;
  std::vector<lake::StoreItem> items;
  std::vector<firehub::v1::DeadLetter> dead;
  auto reject = [&](const std::string& reason, const std::string& bytes, size_t index,
                    bool restricted) {
    dead.push_back(tierDeadLetter(feed, request.from_hub, reason, bytes, index, restricted));
    if (summary.errors.size() < options_.max_reported_errors)
      summary.errors.push_back("record " + std::to_string(index + 1) + ": " + reason);
  };
  FIREHUB_RETURN_IF_ERROR(forEachDelimited(request.body, [&](std::string&& bytes, size_t index) {
    lake::StoreItem item;
    firehub::v1::Record& r = item.record();
    if (!r.ParseFromString(bytes)) return reject("not a firehub.v1.Record", bytes, index, false);
    const bool restricted = bodyHasRestrictedFields(r);
    auto* prov = r.mutable_provenance();
    if (prov->origin_hub() == request.here ||
        std::find(prov->hops().begin(), prov->hops().end(), request.here) != prov->hops().end()) {
      ++summary.looped;  // it passed this hub already: never stored twice, never sent back
      return;
    }
    if (std::find(request.domains.begin(), request.domains.end(), r.domain()) ==
        request.domains.end()) {
      return reject(
          "domain '" + r.domain() + "' is not among the domains of " + request.from_hub + "'s key",
          bytes, index, restricted);
    }
    firehub::v1::roundToKeptPrecision(r);
    firehub::v1::Point anchor;
    if (std::string problem = checkRecord(r, r.domain(), anchor); !problem.empty())
      return reject(problem, bytes, index, restricted);
    // Taken in by the child itself: from here on it is the child's, named so; else it passed
    // the child on its way.
    if (prov->origin_hub().empty()) {
      nameForOrigin(r, request.from_hub, request.from_level);
    } else {
      prov->add_hops(request.from_hub);
    }
    prov->set_transport("tier");
    finish(item, anchor, now, options_.cell_level);
    items.push_back(std::move(item));
  }));
  return commitTier(feed, items, dead, summary);
}

Result<ForwardSummary> Pipeline::ingestFromParent(std::string_view body) {
  ForwardSummary summary;
  const auto now = nowStamp();
  const std::string feed = "tier:parent";
  std::vector<lake::StoreItem> items;
  std::vector<firehub::v1::DeadLetter> dead;
  FIREHUB_RETURN_IF_ERROR(forEachDelimited(body, [&](std::string&& bytes, size_t index) {
    lake::StoreItem item;
    firehub::v1::Record& r = item.record();
    std::string problem;
    firehub::v1::Point anchor;
    if (!r.ParseFromString(bytes)) {
      problem = "not a firehub.v1.Record";
    } else if (!r.has_weather_warning() || r.provenance().origin_hub().empty()) {
      problem = "only CAP warnings with their origin come down a tier link";
    } else {
      firehub::v1::roundToKeptPrecision(r);
      problem = checkRecord(r, r.domain(), anchor);
    }
    if (!problem.empty()) {
      dead.push_back(tierDeadLetter(feed, "parent", problem, bytes, index, false));
      if (summary.errors.size() < options_.max_reported_errors)
        summary.errors.push_back("record " + std::to_string(index + 1) + ": " + problem);
      return;
    }
    r.mutable_provenance()->set_transport(kFromParentTransport);
    finish(item, anchor, now, options_.cell_level);
    items.push_back(std::move(item));
  }));
  return commitTier(feed, items, dead, summary);
}

}  // namespace firehub::pipeline
