#include "fusion/warnings.h"

#include <s2/s2cell.h>
#include <s2/s2cell_id.h>
#include <s2/s2cell_union.h>
#include <s2/s2latlng.h>
#include <s2/s2loop.h>
#include <s2/s2polygon.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string_view>

namespace firehub::fusion {
namespace {

constexpr const char* kCapNs = "urn:oasis:names:tc:emergency:cap:1.2";

// Default instructions per level rank when warnings.instruction.<level> is not configured.
std::string defaultInstruction(int rank, bool chinese) {
  if (chinese) {
    switch (rank) {
      case 1:
        return "立即核查区域内报警与重点单位，预置力量，做好出动准备。";
      case 2:
        return "加强区域巡查与重点单位检查，确认水源与道路畅通。";
      default:
        return "关注区域风险变化，落实日常防火检查。";
    }
  }
  switch (rank) {
    case 1:
      return "Verify alarms and key units in the area now; pre-position crews and stand ready.";
    case 2:
      return "Step up patrols and key-unit checks; confirm water supply and access roads.";
    default:
      return "Watch the area's risk; keep up routine fire-safety checks.";
  }
}

// A CAP document written element by element into one string, indented two spaces per level.
// CAP is elements and text only (no attributes but the namespace on <alert>); text is escaped,
// and characters XML 1.0 does not allow (controls other than tab and newline) become spaces.
class CapWriter {
 public:
  CapWriter() {
    out_.reserve(4096);
    out_ += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  }
  void open(std::string_view name) {
    indent();
    out_ += '<';
    out_ += name;
    if (depth_ == 0) {
      out_ += " xmlns=\"";
      out_ += kCapNs;
      out_ += '"';
    }
    out_ += ">\n";
    ++depth_;
  }
  void close(std::string_view name) {
    --depth_;
    indent();
    ((out_ += "</") += name) += ">\n";
  }
  void leaf(std::string_view name, std::string_view text) {
    indent();
    ((out_ += '<') += name) += '>';
    for (char ch : text) {
      switch (ch) {
        case '&':
          out_ += "&amp;";
          break;
        case '<':
          out_ += "&lt;";
          break;
        case '>':
          out_ += "&gt;";
          break;
        default:
          out_ += (static_cast<unsigned char>(ch) < 0x20 && ch != '\t' && ch != '\n' && ch != '\r')
                      ? ' '
                      : ch;
      }
    }
    ((out_ += "</") += name) += ">\n";
  }
  std::string take() { return std::move(out_); }

 private:
  void indent() { out_.append(static_cast<size_t>(depth_) * 2, ' '); }
  std::string out_;
  int depth_ = 0;
};

// Whether the draft names exactly these cells, in this order.
bool sameCells(const firehub::v1::WarningDraft& draft, const std::vector<uint64_t>& cells) {
  if (draft.cells_size() != static_cast<int>(cells.size())) return false;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (S2CellId::FromToken(draft.cells(static_cast<int>(i))).id() != cells[i]) return false;
  }
  return true;
}

}  // namespace

WarningDrafter::WarningDrafter(const RiskConfig& config, int cell_level, int local_offset_minutes)
    : config_(config),
      cell_level_(cell_level),
      area_level_(std::min(config.warning_area_level, cell_level)),
      offset_minutes_(local_offset_minutes),
      warning_rank_(config.rankOf(config.warning_level)) {}

uint64_t WarningDrafter::areaOf(uint64_t cell) const {
  return S2CellId(cell).parent(area_level_).id();
}

void WarningDrafter::restore(const firehub::v1::WarningDraft& draft) {
  S2CellId id = S2CellId::FromToken(draft.area());
  if (!id.is_valid()) return;
  Area& a = areas_[id.id()];
  if (a.last.sent().seconds() > draft.sent().seconds()) return;
  a.last = draft;
  // Identifiers end in the area's message number: continue after it.
  size_t dash = draft.identifier().rfind('-');
  if (dash != std::string::npos) {
    a.version = std::max<uint64_t>(
        a.version, std::strtoull(draft.identifier().c_str() + dash + 1, nullptr, 10));
  }
}

