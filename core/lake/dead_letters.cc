// Dead letters: listed, read and removed.
#include "firehub/lake.h"
#include <google/protobuf/util/json_util.h>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>
#include <s2/s2latlng_rect.h>
#include <s2/s2region_coverer.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <iterator>
#include <set>

#include "firehub/classification.h"
#include "firehub/log.h"
#include "lake/codec.h"
#include "lake/internal.h"

namespace firehub::lake {

Status Lake::listDeadLetters(uint64_t from, size_t max, const std::string& feed,
                             std::vector<DeadLetterEntry>& out) const {
  std::string start;
  codec::appendBigEndian64(start, from);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dlq_));
  for (it->Seek(start); it->Valid() && out.size() < max; it->Next()) {
    DeadLetterEntry e;
    e.sequence = codec::readBigEndian64(it->key().data());
    if (!e.letter.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::dataLoss("dead letter " + std::to_string(e.sequence) + " does not parse");
    }
    if (!feed.empty() && e.letter.feed_id() != feed) continue;
    out.push_back(std::move(e));
  }
  return fromRocks(it->status(), "scan dead letters");
}

Result<std::optional<firehub::v1::DeadLetter>> Lake::getDeadLetter(uint64_t sequence) const {
  std::string key;
  codec::appendBigEndian64(key, sequence);
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), dlq_, key, &value);
  if (s.IsNotFound()) return std::optional<firehub::v1::DeadLetter>();
  FIREHUB_RETURN_IF_ERROR(fromRocks(s, "read dead letter"));
  firehub::v1::DeadLetter dl;
  if (!dl.ParseFromString(value)) {
    return Status::dataLoss("dead letter " + std::to_string(sequence) + " does not parse");
  }
  return std::optional<firehub::v1::DeadLetter>(std::move(dl));
}

Result<size_t> Lake::deleteDeadLetters(const std::vector<uint64_t>& sequences) {
  std::lock_guard<std::mutex> lock(commit_mu_);
  rocksdb::WriteBatch batch;
  size_t existed = 0;
  std::string key, value;
  for (uint64_t s : sequences) {
    key.clear();
    codec::appendBigEndian64(key, s);
    if (db_->Get(rocksdb::ReadOptions(), dlq_, key, &value).ok()) ++existed;
    batch.Delete(dlq_, key);
  }
  FIREHUB_RETURN_IF_ERROR(write(batch, options_.sync, "delete dead letters"));
  dlq_count_ -= std::min<uint64_t>(dlq_count_.load(), existed);
  return existed;
}

}  // namespace firehub::lake
