// OGC API - Features, Part 1 (Core + GeoJSON) over the same layers and entities the map reads:
// /ogc (landing), /ogc/conformance, /ogc/collections, /ogc/collections/{id},
// /ogc/collections/{id}/items (bbox, limit, offset; numberMatched/numberReturned; next link) and
// /ogc/collections/{id}/items/{featureId}. Anonymous readers get the public view (restricted
// fields removed) unless their key carries the restricted grant, as everywhere in the API.
#include <Poco/HexBinaryDecoder.h>
#include <Poco/HexBinaryEncoder.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <chrono>
#include <cmath>
#include <iterator>
#include <sstream>

#include "api/layers.h"
#include "api/tiles.h"
#include "firehub/bus.h"
#include "firehub/classification.h"

namespace firehub::api {
namespace {

constexpr size_t kDefaultLimit = 100;
constexpr size_t kMaxLimit = 10000;
const char* kGeoJson = "application/geo+json";

std::string str(const Poco::JSON::Object& o) {
  std::ostringstream os;
  o.stringify(os);
  return os.str();
}

Poco::JSON::Object link(const std::string& href, const std::string& rel, const std::string& type,
                        const std::string& title = "") {
  Poco::JSON::Object l;
  l.set("href", href);
  l.set("rel", rel);
  l.set("type", type);
  if (!title.empty()) l.set("title", title);
  return l;
}

std::string quote(const std::string& s) {
  std::ostringstream os;
  Poco::JSON::Stringifier::formatString(s, os);
  return os.str();
}

bool isEntityCollection(const std::string& id, std::string& domain) {
  if (id.rfind("entities-", 0) != 0) return false;
  domain = id.substr(9);
  for (const auto& d : entityDomains()) {
    if (d == domain) return true;
  }
  return false;
}

// Every layer's title and description, from the layer list the map reads.
Poco::JSON::Object::Ptr layerMeta(const ApiContext& ctx, const std::string& name) {
  Poco::JSON::Parser parser;
  auto list =
      parser.parse(layerList(ctx).body).extract<Poco::JSON::Object::Ptr>()->getArray("layers");
  for (size_t i = 0; i < list->size(); ++i) {
    auto o = list->getObject(static_cast<unsigned>(i));
    if (o->getValue<std::string>("name") == name) return o;
  }
  return nullptr;
}

Poco::JSON::Object collectionJson(const ApiContext& ctx, const std::string& id,
                                  const std::string& base) {
  Poco::JSON::Object c;
  c.set("id", id);
  std::string domain;
  if (isEntityCollection(id, domain)) {
    c.set("title", "Latest " + domain + " entities");
    c.set("description", "The latest record of every " + domain +
                             " entity with a place (the shared schema's envelope and body).");
  } else if (auto meta = layerMeta(ctx, id)) {
    c.set("title", meta->getValue<std::string>("title"));
    c.set("description", meta->getValue<std::string>("description"));
  }
  c.set("itemType", "feature");
  Poco::JSON::Array crs;
  crs.add("http://www.opengis.net/def/crs/OGC/1.3/CRS84");
  c.set("crs", crs);
  Poco::JSON::Array links;
  links.add(link(base + "/ogc/collections/" + id, "self", "application/json"));
  links.add(link(base + "/ogc/collections/" + id + "/items", "items", kGeoJson));
  if (!TileService::ofCollection(id).empty()) {
    links.add(link(base + "/ogc/collections/" + id + "/tiles",
                   "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", "application/json",
                   "vector tiles (WebMercatorQuad)"));
  }
  c.set("links", links);
  return c;
}

// OGC Two Dimensional Tile Matrix Set (17-083r4) of WebMercatorQuad, zooms 0..kMaxZoom.
std::string webMercatorQuad() {
  constexpr double kCellSize0 = 156543.03392804097;  // m per pixel of a 256-pixel tile at zoom 0
  constexpr double kScale0 = 559082264.0287178;
  constexpr double kOrigin = 20037508.3427892;
  Poco::JSON::Object o;
  o.set("id", "WebMercatorQuad");
  o.set("title", "Google Maps Compatible for the World");
  o.set("uri", "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad");
  o.set("crs", "http://www.opengis.net/def/crs/EPSG/0/3857");
  Poco::JSON::Array axes;
  axes.add("E");
  axes.add("N");
  o.set("orderedAxes", axes);
  Poco::JSON::Array matrices;
  for (int z = 0; z <= tiles::kMaxZoom; ++z) {
    Poco::JSON::Object m;
    m.set("id", std::to_string(z));
    m.set("scaleDenominator", kScale0 / std::ldexp(1.0, z));
    m.set("cellSize", kCellSize0 / std::ldexp(1.0, z));
    m.set("cornerOfOrigin", "topLeft");
    Poco::JSON::Array origin;
    origin.add(-kOrigin);
    origin.add(kOrigin);
    m.set("pointOfOrigin", origin);
    m.set("tileWidth", 256);
    m.set("tileHeight", 256);
    m.set("matrixWidth", 1 << z);
    m.set("matrixHeight", 1 << z);
    matrices.add(m);
  }
  o.set("tileMatrices", matrices);
  return str(o);
}

// An entity collection's feature: the entity's latest record (id "<entity_type>:<entity_id>").
std::string entityItem(firehub::v1::Record& r, bool restricted) {
  if (!restricted) redactRestricted(r);
  return R"({"type":"Feature","id":)" + quote(r.entity_type() + ":" + r.entity_id()) +
         R"(,"geometry":)" + geometryJson(r.geometry()) + R"(,"properties":)" +
         bus::recordToJson(r, !restricted) + "}";
}

Result<FeaturePage> page(const ApiContext& ctx, const std::string& id, const lake::BBox& bbox,
                         size_t limit, size_t offset, bool restricted, std::string_view after) {
  std::string domain;
  if (!isEntityCollection(id, domain)) return layerPage(ctx, id, bbox, limit, offset, restricted);
  return latestPage(
      ctx, {domain, ""}, bbox, limit, offset, nullptr,
      [&](firehub::v1::Record& r) { return entityItem(r, restricted); }, after);
}

// The cursor of an entity collection's next link: the position of the page's last item, in hex.
std::string hexOf(std::string_view bytes) {
  std::ostringstream out;
  Poco::HexBinaryEncoder encoder(out);
  encoder.rdbuf()->setLineLength(0);
  encoder.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  encoder.close();
  return out.str();
}

bool fromHex(const std::string& text, std::string& out) {
  if (text.size() % 2 != 0 || text.size() > 2048) return false;
  try {
    std::istringstream in(text);
    Poco::HexBinaryDecoder decoder(in);
    out.assign(std::istreambuf_iterator<char>(decoder), std::istreambuf_iterator<char>());
    return true;
  } catch (const Poco::Exception&) {  // not hex
    return false;
  }
}

// One item by its id, looked up directly (an entity's latest record, a cell, a typed point).
Result<std::optional<std::string>> item(const ApiContext& ctx, const std::string& collection,
                                        const std::string& feature_id, bool restricted) {
  std::string domain;
  if (!isEntityCollection(collection, domain))
    return layerFeature(ctx, collection, feature_id, restricted);
  const size_t colon = feature_id.find(':');
  if (colon == std::string::npos) return std::optional<std::string>();
  auto latest = liveEntity(ctx, domain, feature_id.substr(0, colon), feature_id.substr(colon + 1));
  if (!latest.isOk()) return latest.status();
  auto& r = latest.value();
  // As the items list them: placed entities, not withdrawn.
  if (!r || !r->has_geometry()) return std::optional<std::string>();
  return std::optional<std::string>(entityItem(*r, restricted));
}

Result<size_t> count(const std::map<std::string, std::string>& q, const std::string& name,
                     size_t fallback, size_t max) {
  auto it = q.find(name);
  if (it == q.end()) return fallback;
  char* end = nullptr;
  long long n = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || n < (name == "limit" ? 1 : 0) ||
      static_cast<unsigned long long>(n) > max) {
    return Status::invalidArgument(name + " must be an integer in " +
                                   (name == "limit" ? "1" : "0") + ".." + std::to_string(max));
  }
  return static_cast<size_t>(n);
}

std::string nowIso() {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

const std::vector<std::string>& entityDomains() {
  static const std::vector<std::string> domains = {"building", "water", "station", "health",
                                                   "police",   "alarm", "weather"};
  return domains;
}

// Long: the OGC API routes (landing, conformance, collections, items) in one dispatch, as the spec
// lists them.
Reply ogcRequest(const ApiContext& ctx, const std::vector<std::string>& path,
                 const std::map<std::string, std::string>& query, const std::string& base,
                 bool restricted) {
  if (path.empty()) {
    Poco::JSON::Object landing;
    landing.set("title", "firehub");
    landing.set("description",
                "Fire risk layers and the latest records of every agency, as OGC API - Features.");
    Poco::JSON::Array links;
    links.add(link(base + "/ogc", "self", "application/json", "this document"));
    links.add(
        link(base + "/ogc/conformance", "conformance", "application/json", "conformance classes"));
    links.add(link(base + "/ogc/collections", "data", "application/json", "collections"));
    links.add(link(base + "/ogc/tileMatrixSets",
                   "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes", "application/json",
                   "tile matrix sets"));
    landing.set("links", links);
    return {200, str(landing)};
  }
  if (path.size() == 1 && path[0] == "conformance") {
    Poco::JSON::Object o;
    Poco::JSON::Array classes;
    classes.add("http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core");
    classes.add("http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson");
    for (const char* c : {"core", "tileset", "tilesets-list", "geodata-tilesets", "mvt"})
      classes.add(std::string("http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/") + c);
    o.set("conformsTo", classes);
    return {200, str(o)};
  }
  if (path[0] == "tileMatrixSets" && path.size() <= 2) {
    if (path.size() == 2 && path[1] != "WebMercatorQuad") {
      return errorReply(Status::notFound("no tile matrix set '" + path[1] +
                                         "'; firehub tiles in WebMercatorQuad"));
    }
    if (path.size() == 2) return {200, webMercatorQuad()};
    Poco::JSON::Object o;
    Poco::JSON::Array sets;
    Poco::JSON::Object set;
    set.set("id", "WebMercatorQuad");
    set.set("title", "Google Maps Compatible for the World");
    Poco::JSON::Array set_links;
    set_links.add(link(base + "/ogc/tileMatrixSets/WebMercatorQuad", "self", "application/json"));
    set.set("links", set_links);
    sets.add(set);
    o.set("tileMatrixSets", sets);
    return {200, str(o)};
  }
  if (path[0] != "collections")
    return errorReply(Status::notFound("no OGC API resource /ogc/" + path[0]));
  if (path.size() == 1) {
    Poco::JSON::Object o;
    Poco::JSON::Array collections;
    for (const auto& name : layerNames()) collections.add(collectionJson(ctx, name, base));
    for (const auto& d : entityDomains())
      collections.add(collectionJson(ctx, "entities-" + d, base));
    o.set("collections", collections);
    Poco::JSON::Array links;
    links.add(link(base + "/ogc/collections", "self", "application/json"));
    o.set("links", links);
    return {200, str(o)};
  }
  const std::string& id = path[1];
  std::string domain;
  bool known = isEntityCollection(id, domain);
  for (const auto& name : layerNames()) known |= name == id;
  if (!known)
    return errorReply(Status::notFound("no collection '" + id + "'; see /ogc/collections"));
  if (path.size() == 2) return {200, str(collectionJson(ctx, id, base))};
  if (path[2] != "items" || path.size() > 4)
    return errorReply(Status::notFound("no such OGC API resource"));

  if (path.size() == 4) {  // one feature, by the id its items carry
    auto found = item(ctx, id, path[3], restricted);
    if (!found.isOk()) return errorReply(found.status());
    if (!found.value())
      return errorReply(Status::notFound("no feature '" + path[3] + "' in " + id));
    const std::string& f = *found.value();
    std::string links = R"([{"href":)" +
                        quote(base + "/ogc/collections/" + id + "/items/" + path[3]) +
                        R"(,"rel":"self","type":"application/geo+json"},{"href":)" +
                        quote(base + "/ogc/collections/" + id) +
                        R"(,"rel":"collection","type":"application/json"}])";
    return {200, f.substr(0, f.size() - 1) + R"(,"links":)" + links + "}", kGeoJson};
  }

  lake::BBox bbox;
  if (auto b = query.find("bbox"); b != query.end()) {
    auto parsed = parseBBox(b->second);
    if (!parsed.isOk()) return errorReply(parsed.status());
    bbox = parsed.value();
  }
  auto limit = count(query, "limit", kDefaultLimit, kMaxLimit);
  if (!limit.isOk()) return errorReply(limit.status());
  auto offset = count(query, "offset", 0, 100000000);
  if (!offset.isOk()) return errorReply(offset.status());
  // Entity collections page on from where the last page ended (the next link's cursor), so a
  // client walking a large collection does not make the hub walk it again for every page.
  std::string after;
  const auto cursor = query.find("cursor");
  if (cursor != query.end() && (!isEntityCollection(id, domain) || cursor->second.empty() ||
                                !fromHex(cursor->second, after))) {
    return errorReply(
        Status::invalidArgument("cursor must be one from a next link of an entities-* collection"));
  }
  auto p = page(ctx, id, bbox, *limit, *offset, restricted, after);
  if (!p.isOk()) return errorReply(p.status());

  std::string self = base + "/ogc/collections/" + id + "/items?limit=" + std::to_string(*limit);
  if (auto b = query.find("bbox"); b != query.end()) self += "&bbox=" + b->second;
  const std::string here = cursor == query.end() ? std::string() : "&cursor=" + cursor->second;
  std::string links = R"([{"href":)" + quote(self + here + "&offset=" + std::to_string(*offset)) +
                      R"(,"rel":"self","type":"application/geo+json"})";
  if (*offset + p->features.size() < p->matched || !p->counted_all) {
    const std::string next = p->last_position.empty()
                                 ? self + here + "&offset=" + std::to_string(*offset + *limit)
                                 : self + "&cursor=" + hexOf(p->last_position);
    links += R"(,{"href":)" + quote(next) + R"(,"rel":"next","type":"application/geo+json"})";
  }
  if (*offset > 0 && cursor == query.end()) {
    links += R"(,{"href":)" +
             quote(self + "&offset=" + std::to_string(*offset > *limit ? *offset - *limit : 0)) +
             R"(,"rel":"prev","type":"application/geo+json"})";
  }
  links += R"(,{"href":)" + quote(base + "/ogc/collections/" + id) +
           R"(,"rel":"collection","type":"application/json"}])";
  // numberMatched only when every match was counted (it is optional in OGC API - Features; the
  // next link says there is more).
  std::string out =
      R"({"type":"FeatureCollection","timeStamp":")" + nowIso() + R"(")" +
      (p->counted_all && cursor == query.end() ? R"(,"numberMatched":)" + std::to_string(p->matched)
                                               : std::string()) +
      R"(,"numberReturned":)" + std::to_string(p->features.size()) + R"(,"links":)" + links +
      R"(,"features":[)";
  for (size_t i = 0; i < p->features.size(); ++i) {
    if (i) out += ',';
    out += p->features[i];
  }
  return {200, out + "]}", kGeoJson};
}

}  // namespace firehub::api
