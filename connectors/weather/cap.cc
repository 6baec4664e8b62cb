#include "cap.h"

#include <Poco/DOM/AutoPtr.h>
#include <Poco/DOM/DOMParser.h>
#include <Poco/DOM/Document.h>
#include <Poco/DOM/Element.h>
#include <Poco/DOM/NodeList.h>
#include <Poco/Exception.h>
#include <Poco/SAX/InputSource.h>
#include <Poco/SAX/XMLReader.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "firehub/sdk/text.h"

namespace firehub::connectors::cap {
namespace {

using firehub::v1::WeatherWarning;
using Poco::XML::Element;

std::string childText(Element* parent, const char* name) {
  Element* e = parent->getChildElementNS(kNamespace, name);
  return e ? std::string(firehub::sdk::trim(e->innerText())) : std::string();
}

std::vector<Element*> children(Element* parent, const char* name) {
  std::vector<Element*> out;
  for (auto* n = parent->firstChild(); n; n = n->nextSibling()) {
    auto* e = dynamic_cast<Element*>(n);
    if (e && e->localName() == name && e->namespaceURI() == kNamespace) out.push_back(e);
  }
  return out;
}

template <class E>
E word(const std::string& text, const std::string& prefix, E fallback) {
  std::string name = prefix;
  for (char c : text)
    name.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  const auto* v = google::protobuf::GetEnumDescriptor<E>()->FindValueByName(name);
  return v ? static_cast<E>(v->number()) : fallback;
}

// "lat,lon lat,lon ..." (CAP order is latitude first).
std::string readPolygon(const std::string& text, firehub::v1::Polygon& poly) {
  auto* ring = poly.add_rings();
  std::istringstream in(text);
  std::string pair;
  while (in >> pair) {
    auto comma = pair.find(',');
    auto lat = firehub::sdk::parseDouble(pair.substr(0, comma));
    std::optional<double> lon;
    if (comma != std::string::npos) lon = firehub::sdk::parseDouble(pair.substr(comma + 1));
    if (!lat || !lon || *lat < -90 || *lat > 90 || *lon < -180 || *lon > 180) {
      return "polygon point '" + pair + "' is not lat,lon in range";
    }
    auto* p = ring->add_points();
    p->set_lon(*lon);
    p->set_lat(*lat);
  }
  if (ring->points_size() < 4) return "polygon needs at least 4 points";
  const auto& a = ring->points(0);
  const auto& b = ring->points(ring->points_size() - 1);
  if (a.lon() != b.lon() || a.lat() != b.lat()) return "polygon is not closed";
  return "";
}

// "lat,lon radius_km" as a 36-sided polygon.
std::string readCircle(const std::string& text, WeatherWarning::Circle& circle,
                       firehub::v1::Polygon& poly) {
  std::istringstream in(text);
  std::string centre, radius_text;
  in >> centre >> radius_text;
  auto comma = centre.find(',');
  auto lat = firehub::sdk::parseDouble(centre.substr(0, comma));
  std::optional<double> lon;
  if (comma != std::string::npos) lon = firehub::sdk::parseDouble(centre.substr(comma + 1));
  auto radius = firehub::sdk::parseDouble(radius_text);
  if (!lat || !lon || !radius || *radius <= 0 || *radius > 5000 || std::fabs(*lat) > 89) {
    return "circle '" + text + "' is not 'lat,lon radius_km'";
  }
  circle.mutable_center()->set_lon(*lon);
  circle.mutable_center()->set_lat(*lat);
  circle.set_radius_km(*radius);
  auto* ring = poly.add_rings();
  const double dlat = *radius / 111.32;
  const double dlon = dlat / std::cos(*lat * M_PI / 180.0);
  for (int i = 0; i <= 36; ++i) {
    double a = (i % 36) * 2 * M_PI / 36;
    auto* p = ring->add_points();
    p->set_lon(std::clamp(*lon + dlon * std::cos(a), -180.0, 180.0));
    p->set_lat(*lat + dlat * std::sin(a));
  }
  return "";
}

// Whether a geocode's valueName names administrative-division codes (GB/T 2260, as China's
// national early-warning system and Amap/DataV outlines give them).
bool adminCodeScheme(std::string name) {
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  name.erase(std::remove_if(
                 name.begin(), name.end(),
                 [](char c) { return c == ' ' || c == '_' || c == '-' || c == '/' || c == '.'; }),
             name.end());
  static const char* kNames[] = {"行政区划代码", "行政区划编码", "行政区代码",
                                 "adcode",       "areacode",     "admincode",
                                 "gbt2260",      "gb2260",       "administrativedivisioncode",
                                 "regioncode"};
  for (const char* n : kNames) {
    if (name == n) return true;
  }
  return false;
}

void alertToRecords(Element* alert, int offset_minutes, Parsed& out) {
  const std::string identifier = childText(alert, "identifier");
  const std::string sender = childText(alert, "sender");
  auto reject = [&](const std::string& why) { out.rejected.emplace_back(identifier, why); };
  if (identifier.empty() || sender.empty()) return reject("alert lacks identifier or sender");
  auto sent = firehub::sdk::parseIsoTime(childText(alert, "sent"), offset_minutes);
  if (!sent) return reject("alert 'sent' is not a date-time");
  WeatherWarning w;
  w.set_identifier(identifier);
  w.set_sender(sender);
  *w.mutable_sent() = *sent;
  w.set_msg_type(
      word(childText(alert, "msgType"), "MSG_TYPE_", WeatherWarning::MSG_TYPE_UNSPECIFIED));
  w.set_status(word(childText(alert, "status"), "STATUS_", WeatherWarning::STATUS_UNSPECIFIED));
  if (w.msg_type() == WeatherWarning::MSG_TYPE_UNSPECIFIED)
    return reject("msgType is not Alert, Update, Cancel, Ack or Error");
  // references: "sender,identifier,sent" triples separated by spaces.
  std::istringstream refs(childText(alert, "references"));
  std::string triple;
  std::vector<std::string> referenced;
  while (refs >> triple) {
    auto first = triple.find(',');
    auto second = first == std::string::npos ? std::string::npos : triple.find(',', first + 1);
    if (second == std::string::npos)
      return reject("reference '" + triple + "' is not sender,identifier,sent");
    referenced.push_back(triple.substr(0, second));
    w.add_references(triple);
  }
  auto place = [](firehub::v1::Record& r, const std::string& entity) {
    r.set_domain("weather");
    r.set_entity_type("weather_warning");
    r.set_entity_id(entity);
    r.set_classification(firehub::v1::CLASSIFICATION_PUBLIC);
  };
  // Update and Cancel withdraw what they reference.
  if (w.msg_type() == WeatherWarning::MSG_TYPE_UPDATE ||
      w.msg_type() == WeatherWarning::MSG_TYPE_CANCEL) {
    if (referenced.empty()) return reject("Update/Cancel without references");
    for (const auto& ref : referenced) {
      firehub::v1::Record r;
      place(r, ref);
      r.set_op(firehub::v1::OP_RETRACT);
      *r.mutable_observed_at() = *sent;
      auto* at = r.mutable_located_by();  // the retraction sits where the alert was
      at->set_domain("weather");
      at->set_entity_type("weather_warning");
      at->set_entity_id(ref);
      at->set_keep_unplaced(true);
      r.mutable_provenance()->set_source_record_id(ref + "#withdrawn-by:" + sender + "," +
                                                   identifier);
      auto* body = r.mutable_weather_warning();
      *body = w;
      out.records.push_back(std::move(r));
    }
    if (w.msg_type() == WeatherWarning::MSG_TYPE_CANCEL) return;
  }
  if (w.msg_type() != WeatherWarning::MSG_TYPE_ALERT &&
      w.msg_type() != WeatherWarning::MSG_TYPE_UPDATE)
    return;

  auto infos = children(alert, "info");
  if (infos.empty()) return reject("alert has no info block");
  Element* info = infos.front();  // one warning per alert; further languages are the same warning
  w.set_language(childText(info, "language"));
  w.set_event(childText(info, "event"));
  w.set_urgency(word(childText(info, "urgency"), "URGENCY_", WeatherWarning::URGENCY_UNSPECIFIED));
  w.set_severity(
      word(childText(info, "severity"), "SEVERITY_", WeatherWarning::SEVERITY_UNSPECIFIED));
  w.set_certainty(
      word(childText(info, "certainty"), "CERTAINTY_", WeatherWarning::CERTAINTY_UNSPECIFIED));
  if (w.event().empty() || w.urgency() == WeatherWarning::URGENCY_UNSPECIFIED ||
      w.severity() == WeatherWarning::SEVERITY_UNSPECIFIED ||
      w.certainty() == WeatherWarning::CERTAINTY_UNSPECIFIED) {
    return reject("info needs event, urgency, severity and certainty with CAP 1.2 values");
  }
  for (const char* name : {"onset", "expires"}) {
    std::string t = childText(info, name);
    if (t.empty()) continue;
    auto parsed = firehub::sdk::parseIsoTime(t, offset_minutes);
    if (!parsed) return reject(std::string("info '") + name + "' is not a date-time");
    *(std::string(name) == "onset" ? w.mutable_onset() : w.mutable_expires()) = *parsed;
  }
  w.set_headline(childText(info, "headline"));
  w.set_description(childText(info, "description"));
  firehub::v1::Record r;
  place(r, sender + "," + identifier);
  auto* areas = r.mutable_geometry()->mutable_multi_polygon();
  std::string area_desc;
  firehub::v1::PlaceHint hint;
  hint.set_area(true);
  for (Element* area : children(info, "area")) {
    std::string desc = childText(area, "areaDesc");
    if (!desc.empty()) area_desc += (area_desc.empty() ? "" : "; ") + desc;
    if (!desc.empty()) hint.add_names(desc);
    // Geocodes: administrative-division codes are looked up in the hub's district outlines.
    for (Element* g : children(area, "geocode")) {
      const std::string scheme = childText(g, "valueName");
      const std::string value = std::string(firehub::sdk::trim(childText(g, "value")));
      if (value.empty()) continue;
      if (adminCodeScheme(scheme))
        hint.add_codes(value);
      else if (hint.note().empty())
        hint.set_note("geocode scheme '" + scheme + "' (" + value +
                      ") is not administrative-division codes, which the hub looks up");
    }
    for (Element* p : children(area, "polygon")) {
      std::string err =
          readPolygon(std::string(firehub::sdk::trim(p->innerText())), *areas->add_polygons());
      if (!err.empty()) return reject(err);
    }
    for (Element* c : children(area, "circle")) {
      std::string err = readCircle(std::string(firehub::sdk::trim(c->innerText())),
                                   *w.add_circles(), *areas->add_polygons());
      if (!err.empty()) return reject(err);
    }
  }
  if (areas->polygons_size() == 0) {
    // No polygon or circle: the hub places it by its geocodes (or keeps it unplaced, saying why).
    if (hint.codes_size() == 0 && hint.note().empty() && hint.names_size() == 0)
      return reject("alert has no area: no polygon, circle, geocode or areaDesc");
    r.clear_geometry();
    *r.mutable_place_hint() = std::move(hint);
  }
  w.set_area_desc(area_desc);
  r.set_op(firehub::v1::OP_UPSERT);
  *r.mutable_observed_at() = *sent;
  r.mutable_provenance()->set_source_record_id(sender + "," + identifier + "," +
                                               childText(alert, "sent"));
  *r.mutable_weather_warning() = std::move(w);
  out.records.push_back(std::move(r));
}

void collectAlerts(Element* e, std::vector<Element*>& out) {
  if (e->localName() == "alert" && e->namespaceURI() == kNamespace) {
    out.push_back(e);
    return;
  }
  for (auto* n = e->firstChild(); n; n = n->nextSibling()) {
    if (auto* child = dynamic_cast<Element*>(n)) collectAlerts(child, out);
  }
}

}  // namespace

Parsed parse(std::string_view xml, int offset_minutes) {
  Poco::XML::DOMParser parser;
  parser.setFeature(Poco::XML::XMLReader::FEATURE_NAMESPACES, true);
  parser.setFeature(Poco::XML::XMLReader::FEATURE_EXTERNAL_GENERAL_ENTITIES, false);
  parser.setFeature(Poco::XML::XMLReader::FEATURE_EXTERNAL_PARAMETER_ENTITIES, false);
  Poco::AutoPtr<Poco::XML::Document> doc;
  try {
    doc = parser.parseMemory(xml.data(), xml.size());
  } catch (const Poco::Exception& e) {
    throw std::invalid_argument("body is not well-formed XML: " + e.displayText());
  }
  std::vector<Element*> alerts;
  if (doc->documentElement()) collectAlerts(doc->documentElement(), alerts);
  if (alerts.empty()) {
    throw std::invalid_argument(std::string("no CAP 1.2 <alert> in namespace ") + kNamespace +
                                " found in the body");
  }
  Parsed out;
  for (Element* alert : alerts) alertToRecords(alert, offset_minutes, out);
  return out;
}

}  // namespace firehub::connectors::cap
