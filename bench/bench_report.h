// Figures of `firehub bench ...` for `ops/run.sh bench --json FILE`: each command merges its
// figures into one JSON object in FILE under dotted keys ("ingest.records_per_s" ->
// {"ingest": {"records_per_s": ...}}), so the commands of one run build one report.
#pragma once

#include <algorithm>
#include <vector>

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace firehub::cli {

using BenchFigures = std::vector<std::pair<std::string, Poco::Dynamic::Var>>;

// The p-quantile of `v` (0..1): the value at rank round(p * (n - 1)) of the sorted values; 0 for
// none.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  const size_t k =
      std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

// The --kafka-property KEY=VALUE options of a bench command set over `into`; false (and a message
// naming the bad one on stderr) for one without a key or an '='.
inline bool applyKafkaProperties(const std::vector<std::string>& given,
                                 std::map<std::string, std::string>& into) {
  for (const auto& property : given) {
    const size_t eq = property.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "bench: --kafka-property takes KEY=VALUE, not '" << property << "'\n";
      return false;
    }
    into[property.substr(0, eq)] = property.substr(eq + 1);
  }
  return true;
}

inline bool mergeBenchJson(const std::string& file, const BenchFigures& figures) {
  if (file.empty()) return true;
  Poco::JSON::Object::Ptr root = new Poco::JSON::Object;
  {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    if (!text.str().empty()) {
      try {
        Poco::JSON::Parser parser;
        root = parser.parse(text.str()).extract<Poco::JSON::Object::Ptr>();
      } catch (const Poco::Exception& e) {
        std::cerr << "bench: " << file << " is not a JSON object (" << e.displayText()
                  << "); rewriting it\n";
      }
    }
  }
  for (const auto& [key, value] : figures) {
    Poco::JSON::Object::Ptr node = root;
    std::string rest = key;
    for (size_t dot; (dot = rest.find('.')) != std::string::npos; rest = rest.substr(dot + 1)) {
      std::string part = rest.substr(0, dot);
      Poco::JSON::Object::Ptr child = node->getObject(part);
      if (!child) {
        child = new Poco::JSON::Object;
        node->set(part, child);
      }
      node = child;
    }
    node->set(rest, value);
  }
  std::ofstream out(file);
  root->stringify(out, 2);
  out << "\n";
  return static_cast<bool>(out);
}

}  // namespace firehub::cli