std::string WarningDrafter::timeText(int64_t unix_seconds) const {
  std::time_t local = unix_seconds + offset_minutes_ * 60;
  std::tm tm{};
  gmtime_r(&local, &tm);
  char buf[96];
  int off = std::abs(offset_minutes_);
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                offset_minutes_ < 0 ? '-' : '+', off / 60, off % 60);
  return buf;
}

bool WarningDrafter::isHot(const firehub::v1::RiskCell& cell) const {
  return cell.level_rank() != 0 && cell.level_rank() <= warning_rank_;
}

std::vector<firehub::v1::WarningDraft> WarningDrafter::update(
    const std::vector<uint64_t>& changed, const std::map<uint64_t, firehub::v1::RiskCell>& cells,
    int64_t now) {
  if (!hot_ready_) {
    for (const auto& [id, c] : cells) {
      if (isHot(c)) hot_.emplace_hint(hot_.end(), id, Hot{c.level_rank(), c.score()});
    }
    hot_ready_ = true;
  } else {
    for (uint64_t id : changed) {
      auto it = cells.find(id);
      if (it != cells.end() && isHot(it->second))
        hot_[id] = Hot{it->second.level_rank(), it->second.score()};
      else
        hot_.erase(id);
    }
  }
  for (uint64_t id : changed) {
    const uint64_t area = areaOf(id);
    if (queued_.insert(area).second) queue_.push_back(area);
  }
  // Pending areas whose hold ran out first, then the changed ones in the order they changed;
  // an area is looked at with the cells as they are when its turn comes.
  std::vector<firehub::v1::WarningDraft> out;
  const size_t max_drafts = config_.warning_max_per_step;
  const auto full = [&] { return max_drafts > 0 && out.size() >= max_drafts; };
  for (uint64_t area : due(now)) {
    if (full()) return out;
    queued_.erase(area);  // looked at now: its place in the queue is skipped
    draftArea(area, cells, now, out);
  }
  while (!queue_.empty() && !full()) {
    const uint64_t area = queue_.front();
    queue_.pop_front();
    if (queued_.erase(area) > 0) draftArea(area, cells, now, out);
  }
  return out;
}

void WarningDrafter::draftArea(uint64_t area_id,
                               const std::map<uint64_t, firehub::v1::RiskCell>& cells, int64_t now,
                               std::vector<firehub::v1::WarningDraft>& out) {
  S2CellId area(area_id);
  std::vector<uint64_t> hot;
  int top_rank = 0;
  double max_score = 0;
  for (auto h = hot_.lower_bound(area.range_min().id());
       h != hot_.end() && h->first <= area.range_max().id(); ++h) {
    hot.push_back(h->first);
    if (top_rank == 0 || h->second.rank < top_rank) top_rank = h->second.rank;
    max_score = std::max(max_score, h->second.score);
  }
  Area& a = areas_[area_id];
  bool was_active = a.version > 0 && a.last.msg_type() != "Cancel";
  std::string msg_type;
  auto settle = [&] {
    pending_.erase({a.pending_since, area_id});
    a.pending_since = 0;
  };
  if (hot.empty()) {
    if (!was_active) {
      settle();
      return;
    }
    msg_type = "Cancel";
  } else if (!was_active) {
    msg_type = "Alert";
  } else {
    if (sameCells(a.last, hot) && a.last.level() == config_.levels[top_rank - 1].name) {
      settle();
      return;
    }
    msg_type = "Update";
  }
  bool escalation =
      !hot.empty() && top_rank == 1 && (!was_active || config_.rankOf(a.last.level()) != 1);
  if (!escalation && config_.warning_hold_s > 0) {
    if (a.pending_since == 0) {
      a.pending_since = now;
      pending_.insert({now, area_id});
    }
    if (now - a.pending_since < config_.warning_hold_s) return;
  }
  settle();
  firehub::v1::WarningDraft d;
  d.set_area(area.ToToken());
  d.set_identifier("FH-" + area.ToToken() + "-" + std::to_string(++a.version));
  d.set_msg_type(msg_type);
  d.mutable_sent()->set_seconds(now);
  if (msg_type == "Cancel") {
    d.set_level(a.last.level());
    d.set_severity(a.last.severity());
    for (const auto& t : a.last.cells()) d.add_cells(t);
    d.set_max_score(a.last.max_score());
  } else {
    d.set_level(config_.levels[top_rank - 1].name);
    d.set_severity(capSeverityOfRank(top_rank));
    for (uint64_t c : hot) d.add_cells(S2CellId(c).ToToken());
    d.set_max_score(max_score);
  }
  if (msg_type != "Alert") {
    d.add_references(config_.warning_sender + "," + a.last.identifier() + "," +
                     timeText(a.last.sent().seconds()));
  }
  std::vector<uint64_t> shape = hot;
  if (shape.empty()) {
    for (const auto& t : a.last.cells()) shape.push_back(S2CellId::FromToken(t).id());
  }
  d.set_status(config_.warning_status);
  d.set_cap_xml(capXml(d, timeText(now), shape, cells));
  a.last = d;
  out.push_back(std::move(d));
}

