// Build-time tool: reads the API's OpenAPI description (YAML), checks that it parses, and writes
// a C++ source defining firehub::api::openApiJson() with the description as JSON.
//   embed_openapi <openapi.yaml> <out.cc>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

namespace {

void appendString(std::string& out, const std::string& s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

// A plain (unquoted) scalar as YAML 1.2's core schema reads it: null, booleans and numbers keep
// their type; everything else, and every quoted scalar, is a string.
void appendScalar(std::string& out, const YAML::Node& n) {
  const std::string& v = n.Scalar();
  if (n.Tag() == "?") {
    if (v == "null" || v == "~" || v.empty()) return void(out += "null");
    if (v == "true" || v == "false") return void(out += v);
    char* end = nullptr;
    std::strtod(v.c_str(), &end);
    const bool numeric = *end == '\0' && (std::isdigit(static_cast<unsigned char>(v[0])) ||
                                          ((v[0] == '-' || v[0] == '+') && v.size() > 1 &&
                                           std::isdigit(static_cast<unsigned char>(v[1]))));
    if (numeric) return void(out += v[0] == '+' ? v.substr(1) : v);
  }
  appendString(out, v);
}

void appendNode(std::string& out, const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      out.push_back('{');
      bool first = true;
      for (const auto& kv : n) {
        if (!first) out.push_back(',');
        first = false;
        appendString(out, kv.first.as<std::string>());
        out.push_back(':');
        appendNode(out, kv.second);
      }
      out.push_back('}');
      break;
    }
    case YAML::NodeType::Sequence: {
      out.push_back('[');
      for (size_t i = 0; i < n.size(); ++i) {
        if (i) out.push_back(',');
        appendNode(out, n[i]);
      }
      out.push_back(']');
      break;
    }
    case YAML::NodeType::Scalar:
      appendScalar(out, n);
      break;
    default:
      out += "null";
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: embed_openapi <openapi.yaml> <out.cc>\n";
    return 2;
  }
  std::string json;
  try {
    appendNode(json, YAML::LoadFile(argv[1]));
  } catch (const YAML::Exception& e) {
    std::cerr << argv[1] << ": " << e.what() << "\n";
    return 1;
  }
  std::ofstream out(argv[2], std::ios::trunc);
  out << "// Generated from docs/openapi.yaml at build time; do not edit.\n"
         "#include <string_view>\n\nnamespace firehub::api {\nnamespace {\n"
         "const char kOpenApi[] = {";
  for (size_t i = 0; i < json.size(); ++i) {
    if (i % 24 == 0) out << "\n";
    out << static_cast<int>(static_cast<signed char>(json[i])) << ",";
  }
  out << "0};\n}  // namespace\n\nstd::string_view openApiJson() { return {kOpenApi, "
      << json.size() << "}; }\n\n}  // namespace firehub::api\n";
  return out.good() ? 0 : 1;
}
