// Place hints looked up in the district outlines: administrative-division codes (GB/T 2260) and
// place names.
#include <algorithm>
#include <cctype>

#include "firehub/pipeline.h"

namespace firehub::pipeline {
namespace {

std::string digitsOf(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::isdigit(static_cast<unsigned char>(c))) out += c;
  }
  return out;
}

bool endsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

void addPolygons(const firehub::v1::Geometry& g, firehub::v1::MultiPolygon& out) {
  if (g.has_polygon()) *out.add_polygons() = g.polygon();
  for (const auto& p : g.multi_polygon().polygons()) *out.add_polygons() = p;
}

}  // namespace

Gazetteer::Gazetteer(std::vector<District> districts) : districts_(std::move(districts)) {
  for (auto& d : districts_) d.code = digitsOf(d.code);
}

std::vector<const District*> Gazetteer::byCode(const std::string& raw, std::string& via) const {
  std::vector<const District*> out;
  auto exact = [&](const std::string& c) {
    for (const auto& d : districts_) {
      if (!c.empty() && d.code == c) return &d;
    }
    return static_cast<const District*>(nullptr);
  };
  std::string c = digitsOf(raw);
  if (c.size() == 9 || c.size() == 12) {  // a township or statistical code
    if (const District* d = exact(c)) return {d};
    c = c.substr(0, 6);  // the county that holds it
  }
  if (c.size() != 6) return out;
  if (const District* d = exact(c)) return {d};
  // A city (xxxx00) or province (xx0000): every district under it.
  const std::string prefix = endsWith(c, "0000") ? c.substr(0, 2)
                             : endsWith(c, "00") ? c.substr(0, 4)
                                                 : "";
  if (!prefix.empty()) {
    for (const auto& d : districts_) {
      if (d.code.size() >= 6 && d.code.compare(0, prefix.size(), prefix) == 0) out.push_back(&d);
    }
    if (!out.empty()) return out;
  }
  // A district the outlines do not hold: its city's, else its province's outline.
  for (const std::string& up : {c.substr(0, 4) + "00", c.substr(0, 2) + "0000"}) {
    if (const District* d = exact(up)) {
      via = " (by " + d->name + ", " + up + ", which holds it)";
      return {d};
    }
  }
  return out;
}

bool Gazetteer::place(firehub::v1::Record& r, std::string& why) const {
  const auto& hint = r.place_hint();
  std::vector<std::string> missing;
  if (hint.codes_size() > 0) {
    firehub::v1::MultiPolygon area;
    std::string placed;
    for (const auto& code : hint.codes()) {
      std::string via;
      auto found = byCode(code, via);
      if (found.empty()) missing.push_back("code " + code);
      for (const District* d : found) addPolygons(d->outline, area);
      if (!found.empty())
        placed += (placed.empty() ? "" : "; ") + code + " -> " +
                  (found.size() == 1 ? found.front()->name
                                     : std::to_string(found.size()) + " districts") +
                  via;
    }
    if (area.polygons_size() > 0) {
      *r.mutable_geometry()->mutable_multi_polygon() = std::move(area);
      r.set_placed_by("district outlines by administrative-division code: " + placed +
                      (missing.empty() ? "" : "; not found: " + missing.front()));
      return true;
    }
  }
  for (const auto& name : hint.names()) {
    std::vector<const District*> found;
    for (const auto& d : districts_) {
      if (!name.empty() && d.name == name) found.push_back(&d);
    }
    if (found.size() > 1) {
      missing.push_back("name " + name + " (" + std::to_string(found.size()) + " districts)");
      continue;
    }
    if (found.empty()) {
      missing.push_back("name " + name);
      continue;
    }
    if (hint.area()) {
      *r.mutable_geometry() = found.front()->outline;
      r.set_placed_by("district outline by name: " + found.front()->name);
      return true;
    }
    auto inside = lake::representativePoint(found.front()->outline);
    if (!inside) continue;
    auto* p = r.mutable_geometry()->mutable_point();
    p->set_lon(inside->lon);
    p->set_lat(inside->lat);
    r.set_placed_by("address: the centre of district " + found.front()->name +
                    " (approximate: the source gave no position)");
    return true;
  }
  why = districts_.empty() ? "the hub has no district outlines (map.outlines) to look up "
                           : "no district of map.outlines matches ";
  for (size_t i = 0; i < missing.size(); ++i) why += (i ? ", " : "") + missing[i];
  if (missing.empty()) why += "anything the source named";
  if (!hint.note().empty()) why += "; " + hint.note();
  return false;
}

}  // namespace firehub::pipeline
