// Spreadsheets (.xlsx, Office Open XML) read as CSV, so that every connector that reads CSV reads
// them: one sheet (the first, or the one named), its header row mapped like a CSV header, each
// CSV line number the sheet's row number. Cells as Excel stores them: shared and inline strings,
// numbers as written in the file, booleans as true/false, and numbers in a date or time format as
// ISO 8601 local dates or date-times. The package is
// read with Poco's Zip, its parts with Poco's SAX parser; what it may inflate to is bounded.
#include <Poco/SAX/Attributes.h>
#include <Poco/SAX/ContentHandler.h>
#include <Poco/SAX/InputSource.h>
#include <Poco/SAX/SAXParser.h>
#include <Poco/Zip/ZipArchive.h>
#include <Poco/Zip/ZipStream.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "firehub/pipeline.h"

namespace firehub::pipeline {
namespace {

// The most the parts read may inflate to, together.
constexpr size_t kMaxInflated = size_t{256} << 20;

struct Package {
  std::istringstream in;
  std::unique_ptr<Poco::Zip::ZipArchive> zip;
  size_t inflated = 0;
};

// A part of the package as text; NotFound when it has none of that name.
Result<std::string> part(Package& pkg, const std::string& name) {
  auto it = pkg.zip->findHeader(name);
  if (it == pkg.zip->headerEnd()) return Status::notFound("the package has no part " + name);
  try {
    pkg.in.clear();
    Poco::Zip::ZipInputStream z(pkg.in, it->second);
    std::string out;
    char buf[65536];
    while (z.read(buf, sizeof buf) || z.gcount() > 0) {
      const auto n = static_cast<size_t>(z.gcount());
      pkg.inflated += n;
      if (pkg.inflated > kMaxInflated)
        return Status::invalidArgument("the spreadsheet inflates past 256 MiB");
      out.append(buf, n);
    }
    return out;
  } catch (const Poco::Exception& e) {
    return Status::invalidArgument("part " + name + " of the spreadsheet: " + e.displayText());
  }
}

// Runs `on_start`, `on_text` and `on_end` (element local names) over an XML part.
class Walker : public Poco::XML::ContentHandler {
 public:
  std::function<void(const std::string&, const Poco::XML::Attributes&)> on_start;
  std::function<void(const std::string&)> on_end;
  std::string text;  // the character data since the last start or end
  void startElement(const Poco::XML::XMLString&, const Poco::XML::XMLString& local,
                    const Poco::XML::XMLString&, const Poco::XML::Attributes& a) override {
    text.clear();
    if (on_start) on_start(local, a);
  }
  void endElement(const Poco::XML::XMLString&, const Poco::XML::XMLString& local,
                  const Poco::XML::XMLString&) override {
    if (on_end) on_end(local);
    text.clear();
  }
  void characters(const Poco::XML::XMLChar ch[], int start, int length) override {
    text.append(ch + start, static_cast<size_t>(length));
  }
  void setDocumentLocator(const Poco::XML::Locator*) override {}
  void startDocument() override {}
  void endDocument() override {}
  void ignorableWhitespace(const Poco::XML::XMLChar[], int, int) override {}
  void processingInstruction(const Poco::XML::XMLString&, const Poco::XML::XMLString&) override {}
  void startPrefixMapping(const Poco::XML::XMLString&, const Poco::XML::XMLString&) override {}
  void endPrefixMapping(const Poco::XML::XMLString&) override {}
  void skippedEntity(const Poco::XML::XMLString&) override {}
};

Status walk(const std::string& xml, const std::string& name, Walker& w) {
  Poco::XML::SAXParser parser;
  parser.setFeature(Poco::XML::XMLReader::FEATURE_NAMESPACES, true);
  parser.setFeature(Poco::XML::XMLReader::FEATURE_EXTERNAL_GENERAL_ENTITIES, false);
  parser.setFeature(Poco::XML::XMLReader::FEATURE_EXTERNAL_PARAMETER_ENTITIES, false);
  parser.setContentHandler(&w);
  try {
    parser.parseMemoryNP(xml.data(), xml.size());
  } catch (const Poco::Exception& e) {
    return Status::invalidArgument("part " + name +
                                   " of the spreadsheet is not XML: " + e.displayText());
  }
  return Status::ok();
}

// What a number format shows: a number, a date, or a date-time (or time): the built-in ones
// (14-17 dates; 18-22 and 45-47 with a time) or a format code's day, month, year, hour and second
// letters outside quotes and brackets.
enum class Shown { kNumber, kDate, kDateTime };
Shown shownAs(int id, const std::string& code) {
  if (id >= 14 && id <= 17) return Shown::kDate;
  if ((id >= 18 && id <= 22) || (id >= 45 && id <= 47)) return Shown::kDateTime;
  bool quoted = false, bracket = false, date = false, time = false;
  for (char c : code) {
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    if (c == '[') bracket = true;
    if (c == ']') bracket = false;
    if (bracket) continue;
    const char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    date = date || l == 'd' || l == 'm' || l == 'y';
    time = time || l == 'h' || l == 's';
  }
  return time ? Shown::kDateTime : date ? Shown::kDate : Shown::kNumber;
}

// An Excel serial day number (1900 or 1904 system) as an ISO 8601 local date (a whole day in a
// date format) or date-time.
std::string serialDate(const std::string& v, bool date1904, bool with_time) {
  char* end = nullptr;
  const double serial = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || !std::isfinite(serial) || serial < 0 || serial > 2958466) return v;
  // Days from 1970-01-01: the 1900 system counts from 1899-12-30 (past its 1900-02-29).
  const double days = serial - (date1904 ? 24107.0 : 25569.0);
  const auto total_ms = static_cast<long long>(std::llround(days * 86400000.0));
  const long long secs = total_ms / 1000 - (total_ms % 1000 < 0 ? 1 : 0);
  long long z = secs / 86400 - (secs % 86400 < 0 ? 1 : 0);
  const long long sod = secs - z * 86400;
  // Civil date from days (Howard Hinnant's algorithm).
  z += 719468;
  const long long era = (z >= 0 ? z : z - 146096) / 146097;
  const long long doe = z - era * 146097;
  const long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const long long mp = (5 * doy + 2) / 153;
  const long long d = doy - (153 * mp + 2) / 5 + 1;
  const long long m = mp < 10 ? mp + 3 : mp - 9;
  const long long y = yoe + era * 400 + (m <= 2);
  char buf[40];
  if (!with_time && sod == 0) {
    std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lld", y, m, d);
  } else {
    std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld", y, m, d, sod / 3600,
                  sod / 60 % 60, sod % 60);
  }
  return buf;
}

