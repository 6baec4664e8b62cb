// Vector tiles over HTTP: /tiles/{layer}/{z}/{x}/{y}.mvt with TileJSON at /tiles/{layer}.json,
// and the same tiles through OGC API - Tiles under /ogc/collections/{id}/tiles.
#include "api/paging.h"
#include "api/router.h"

namespace firehub::api {
namespace {

constexpr const char* kMvt = "application/vnd.mapbox-vector-tile";

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void Router::tileRequest(HTTPServerRequest& req, HTTPServerResponse& resp,
                         const std::vector<std::string>& p) {
  if (p.size() == 1 && endsWith(p[0], ".json")) {
    return reply(resp, tiles_.tileJson(p[0].substr(0, p[0].size() - 5), baseUrl(req)));
  }
  if (p.size() != 4 || !endsWith(p[3], ".mvt")) {
    return sendError(resp, Status::notFound("tiles are at /tiles/{layer}/{z}/{x}/{y}.mvt, their "
                                            "TileJSON at /tiles/{layer}.json"));
  }
  if (!TileService::serves(p[0])) {
    return sendError(resp, Status::notFound("no tiles of layer '" + p[0] + "'"));
  }
  auto tile = tiles::parseTile(p[1], p[2], std::string_view(p[3]).substr(0, p[3].size() - 4));
  if (!tile.isOk()) return sendError(resp, tile.status());
  if (auto at_text = param("at")) {  // the risk layer as it was then, from its stored versions
    if (p[0] != "risk")
      return sendError(resp, Status::invalidArgument("only the risk layer is kept in time (at=)"));
    auto at = timeParam(at_text, "at", 0);
    if (!at.isOk()) return sendError(resp, at.status());
    auto body = tiles_.riskTileAt(tile.value(), at.value());
    if (!body.isOk()) return sendError(resp, body.status());
    return send(resp, 200, body.value(), kMvt);
  }
  sendTile(req, resp, p[0], tile.value());
}

void Router::sendTile(HTTPServerRequest& req, HTTPServerResponse& resp, const std::string& layer,
                      const tiles::TileId& id) {
  resp.set("Vary", "Accept-Encoding");
  resp.set("Cache-Control", "no-cache");
  if (notModified(req, resp, tiles_.etag(layer, id))) return;
  auto tile = tiles_.tile(layer, id, acceptsGzip(req.get("Accept-Encoding", "")));
  if (!tile.isOk()) return sendError(resp, tile.status());
  resp.setStatus(HTTPResponse::HTTP_OK);
  resp.setContentType(kMvt);
  if (tile->gzip) resp.set("Content-Encoding", "gzip");
  resp.set("ETag", tile->etag);
  resp.setContentLength(static_cast<std::streamsize>(tile->body->size()));
  sendBody(req, resp, *tile->body);
  ctx_.metrics->countHttp(200);
}

// Long: the three OGC API - Tiles resources of a collection (tilesets, the tileset, a tile).
bool Router::ogcTiles(HTTPServerRequest& req, HTTPServerResponse& resp,
                      const std::vector<std::string>& p) {
  if (p.size() < 3 || p[0] != "collections" || p[2] != "tiles") return false;
  const std::string& id = p[1];
  const std::string layer = TileService::ofCollection(id);
  if (layer.empty()) {
    sendError(resp, Status::notFound("collection '" + id + "' has no tiles"));
    return true;
  }
  const std::string base = baseUrl(req) + "/ogc/collections/" + id + "/tiles";
  const std::string scheme = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad";
  auto link = [](const std::string& href, const std::string& rel, const std::string& type) {
    Poco::JSON::Object l;
    l.set("href", href);
    l.set("rel", rel);
    l.set("type", type);
    return l;
  };
  auto tileset = [&](bool whole) {
    Poco::JSON::Object t;
    t.set("title", id + " (WebMercatorQuad)");
    t.set("dataType", "vector");
    t.set("crs", "http://www.opengis.net/def/crs/EPSG/0/3857");
    t.set("tileMatrixSetURI", scheme);
    Poco::JSON::Array links;
    links.add(link(base + "/WebMercatorQuad", "self", "application/json"));
    links.add(link(baseUrl(req) + "/ogc/tileMatrixSets/WebMercatorQuad",
                   "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "application/json"));
    if (whole) {
      auto item = link(base + "/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}", "item", kMvt);
      item.set("templated", true);
      links.add(item);
      Poco::JSON::Array layers;
      Poco::JSON::Object l;
      l.set("id", layer);
      l.set("dataType", "vector");
      layers.add(l);
      t.set("layers", layers);
    }
    t.set("links", links);
    return t;
  };
  if (p.size() == 3) {
    Poco::JSON::Object o;
    Poco::JSON::Array sets;
    sets.add(tileset(false));
    o.set("tilesets", sets);
    send(resp, 200, toJson(o));
    return true;
  }
  if (p[3] != "WebMercatorQuad") {
    sendError(resp, Status::notFound("no tile matrix set '" + p[3] +
                                     "'; firehub tiles in WebMercatorQuad"));
    return true;
  }
  if (p.size() == 4) {
    send(resp, 200, toJson(tileset(true)));
    return true;
  }
  if (p.size() != 7) {
    sendError(resp, Status::notFound("a tile is at " + base +
                                     "/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}"));
    return true;
  }
  // OGC orders a tile's address matrix, row, column: z, y, x.
  auto tile = tiles::parseTile(p[4], p[6], p[5]);
  if (!tile.isOk()) {
    sendError(resp, tile.status());
    return true;
  }
  sendTile(req, resp, layer, tile.value());
  return true;
}

}  // namespace firehub::api
