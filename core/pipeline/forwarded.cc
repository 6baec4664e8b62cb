// What a child hub forwards up its tier link: records in the shared schema, checked as a
// connector's are, given their origin, and stored in one commit.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/util/time_util.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>

#include <algorithm>
#include <chrono>

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

}  // namespace

Result<ForwardSummary> Pipeline::ingestForwarded(const ForwardRequest& request) {
  ForwardSummary summary;
  const auto now =
      TimeUtil::MillisecondsToTimestamp(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  const std::string feed = "tier:" + request.from_hub;
  std::vector<lake::StoreItem> items;
  std::vector<firehub::v1::DeadLetter> dead;
  auto reject = [&](const std::string& reason, std::string_view bytes, size_t index,
                    bool restricted) {
    firehub::v1::DeadLetter dl;
    dl.set_feed_id(feed);
    dl.set_agency(request.from_hub);
    dl.set_connector_id("firehub.tier");
    dl.set_stage("validate");
    dl.set_reason(reason);
    *dl.mutable_at() = now;
    dl.set_raw(std::string(bytes));
    dl.set_source_offset("record " + std::to_string(index + 1));
    dl.set_content_type(kForwardedType);
    dl.set_restricted(restricted);
    dead.push_back(std::move(dl));
    if (summary.errors.size() < options_.max_reported_errors)
      summary.errors.push_back("record " + std::to_string(index + 1) + ": " + reason);
  };

  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(request.body.data()),
                                            static_cast<int>(request.body.size()));
  in.SetTotalBytesLimit(static_cast<int>(std::min<size_t>(request.body.size() + 16, INT32_MAX)));
  size_t index = 0;
  while (!in.ExpectAtEnd()) {
    uint32_t size = 0;
    if (!in.ReadVarint32(&size) || size > kMaxRecordBytes) {
      return Status::invalidArgument("record " + std::to_string(index + 1) +
                                     ": not a size-delimited firehub.v1.Record (" + kForwardedType +
                                     ")");
    }
    std::string bytes;
    if (!in.ReadString(&bytes, static_cast<int>(size))) {
      return Status::invalidArgument("record " + std::to_string(index + 1) +
                                     ": the body ends inside it");
    }
    lake::StoreItem item;
    firehub::v1::Record& r = item.record();
    if (!r.ParseFromString(bytes)) {
      reject("not a firehub.v1.Record", bytes, index++, false);
      continue;
    }
    const bool restricted = bodyHasRestrictedFields(r);
    auto* prov = r.mutable_provenance();
    if (prov->origin_hub() == request.here ||
        std::find(prov->hops().begin(), prov->hops().end(), request.here) != prov->hops().end()) {
      ++summary.looped;  // it passed this hub already: never stored twice, never sent back
      ++index;
      continue;
    }
    if (std::find(request.domains.begin(), request.domains.end(), r.domain()) ==
        request.domains.end()) {
      reject(
          "domain '" + r.domain() + "' is not among the domains of " + request.from_hub + "'s key",
          bytes, index++, restricted);
      continue;
    }
    firehub::v1::roundToKeptPrecision(r);
    firehub::v1::Point anchor;
    if (std::string problem = checkRecord(r, r.domain(), anchor); !problem.empty()) {
      reject(problem, bytes, index++, restricted);
      continue;
    }
    if (prov->origin_hub().empty()) {
      // Taken in by the child itself: from here on it is the child's, named so.
      prov->set_origin_hub(request.from_hub);
      prov->set_origin_level(request.from_level);
      prefix(r.mutable_id(), request.from_hub);
      prefix(r.mutable_entity_id(), request.from_hub);
      prefix(r.mutable_feed_id(), request.from_hub);
      prefix(r.mutable_agency(), request.from_hub);
      if (r.has_located_by()) prefix(r.mutable_located_by()->mutable_entity_id(), request.from_hub);
    } else {
      prov->add_hops(request.from_hub);
    }
    prov->set_transport("tier");
    *r.mutable_received_at() = now;
    const S2CellId leaf(S2LatLng::FromDegrees(anchor.lat(), anchor.lon()));
    r.set_s2_cell(leaf.parent(options_.cell_level).ToToken());
    item.leaf_cell = leaf.id();
    item.entity_key = lake::entityKey(r);
    item.topics.push_back(domainTopic(r.domain()));
    if (restricted) item.topics.push_back(domainTopic(r.domain()) + ".public");
    items.push_back(std::move(item));
    ++index;
  }
  auto committed = lake_.commit(std::move(items), dead);
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

}  // namespace firehub::pipeline