// The column index of a cell reference ("C12" -> 2); -1 when it has none.
int columnOf(const std::string& ref) {
  int col = 0;
  size_t i = 0;
  for (; i < ref.size() && std::isalpha(static_cast<unsigned char>(ref[i])); ++i)
    col = col * 26 + (std::toupper(static_cast<unsigned char>(ref[i])) - 'A' + 1);
  return i == 0 || col > 16384 ? -1 : col - 1;
}

void appendCsvField(std::string& out, const std::string& v) {
  if (v.find_first_of(",\"\r\n") == std::string::npos) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

}  // namespace

Result<std::string> spreadsheetAsCsv(std::string_view xlsx, const std::string& sheet) {
  Package pkg;
  pkg.in.str(std::string(xlsx));
  try {
    pkg.zip = std::make_unique<Poco::Zip::ZipArchive>(pkg.in);
  } catch (const Poco::Exception& e) {
    return Status::invalidArgument("the body is not an .xlsx package (a zip): " + e.displayText());
  }
  // The workbook: its sheets' names and relationship ids, and the 1904 date system.
  auto workbook = part(pkg, "xl/workbook.xml");
  if (!workbook.isOk()) {
    return workbook.status().code() == StatusCode::kNotFound
               ? Status::invalidArgument("the body is not an .xlsx spreadsheet: " +
                                         workbook.status().message())
               : workbook.status();
  }
  std::vector<std::pair<std::string, std::string>> sheets;  // name, r:id
  bool date1904 = false;
  {
    Walker w;
    w.on_start = [&](const std::string& name, const Poco::XML::Attributes& a) {
      if (name == "sheet") {
        std::string rid;
        for (int i = 0; i < a.getLength(); ++i)
          if (a.getLocalName(i) == "id") rid = a.getValue(i);
        sheets.emplace_back(a.getValue("", "name"), rid);
      } else if (name == "workbookPr") {
        const std::string v = a.getValue("", "date1904");
        date1904 = v == "1" || v == "true";
      }
    };
    FIREHUB_RETURN_IF_ERROR(walk(*workbook, "xl/workbook.xml", w));
  }
  if (sheets.empty()) return Status::invalidArgument("the spreadsheet has no sheet");
  size_t chosen = 0;
  if (!sheet.empty()) {
    chosen = sheets.size();
    for (size_t i = 0; i < sheets.size(); ++i)
      if (sheets[i].first == sheet) chosen = i;
    if (chosen == sheets.size()) {
      std::string names;
      for (const auto& s : sheets) names += (names.empty() ? "" : ", ") + s.first;
      return Status::invalidArgument("the spreadsheet has no sheet '" + sheet + "' (it has " +
                                     names + ")");
    }
  }
  // Where that sheet's part is.
  std::string target;
  {
    auto rels = part(pkg, "xl/_rels/workbook.xml.rels");
    if (!rels.isOk()) return Status::invalidArgument(rels.status().message());
    Walker w;
    w.on_start = [&](const std::string& name, const Poco::XML::Attributes& a) {
      if (name == "Relationship" && a.getValue("", "Id") == sheets[chosen].second)
        target = a.getValue("", "Target");
    };
    FIREHUB_RETURN_IF_ERROR(walk(*rels, "xl/_rels/workbook.xml.rels", w));
  }
  if (target.empty())
    return Status::invalidArgument("sheet '" + sheets[chosen].first + "' has no part");
  if (target.rfind("/", 0) == 0)
    target = target.substr(1);
  else if (target.rfind("xl/", 0) != 0)
    target = "xl/" + target;
  // Shared strings (rich text runs joined).
  std::vector<std::string> strings;
  if (auto shared = part(pkg, "xl/sharedStrings.xml"); shared.isOk()) {
    Walker w;
    std::string current;
    bool phonetic = false;
    w.on_start = [&](const std::string& name, const Poco::XML::Attributes&) {
      if (name == "si") current.clear();
      if (name == "rPh") phonetic = true;
    };
    w.on_end = [&](const std::string& name) {
      if (name == "t" && !phonetic) current += w.text;
      if (name == "rPh") phonetic = false;
      if (name == "si") strings.push_back(current);
    };
    FIREHUB_RETURN_IF_ERROR(walk(*shared, "xl/sharedStrings.xml", w));
  } else if (shared.status().code() != StatusCode::kNotFound) {
    return shared.status();
  }
  // Styles: which cell formats show dates.
  std::vector<Shown> shown;
  if (auto styles = part(pkg, "xl/styles.xml"); styles.isOk()) {
    Walker w;
    std::map<int, std::string> codes;
    bool in_xfs = false;
    w.on_start = [&](const std::string& name, const Poco::XML::Attributes& a) {
      if (name == "numFmt")
        codes[std::atoi(a.getValue("", "numFmtId").c_str())] = a.getValue("", "formatCode");
      if (name == "cellXfs") in_xfs = true;
      if (name == "xf" && in_xfs) {
        const int id = std::atoi(a.getValue("", "numFmtId").c_str());
        auto it = codes.find(id);
        shown.push_back(shownAs(id, it == codes.end() ? "" : it->second));
      }
    };
    w.on_end = [&](const std::string& name) {
      if (name == "cellXfs") in_xfs = false;
    };
    FIREHUB_RETURN_IF_ERROR(walk(*styles, "xl/styles.xml", w));
  } else if (styles.status().code() != StatusCode::kNotFound) {
    return styles.status();
  }
  auto cells = part(pkg, target);
  if (!cells.isOk()) return Status::invalidArgument(cells.status().message());
  // The sheet's rows as CSV lines; empty rows are left out.
  std::string csv;
  std::vector<std::string> row;
  std::string type, value, inline_text;
  int style = 0, column = 0;
  size_t width = 0;                  // the header row's
  long row_number = 0, written = 0;  // the row read and the last one written
  Status bad = Status::ok();
  Walker w;
  w.on_start = [&](const std::string& name, const Poco::XML::Attributes& a) {
    if (name == "row") {
      row.clear();
      column = 0;
      const long r = std::atol(a.getValue("", "r").c_str());
      row_number = r > row_number && r <= 1048576 ? r : row_number + 1;
    } else if (name == "c") {
      type = a.getValue("", "t");
      style = std::atoi(a.getValue("", "s").c_str());
      const int at = columnOf(a.getValue("", "r"));
      column = at >= 0 ? at : column;
      value.clear();
      inline_text.clear();
    }
  };
  w.on_end = [&](const std::string& name) {
    if (name == "v") {
      value = w.text;
    } else if (name == "t") {
      inline_text += w.text;
    } else if (name == "c") {
      std::string v;
      if (type == "s") {
        const size_t k = static_cast<size_t>(std::atol(value.c_str()));
        if (k < strings.size())
          v = strings[k];
        else if (bad.isOk())
          bad = Status::invalidArgument("a cell names shared string " + value +
                                        ", which the spreadsheet does not have");
      } else if (type == "inlineStr") {
        v = inline_text;
      } else if (type == "b") {
        v = value == "1" ? "true" : "false";
      } else if (type == "e" || type == "str" || type == "d") {
        v = value;
      } else if (style >= 0 && static_cast<size_t>(style) < shown.size() &&
                 shown[static_cast<size_t>(style)] != Shown::kNumber && !value.empty()) {
        v = serialDate(value, date1904, shown[static_cast<size_t>(style)] == Shown::kDateTime);
      } else {
        v = value;
      }
      if (static_cast<size_t>(column) >= row.size()) row.resize(static_cast<size_t>(column) + 1);
      row[static_cast<size_t>(column)] = std::move(v);
      ++column;
    } else if (name == "row") {
      while (!row.empty() && row.back().empty()) row.pop_back();
      if (row.empty()) return;
      // Every row as wide as the header (a blank last cell is a field, not a missing one).
      if (width == 0) width = row.size();
      if (row.size() < width) row.resize(width);
      // Blank lines for the rows left out: a CSV line number is the sheet's row number.
      for (; written + 1 < row_number; ++written) csv += '\n';
      written = row_number;
      for (size_t i = 0; i < row.size(); ++i) {
        if (i) csv += ',';
        appendCsvField(csv, row[i]);
      }
      csv += '\n';
    }
  };
  FIREHUB_RETURN_IF_ERROR(walk(*cells, target, w));
  if (!bad.isOk()) return bad;
  if (csv.empty()) return Status::invalidArgument("sheet '" + sheets[chosen].first + "' is empty");
  return csv;
}

}  // namespace firehub::pipeline
