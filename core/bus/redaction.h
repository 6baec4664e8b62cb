// How a record is written for a reader without the restricted grant (record_json.cc): its
// restricted fields are left out and their paths collected for the record's "redacted" list.
// Private to the bus module.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "firehub/bus.h"

namespace firehub::bus {

// A redacted record's writing: restricted fields are left out, and their paths (dotted JSON
// names under the record) collected for its "redacted" list.
struct Redaction {
  bool on = false;
  std::vector<std::string_view> path;
  std::vector<std::string> removed;
  void note(std::string_view name) {
    std::string p;
    for (auto part : path) {
      p.append(part);
      p.push_back('.');
    }
    p.append(name);
    if (std::find(removed.begin(), removed.end(), p) == removed.end()) removed.push_back(p);
  }
  // Appends ,"redacted":[...] before the closing brace of the object that ends `out`.
  void close(std::string& out) {
    if (removed.empty() || out.empty() || out.back() != '}') return;
    out.pop_back();
    out += out.back() == '{' ? "\"redacted\":[" : ",\"redacted\":[";
    std::sort(removed.begin(), removed.end());
    for (size_t i = 0; i < removed.size(); ++i) {
      if (i) out.push_back(',');
      appendJsonString(out, removed[i]);
    }
    out += "]}";
  }
};

}  // namespace firehub::bus
