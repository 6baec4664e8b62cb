// The CLI's client of a running hub: target, request, tables.
#include "cli_client.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/URI.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include <Poco/Net/SSLException.h>

#include "http_client.h"

namespace firehub::cli {
namespace {

std::string firstLine(const std::string& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

// The member at a dotted path as text: strings as they are, arrays joined by commas, objects
// and other values as JSON; "" when absent.
std::string cell(const Poco::JSON::Object::Ptr& item, const std::string& path) {
  Poco::Dynamic::Var v;
  Poco::JSON::Object::Ptr at = item;
  std::stringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '.')) {
    if (!at || !at->has(part)) return "";
    v = at->get(part);
    at = v.type() == typeid(Poco::JSON::Object::Ptr) ? v.extract<Poco::JSON::Object::Ptr>()
                                                     : nullptr;
  }
  if (v.isEmpty()) return "";
  if (v.type() == typeid(Poco::JSON::Array::Ptr)) {
    auto arr = v.extract<Poco::JSON::Array::Ptr>();
    std::string out;
    for (size_t i = 0; i < arr->size(); ++i)
      out += (i ? "," : "") + arr->get(static_cast<unsigned>(i)).toString();
    return out;
  }
  if (v.type() == typeid(Poco::JSON::Object::Ptr)) {
    std::ostringstream os;
    v.extract<Poco::JSON::Object::Ptr>()->stringify(os);
    return os.str();
  }
  return v.toString();
}

// Display width of UTF-8 text: CJK characters take two columns.
size_t width(const std::string& s) {
  size_t w = 0;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    w += len >= 3 ? 2 : 1;
    i += len;
  }
  return w;
}

void printTable(const std::vector<Poco::JSON::Object::Ptr>& rows,
                const std::vector<Column>& columns) {
  constexpr size_t kMaxWidth = 48;
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> widths;
  for (const auto& c : columns) widths.push_back(width(c.header));
  for (const auto& row : rows) {
    std::vector<std::string> line;
    for (size_t i = 0; i < columns.size(); ++i) {
      std::string text = cell(row, columns[i].path);
      std::replace(text.begin(), text.end(), '\n', ' ');
      if (width(text) > kMaxWidth) {
        size_t cut = 0;
        while (cut < text.size() && width(text.substr(0, cut)) < kMaxWidth - 3) {
          unsigned char c = static_cast<unsigned char>(text[cut]);
          cut += c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        }
        text = text.substr(0, cut) + "...";
      }
      widths[i] = std::max(widths[i], width(text));
      line.push_back(std::move(text));
    }
    cells.push_back(std::move(line));
  }
  auto print = [&](const std::vector<std::string>& line) {
    std::string out;
    for (size_t i = 0; i < line.size(); ++i) {
      out += line[i];
      if (i + 1 < line.size()) out += std::string(widths[i] - width(line[i]) + 2, ' ');
    }
    std::cout << out << "\n";
  };
  std::vector<std::string> header;
  for (const auto& c : columns) header.push_back(c.header);
  print(header);
  for (const auto& line : cells) print(line);
  if (rows.empty()) std::cout << "(none)\n";
}

void printObject(const Poco::JSON::Object::Ptr& o) {
  std::vector<std::string> names;
  o->getNames(names);
  size_t w = 0;
  for (const auto& n : names) w = std::max(w, n.size());
  for (const auto& n : names) {
    std::cout << n << std::string(w - n.size() + 2, ' ') << cell(o, n) << "\n";
  }
}

// The error an answer carries ("<error>: <detail>"), or the body when it has none.
std::string errorOf(const std::string& body) {
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
    if (o->has("detail")) return o->getValue<std::string>("detail");
  } catch (const Poco::Exception&) {
  }
  return body.substr(0, 500);
}

}  // namespace

std::string HubTarget::hubUrl() const {
  if (!hub.empty()) return hub.find("://") == std::string::npos ? "http://" + hub : hub;
  std::string address = firstLine(data_dir + "/http.address");
  return address.empty() ? "" : "http://" + address;
}

void addHubOptions(CLI::App* cmd, HubTarget& t) {
  cmd->add_option("--data-dir", t.data_dir,
                  "Data dir of the hub: where its address and admin.key are (default " +
                      std::string(kDefaultDataDir) + ")")
      ->envname("FIREHUB_DATA_DIR");
  cmd->add_option("--hub", t.hub, "URL of the hub, e.g. http://127.0.0.1:8080")
      ->envname("FIREHUB_HUB");
  cmd->add_option("--key-file,--admin-key-file", t.key_file,
                  "File holding the API key (default <data-dir>/admin.key)")
      ->envname("FIREHUB_KEY_FILE");
  cmd->add_flag("--json", t.json, "Print the hub's JSON answer as it came (for scripts)");
}

