// Web Mercator tile arithmetic (OGC's WebMercatorQuad: 2^z x 2^z tiles, y down from the north).
#include <charconv>
#include <cmath>

#include "firehub/tiles.h"

namespace firehub::tiles {
namespace {

constexpr double kPi = 3.14159265358979323846;

Result<uint32_t> part(std::string_view text, const char* name) {
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Status::invalidArgument(std::string("tile ") + name + " must be a whole number, not '" +
                                   std::string(text.substr(0, 32)) + "'");
  }
  return v;
}

}  // namespace

std::string TileId::path() const {
  return std::to_string(z) + "/" + std::to_string(x) + "/" + std::to_string(y);
}

Result<TileId> parseTile(std::string_view z, std::string_view x, std::string_view y) {
  auto zz = part(z, "zoom");
  if (!zz.isOk()) return zz.status();
  if (zz.value() > static_cast<uint32_t>(kMaxZoom)) {
    return Status::invalidArgument("tile zoom " + std::to_string(zz.value()) +
                                   " is past the deepest served, " + std::to_string(kMaxZoom));
  }
  auto xx = part(x, "x");
  if (!xx.isOk()) return xx.status();
  auto yy = part(y, "y");
  if (!yy.isOk()) return yy.status();
  const uint32_t n = 1u << zz.value();
  if (xx.value() >= n || yy.value() >= n) {
    return Status::invalidArgument("tile " + std::to_string(zz.value()) + "/" +
                                   std::to_string(xx.value()) + "/" + std::to_string(yy.value()) +
                                   " does not exist: x and y are below " + std::to_string(n) +
                                   " at that zoom");
  }
  return TileId{static_cast<int>(zz.value()), xx.value(), yy.value()};
}

std::pair<double, double> mercatorTileXY(int z, double lon, double lat) {
  const double n = std::ldexp(1.0, z);
  lat = std::clamp(lat, -kMaxLat, kMaxLat);
  const double phi = lat * kPi / 180;
  const double x = (lon + 180) / 360 * n;
  const double y = (1 - std::log(std::tan(phi) + 1 / std::cos(phi)) / kPi) / 2 * n;
  return {x, y};
}

LonLatBox tileBounds(const TileId& t) {
  const double n = std::ldexp(1.0, t.z);
  auto lon = [&](double x) { return x / n * 360 - 180; };
  auto lat = [&](double y) { return std::atan(std::sinh(kPi * (1 - 2 * y / n))) * 180 / kPi; };
  return {lon(t.x), lat(t.y + 1.0), lon(t.x + 1.0), lat(t.y)};
}

TileRange tilesTouching(int z, const LonLatBox& box, double margin) {
  const double n = std::ldexp(1.0, z);
  auto [x0, y0] = mercatorTileXY(z, box.west, box.north);
  auto [x1, y1] = mercatorTileXY(z, box.east, box.south);
  auto clamp = [&](double v) {
    return static_cast<uint32_t>(std::clamp(std::floor(v), 0.0, n - 1));
  };
  return {z, clamp(x0 - margin), clamp(x1 + margin), clamp(y0 - margin), clamp(y1 + margin)};
}

}  // namespace firehub::tiles
