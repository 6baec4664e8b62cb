// The one-map's files and the region's outlines.
#include "api/router.h"

namespace firehub::api {

Result<std::string> Router::readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::notFound("cannot read " + path);
  std::ostringstream body;
  body << in.rdbuf();
  return body.str();
}

// The one-map's files. The segments arrive decoded once; a segment holding '/', '\\', NUL or
// starting with '.' (hidden files, "..") is refused, and the file's canonical path must stay
// under the canonical static_dir (a symlink out of it is refused too).
void Router::staticFile(HTTPServerResponse& resp, const std::vector<std::string>& parts) {
  if (options_.static_dir.empty())
    return sendError(resp, Status::notFound("the one-map is not installed (http.static_dir)"));
  std::string rel;
  for (const auto& part : parts) {
    if (part.empty() || part[0] == '.' ||
        part.find_first_of(std::string("/\\\0", 3)) != std::string::npos) {
      return sendError(resp, Status::notFound("no such file"));
    }
    rel += "/" + part;
  }
  if (rel.empty()) rel = "/index.html";
  static const std::map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".geojson", "application/geo+json"},
      {".map", "application/json"},
      {".png", "image/png"},
      {".svg", "image/svg+xml"}};
  auto dot = rel.rfind('.');
  auto type = dot == std::string::npos ? kTypes.end() : kTypes.find(rel.substr(dot));
  if (type == kTypes.end()) return sendError(resp, Status::notFound("no file " + rel));
  std::error_code ec;
  const auto root = std::filesystem::canonical(options_.static_dir, ec);
  if (ec)
    return sendError(resp, Status::notFound("the one-map is not installed (http.static_dir)"));
  const auto file = std::filesystem::weakly_canonical(root / rel.substr(1), ec);
  auto [r, f] = std::mismatch(root.begin(), root.end(), file.begin(), file.end());
  if (ec || r != root.end() || !std::filesystem::is_regular_file(file, ec)) {
    return sendError(resp, Status::notFound("no file " + rel));
  }
  auto body = readFile(file.string());
  if (!body.isOk()) return sendError(resp, Status::notFound("no file " + rel));
  send(resp, 200, body.value(), type->second);
}

void Router::outlines(HTTPServerResponse& resp) {
  if (options_.outlines_file.empty()) {
    return sendError(resp, Status::notFound("no outlines configured (map.outlines)"));
  }
  auto body = readFile(options_.outlines_file);
  if (!body.isOk()) return sendError(resp, body.status());
  send(resp, 200, body.value(), "application/geo+json");
}

}  // namespace firehub::api