bool hubAnswers(const HubTarget& t) {
  const std::string url = t.hubUrl();
  if (url.empty()) return false;
  try {
    return httpRequest(url, "GET", "/healthz", "", "", "").status == 200;
  } catch (const Poco::Exception&) {
    return false;
  }
}

// Long: the request, then each way it can end (no hub, no key, no answer, an error, a table).
int call(const HubTarget& t, const std::string& method, const std::string& path,
         const std::string& body, const Shape& shape) {
  const std::string hub = t.hubUrl();
  if (hub.empty()) {
    std::cerr << "firehub: no hub to ask: " << t.data_dir
              << "/http.address does not exist (is a hub running with --data-dir " << t.data_dir
              << "?); name one with --hub URL or FIREHUB_HUB\n";
    return 2;
  }
  const std::string key_file = t.keyFile();
  const std::string key = firstLine(key_file);
  if (key.empty()) {
    std::cerr << "firehub: no API key in " << key_file
              << "; name the file with --key-file or FIREHUB_KEY_FILE\n";
    return 2;
  }
  std::vector<Poco::JSON::Object::Ptr> rows;
  std::string page_path = path;
  for (int page = 0; page < 1000; ++page) {
    HttpReply reply;
    try {
      reply =
          httpRequest(hub, method, page_path, body.empty() ? "" : "application/json", body, key);
    } catch (const Poco::Net::SSLException& e) {
      std::cerr << "firehub: the certificate of " << hub << " is refused: " << e.displayText()
                << " (a hub with its own CA: set FIREHUB_CA_FILE to the CA's PEM file)\n";
      return 1;
    } catch (const Poco::Exception& e) {
      std::cerr << "firehub: " << hub << " does not answer: " << e.displayText() << "\n";
      return 1;
    }
    if (reply.status < 200 || reply.status >= 300) {
      std::cerr << "firehub: " << hub << " answered " << reply.status << " to " << method << " "
                << path << ": " << errorOf(reply.body);
      if (reply.status == 401) {
        std::cerr << " (the key in " << key_file
                  << " is not one this hub knows: a hub started with --init on a new data dir "
                     "makes a new admin key)";
      } else if (reply.status == 403) {
        std::cerr << " (key from " << key_file << ")";
      }
      std::cerr << "\n";
      return 1;
    }
    if (t.json || reply.body.empty()) {
      std::cout << reply.body << "\n";
      return 0;
    }
    Poco::JSON::Object::Ptr o;
    try {
      Poco::JSON::Parser parser;
      auto v = parser.parse(reply.body);
      if (v.type() == typeid(Poco::JSON::Object::Ptr)) o = v.extract<Poco::JSON::Object::Ptr>();
    } catch (const Poco::Exception&) {
    }
    if (!o) {
      std::cout << reply.body << "\n";
      return 0;
    }
    Poco::JSON::Array::Ptr items;
    if (!shape.list.empty()) {
      Poco::JSON::Object::Ptr at = o;
      std::stringstream parts(shape.list);
      std::string part, last;
      while (std::getline(parts, part, '.')) {
        if (!last.empty()) at = at ? at->getObject(last) : nullptr;
        last = part;
      }
      if (at) items = at->getArray(last);
    }
    if (!items) {
      printObject(o);
      return 0;
    }
    if (page == 0 && !shape.summary.empty()) {
      size_t w = 0;
      for (const auto& c : shape.summary) w = std::max(w, c.header.size());
      for (const auto& c : shape.summary) {
        const std::string v = cell(o, c.path);
        if (!v.empty())
          std::cout << c.header << std::string(w - c.header.size() + 2, ' ') << v << "\n";
      }
      std::cout << "\n";
    }
    for (size_t i = 0; i < items->size(); ++i) rows.push_back(items->getObject(i));
    if (method != "GET" || !o->has("next") || (shape.max_rows && rows.size() >= shape.max_rows))
      break;
    Poco::URI uri(path);
    page_path = path + (uri.getRawQuery().empty() ? "?" : "&") +
                "cursor=" + uriComponent(o->getValue<std::string>("next"));
  }
  if (shape.max_rows && rows.size() > shape.max_rows) rows.resize(shape.max_rows);
  printTable(rows, shape.columns);
  return 0;
}

std::string uriComponent(const std::string& text) {
  std::string out;
  Poco::URI::encode(text, "/?#&=+:;@", out);
  return out;
}

}  // namespace firehub::cli