std::vector<uint64_t> WarningDrafter::due(int64_t now) const {
  std::vector<uint64_t> out;
  forEachDue(now, [&](uint64_t id) {
    out.push_back(id);
    return true;
  });
  return out;
}

bool WarningDrafter::hasDue(int64_t now) const {
  bool any = false;
  forEachDue(now, [&](uint64_t) {
    any = true;
    return false;
  });
  return any;
}

firehub::v1::WarningDraft WarningDrafter::issue(
    const firehub::v1::WarningDraft& draft, const std::string& issuer, int64_t now,
    const std::map<uint64_t, firehub::v1::RiskCell>& cells) const {
  firehub::v1::WarningDraft d = draft;
  d.set_identifier(draft.identifier() + "-A");
  d.set_status("Actual");
  d.set_draft(draft.identifier());
  d.set_issued_by(issuer);
  d.mutable_sent()->set_seconds(now);
  d.clear_references();
  for (const auto& r : draft.references()) d.add_references(r);
  d.add_references(config_.warning_sender + "," + draft.identifier() + "," +
                   timeText(draft.sent().seconds()));
  std::vector<uint64_t> shape;
  for (const auto& t : draft.cells()) shape.push_back(S2CellId::FromToken(t).id());
  d.set_cap_xml(capXml(d, timeText(now), shape, cells));
  return d;
}

std::vector<firehub::v1::WarningDraft> WarningDrafter::active() const {
  std::vector<firehub::v1::WarningDraft> out;
  for (const auto& [id, a] : areas_) {
    if (a.version > 0 && a.last.msg_type() != "Cancel") out.push_back(a.last);
  }
  return out;
}

