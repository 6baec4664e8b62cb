// The risk grid's zoom pyramid: grid cells and the summaries of their ancestors.
#include <s2/s2cell_id.h>
#include <s2/s2latlng.h>
#include <s2/s2latlng_rect.h>
#include <s2/s2region_coverer.h>

#include <algorithm>

#include "firehub/tiles.h"

namespace firehub::tiles {

int CellSummary::topRank() const {
  for (int r = 0; r < kRanks; ++r) {
    if (by_rank[r]) return r + 1;
  }
  return 0;
}

void CellSummary::add(const CellSummary& o) {
  cells += o.cells;
  for (int r = 0; r < kRanks; ++r) by_rank[r] += o.by_rank[r];
  max_score = std::max(max_score, o.max_score);
  worst_response = std::max(worst_response, o.worst_response);
  worst_water = std::max(worst_water, o.worst_water);
}

CellSummary CellSummary::of(const CellState& s) {
  CellSummary out;
  out.cells = 1;
  if (s.rank > 0) out.by_rank[std::min<int>(s.rank, kRanks) - 1] = 1;
  out.max_score = s.score;
  out.worst_response = s.response_band;
  out.worst_water = s.water_band;
  return out;
}

namespace {
bool sameSummary(const CellSummary& a, const CellSummary& b) {
  return a.cells == b.cells && a.by_rank == b.by_rank && a.max_score == b.max_score &&
         a.worst_response == b.worst_response && a.worst_water == b.worst_water;
}
}  // namespace

CellPyramid::CellPyramid(int leaf_level, int min_level)
    : leaf_level_(std::clamp(leaf_level, 0, S2CellId::kMaxLevel)),
      min_level_(std::clamp(min_level, 0, leaf_level_)),
      levels_(static_cast<size_t>(leaf_level_ - min_level_ + 1)) {}

bool CellPyramid::set(uint64_t cell, const CellState& state) {
  if (S2CellId(cell).level() != leaf_level_) return false;
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto& leaves = levels_.back();
  const CellSummary s = CellSummary::of(state);
  auto it = leaves.find(cell);
  if (it != leaves.end() && sameSummary(it->second, s)) return false;
  leaves[cell] = s;
  if (!loading_) resummarise(cell);
  return true;
}

bool CellPyramid::erase(uint64_t cell) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (levels_.back().erase(cell) == 0) return false;
  if (!loading_) resummarise(cell);
  return true;
}

void CellPyramid::resummarise(uint64_t leaf) {
  const S2CellId id(leaf);
  for (int level = leaf_level_ - 1; level >= min_level_; --level) {
    const S2CellId parent = id.parent(level);
    const auto& below = levels_[static_cast<size_t>(level + 1 - min_level_)];
    CellSummary sum;
    for (int k = 0; k < 4; ++k) {
      auto it = below.find(parent.child(k).id());
      if (it != below.end()) sum.add(it->second);
    }
    auto& here = levels_[static_cast<size_t>(level - min_level_)];
    if (sum.cells == 0) {
      here.erase(parent.id());
    } else {
      here[parent.id()] = sum;
    }
  }
}

void CellPyramid::beginLoad() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (auto& level : levels_) level.clear();
  loading_ = true;
}

void CellPyramid::endLoad() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (int level = leaf_level_ - 1; level >= min_level_; --level) {
    auto& here = levels_[static_cast<size_t>(level - min_level_)];
    here.clear();
    for (const auto& [id, s] : levels_[static_cast<size_t>(level + 1 - min_level_)])
      here[S2CellId(id).parent(level).id()].add(s);
  }
  loading_ = false;
}

void CellPyramid::forEachIn(int level, const LonLatBox& box,
                            const std::function<bool(uint64_t, const CellSummary&)>& fn) const {
  if (level < min_level_ || level > leaf_level_) return;
  S2LatLngRect rect(S2LatLng::FromDegrees(std::max(-90.0, box.south), std::max(-180.0, box.west)),
                    S2LatLng::FromDegrees(std::min(90.0, box.north), std::min(180.0, box.east)));
  S2RegionCoverer::Options options;
  options.set_max_cells(16);
  options.set_max_level(level);
  S2RegionCoverer coverer(options);
  std::vector<S2CellId> covering;
  coverer.GetCovering(rect, &covering);
  std::shared_lock<std::shared_mutex> lock(mu_);
  const auto& cells = levels_[static_cast<size_t>(level - min_level_)];
  for (const S2CellId& cover : covering) {
    for (auto it = cells.lower_bound(cover.range_min().id());
         it != cells.end() && it->first <= cover.range_max().id(); ++it) {
      if (!fn(it->first, it->second)) return;
    }
  }
}

size_t CellPyramid::cells() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return levels_.back().size();
}

}  // namespace firehub::tiles
