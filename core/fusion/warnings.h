// CAP 1.2 warning drafts: areas (S2 cells of warnings.area_level) whose grid cells reach the
// configured level get an Alert, then an Update whenever the cells or the highest level change,
// and a Cancel when no cell is at the level any more. Private to fusion.
// @remark Not thread-safe; FusionEngine serialises access.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "firehub/risk.h"
#include "firehub/v1/layer.pb.h"

namespace firehub::fusion {

class WarningDrafter {
 public:
  WarningDrafter(const RiskConfig& config, int cell_level, int local_offset_minutes);

  // The area (S2 cell id) a grid cell belongs to.
  uint64_t areaOf(uint64_t cell) const;
  // The newest stored draft of an area (from the lake at start).
  void restore(const firehub::v1::WarningDraft& draft);
  // New drafts for the areas of the changed cells and the pending areas whose hold ran out,
  // from the current cells (`changed`: the cells whose published state changed since the last
  // call, or left the layer). At most warnings.max_per_step drafts: the areas not looked at yet
  // wait, in the order their cells changed, for the next calls (see backlog()).
  std::vector<firehub::v1::WarningDraft> update(
      const std::vector<uint64_t>& changed, const std::map<uint64_t, firehub::v1::RiskCell>& cells,
      int64_t now);
  // Areas with changed cells that a call with a limit left for the next ones.
  size_t backlog() const { return queued_.size(); }
  // Areas with a change waiting out warnings.hold_s.
  bool hasDue(int64_t now) const;
  // Pending areas whose hold has run out by `now` (the others wait, unchanged, for their time).
  std::vector<uint64_t> due(int64_t now) const;
  // The newest draft of every area that is still warning (not cancelled).
  std::vector<firehub::v1::WarningDraft> active() const;
  // The Actual message an operator (`issuer`, a key id) makes of a draft: identifier
  // "<draft>-A", status Actual, referencing the draft.
  firehub::v1::WarningDraft issue(const firehub::v1::WarningDraft& draft, const std::string& issuer,
                                  int64_t now,
                                  const std::map<uint64_t, firehub::v1::RiskCell>& cells) const;

 private:
  struct Area {
    firehub::v1::WarningDraft last;  // newest message
    uint64_t version = 0;            // messages drafted for the area so far
    int64_t pending_since = 0;       // when the current difference was first seen; 0 = none
  };
  // Drafts the area's message into `out` if its warning state differs from its last one (and no
  // hold applies).
  void draftArea(uint64_t area_id, const std::map<uint64_t, firehub::v1::RiskCell>& cells,
                 int64_t now, std::vector<firehub::v1::WarningDraft>& out);
  std::string capXml(const firehub::v1::WarningDraft& draft, const std::string& sent,
                     const std::vector<uint64_t>& cells,
                     const std::map<uint64_t, firehub::v1::RiskCell>& all) const;
  std::string timeText(int64_t unix_seconds) const;
  // Calls fn(area) for each pending area whose hold has run out by `now`, while fn returns true
  // (oldest first: only the due ones are looked at).
  template <typename Fn>
  void forEachDue(int64_t now, Fn&& fn) const {
    for (const auto& [since, id] : pending_) {
      if (now - since < config_.warning_hold_s || !fn(id)) return;
    }
  }

  const RiskConfig& config_;
  int cell_level_;
  int area_level_;
  int offset_minutes_;
  int warning_rank_;  // rank of warnings.level: cells at this rank or above are warned
  bool isHot(const firehub::v1::RiskCell& cell) const;

  std::map<uint64_t, Area> areas_;
  std::set<std::pair<int64_t, uint64_t>> pending_;  // (pending_since, area) of the pending areas
  // Areas whose cells changed and that are not looked at yet, in the order they changed.
  std::deque<uint64_t> queue_;
  std::set<uint64_t> queued_;
  // Cells at or above the warning level, in S2 order (an area's are one range): built from all
  // cells at the first update, then kept from the changed cells.
  struct Hot {
    int rank = 0;
    double score = 0;
  };
  std::map<uint64_t, Hot> hot_;
  bool hot_ready_ = false;
};

}  // namespace firehub::fusion