// Long: a CAP 1.2 document written element by element in the order the standard gives.
std::string WarningDrafter::capXml(const firehub::v1::WarningDraft& d, const std::string& sent,
                                   const std::vector<uint64_t>& cells,
                                   const std::map<uint64_t, firehub::v1::RiskCell>& all) const {
  // The affected cells merged into polygons (outer boundaries; CAP polygons have no holes, so a
  // hole is warned as part of its area). One cell is its own boundary (the common Alert of a
  // single cell raised by a fire); more are merged by S2Builder.
  std::vector<std::string> polygons;
  auto ring = [&](int n, const auto& vertex) {
    std::string text;
    char buf[64];
    for (int v = 0; v <= n; ++v) {
      S2LatLng ll(vertex(v % n));
      int len = std::snprintf(buf, sizeof buf, "%s%.6f,%.6f", v ? " " : "", ll.lat().degrees(),
                              ll.lng().degrees());
      text.append(buf, static_cast<size_t>(len));
    }
    polygons.push_back(std::move(text));
  };
  if (cells.size() == 1) {
    S2Cell cell{S2CellId(cells.front())};
    ring(4, [&](int v) { return cell.GetVertex(v); });
  } else {
    std::vector<S2CellId> ids;
    for (uint64_t c : cells) ids.emplace_back(c);
    S2Polygon merged;
    merged.InitToCellUnionBorder(S2CellUnion(std::move(ids)));
    for (int i = 0; i < merged.num_loops(); ++i) {
      const S2Loop* loop = merged.loop(i);
      if (loop->is_hole()) continue;
      ring(loop->num_vertices(), [&](int v) { return loop->vertex(v); });
    }
  }
  int rank = std::max(1, config_.rankOf(d.level()));
  const WarningLevel& level = config_.levels[rank - 1];

  CapWriter w;
  w.open("alert");
  w.leaf("identifier", d.identifier());
  w.leaf("sender", config_.warning_sender);
  w.leaf("sent", sent);
  w.leaf("status", d.status().empty() ? config_.warning_status : d.status());
  w.leaf("msgType", d.msg_type());
  w.leaf("scope", "Public");
  if (d.references_size() > 0) {
    std::string refs;
    for (const auto& r : d.references()) {
      if (!refs.empty()) refs += ' ';
      refs += r;
    }
    w.leaf("references", refs);
  }
  std::vector<std::string> top;
  for (uint64_t c : cells) {
    auto it = all.find(c);
    if (it != all.end() && top.size() < 5) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%s %.1f (%s)", it->second.cell().c_str(), it->second.score(),
                    it->second.level().c_str());
      top.push_back(buf);
    }
  }
  for (bool chinese : {true, false}) {
    w.open("info");
    w.leaf("language", chinese ? "zh-CN" : "en-US");
    w.leaf("category", "Fire");
    w.leaf("event", chinese ? "火灾风险预警" : "Fire risk warning");
    w.leaf("responseType",
           d.msg_type() == "Cancel" ? "AllClear" : (rank <= 2 ? "Prepare" : "Monitor"));
    w.leaf("urgency", d.msg_type() == "Cancel" ? "Past" : "Expected");
    w.leaf("severity", d.msg_type() == "Cancel" ? "Minor" : d.severity());
    w.leaf("certainty", "Likely");
    w.leaf("onset", sent);
    w.leaf("senderName", "firehub");
    std::string headline;
    if (chinese) {
      headline = d.msg_type() == "Cancel" ? "解除" + level.name_zh + "火灾风险预警"
                                          : level.name_zh + "火灾风险预警（" + level.name + "级）";
    } else {
      headline = d.msg_type() == "Cancel"
                     ? "All clear: level " + level.name + " fire risk warning ended"
                     : "Level " + level.name + " (" + level.name_en + ") fire risk warning";
    }
    w.leaf("headline", headline);
    std::string description = (chinese ? "区域 " : "Area ") + d.area() + ": " +
                              std::to_string(d.cells_size()) +
                              (chinese ? " 个网格达到预警级别，最高风险分 "
                                       : " grid cells at the warning level, highest score ");
    char score[32];
    std::snprintf(score, sizeof score, "%.1f", d.max_score());
    description += score;
    if (!top.empty()) {
      description += chinese ? "。网格：" : ". Cells: ";
      for (size_t i = 0; i < top.size(); ++i) {
        if (i) description += ", ";
        description += top[i];
      }
    }
    w.leaf("description", description);
    if (d.msg_type() != "Cancel") {
      auto it = config_.warning_instructions.find(level.name + (chinese ? "" : ".en"));
      w.leaf("instruction", it != config_.warning_instructions.end()
                                ? it->second
                                : defaultInstruction(rank, chinese));
    }
    auto parameter = [&](const std::string& name, const std::string& value) {
      w.open("parameter");
      w.leaf("valueName", name);
      w.leaf("value", value);
      w.close("parameter");
    };
    parameter("firehub:level", level.name);
    parameter("firehub:colour", level.colour);
    parameter("firehub:max_score", score);
    parameter("firehub:cells", std::to_string(d.cells_size()));
    w.open("area");
    w.leaf("areaDesc", (chinese ? "消防风险网格区域 " : "firehub risk area ") + d.area());
    for (const auto& p : polygons) w.leaf("polygon", p);
    w.close("area");
    w.close("info");
  }
  w.close("alert");
  return w.take();
}

}  // namespace firehub::fusion
