// HTTP poll sources: a thread per feed that GETs the agency's API every interval, follows its
// pages, and stores each page with where the poll stands in one lake commit.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Query.h>
#include <Poco/URI.h>

#include <random>
#include <regex>

#include "firehub/log.h"
#include "firehub/transport.h"
#include "internal.h"

namespace firehub::transport {
namespace {

constexpr size_t kMaxAnswer = 64u << 20;

// Where a poll stands, as stored in meta with each page.
struct Place {
  std::string url;        // the feed's url this place belongs to (a changed url starts anew)
  std::string next;       // the URL to request next; "" : the feed's url
  std::string validated;  // the URL the validators below are of
  std::string etag, modified;
};

std::string encodePlace(const Place& p) {
  Poco::JSON::Object o;
  o.set("url", p.url);
  o.set("next", p.next);
  o.set("validated", p.validated);
  o.set("etag", p.etag);
  o.set("modified", p.modified);
  std::ostringstream os;
  o.stringify(os);
  return os.str();
}

Place decodePlace(const std::string& text) {
  Place p;
  try {
    auto o = Poco::JSON::Parser().parse(text).extract<Poco::JSON::Object::Ptr>();
    p.url = o->optValue<std::string>("url", "");
    p.next = o->optValue<std::string>("next", "");
    p.validated = o->optValue<std::string>("validated", "");
    p.etag = o->optValue<std::string>("etag", "");
    p.modified = o->optValue<std::string>("modified", "");
  } catch (const Poco::Exception&) {
    return {};
  }
  return p;
}

// The target of a Link header's rel="next" (RFC 8288), "" when it has none.
std::string linkNext(const std::string& header) {
  static const std::regex kRel(R"re(;\s*rel\s*=\s*(?:"([^"]*)"|([^;,\s]+)))re", std::regex::icase);
  size_t p = 0;
  while ((p = header.find('<', p)) != std::string::npos) {
    const size_t e = header.find('>', p);
    if (e == std::string::npos) break;
    const size_t after = header.find('<', e);
    const std::string params =
        header.substr(e + 1, after == std::string::npos ? std::string::npos : after - e - 1);
    std::smatch m;
    if (std::regex_search(params, m, kRel)) {
      std::istringstream rels(m[1].matched ? m[1].str() : m[2].str());
      for (std::string rel; rels >> rel;) {
        for (auto& c : rel) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (rel == "next") return header.substr(p + 1, e - p - 1);
      }
    }
    p = e;
  }
  return "";
}

// A JSON answer, parsed once for the paths a feed reads in it (next page, cursor, items).
class Answer {
 public:
  Answer(const std::string& body, const std::string& charset) {
    std::string text = body;
    const std::string from = pipeline::canonicalCharset(charset);
    if (!from.empty() && from != "utf-8") {
      auto converted = pipeline::convertCharset(body, from, "utf-8");
      if (!converted.isOk()) return;
      text = std::move(converted).value();
    }
    try {
      doc_ = Poco::JSON::Parser().parse(text);
      parsed_ = true;
    } catch (const Poco::Exception&) {
    }
  }
  bool parsed() const { return parsed_; }
  Poco::Dynamic::Var at(const std::string& path) const {
    if (!parsed_) return {};
    try {
      return Poco::JSON::Query(doc_).find(path);
    } catch (const Poco::Exception&) {
      return {};
    }
  }
  // Whether `path` is there and null ({"data": null}: an empty page).
  bool null(const std::string& path) const {
    if (!parsed_) return false;
    const size_t dot = path.rfind('.');
    const std::string key = dot == std::string::npos ? path : path.substr(dot + 1);
    if (key.find('[') != std::string::npos) return false;
    Poco::Dynamic::Var parent = dot == std::string::npos ? doc_ : at(path.substr(0, dot));
    if (parent.type() != typeid(Poco::JSON::Object::Ptr)) return false;
    auto obj = parent.extract<Poco::JSON::Object::Ptr>();
    return obj->has(key) && obj->isNull(key);
  }
  // The string or integer at `path`, "" when none.
  std::string scalar(const std::string& path) const {
    auto v = at(path);
    if (!v.isEmpty() && (v.isString() || v.isInteger())) return v.convert<std::string>();
    return "";
  }

 private:
  Poco::Dynamic::Var doc_;
  bool parsed_ = false;
};

std::string withParam(const std::string& url, const std::string& name, const std::string& value) {
  Poco::URI uri(url);
  auto params = uri.getQueryParameters();
  bool set = false;
  for (auto& [k, v] : params) {
    if (k == name) {
      v = value;
      set = true;
    }
  }
  if (!set) params.emplace_back(name, value);
  uri.setQueryParameters(params);
  return uri.toString();
}

bool sameOrigin(const Poco::URI& a, const Poco::URI& b) {
  return a.getScheme() == b.getScheme() && a.getHost() == b.getHost() && a.getPort() == b.getPort();
}

// At most `n` bytes of an answer, printable, for an error message.
std::string excerpt(const std::string& body, size_t n = 160) {
  std::string out;
  for (char c : body.substr(0, n)) out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  return out + (body.size() > n ? "..." : "");
}

}  // namespace

class HttpPolls::Poller : public SourceWorker {
 public:
  Poller(HttpPolls& owner, registry::FeedSpec spec)
      : SourceWorker(std::move(spec)), owner_(owner), rng_(std::random_device{}()) {}
  ~Poller() override {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }

  Status start() override {
    auto stored = owner_.lake_.getMeta(registry::pollStateKey(spec().id));
    if (!stored.isOk()) return stored.status();
    if (stored.value()) {
      Place p = decodePlace(*stored.value());
      if (p.url == spec().poll.url) place_ = p;  // else the url changed: start at the new one
    }
    place_.url = spec().poll.url;
    {
      std::lock_guard<std::mutex> lock(mu_);
      state_.next = registry::displayUrl(place_.next);
    }
    thread_ = std::thread([this] { run(); });
    return Status::ok();
  }

  void failed(const std::string& why) override {
    std::lock_guard<std::mutex> lock(mu_);
    state_.error = why;
  }

  PollSourceState state() const {
    std::lock_guard<std::mutex> lock(mu_);
    PollSourceState s = state_;
    s.running = thread_.joinable() && !stopping_;
    return s;
  }

 private:
  void run() {
    log::nameThread("fh-poll");
    int64_t next_at = 0;  // at once
    while (!stopping_) {
      if (nowMs() < next_at) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      const int64_t wait = pollOnce();
      next_at = nowMs() + wait;
      std::lock_guard<std::mutex> lock(mu_);
      state_.next_poll_at = next_at;
    }
  }

  int64_t interval() const { return spec().poll.interval_s * 1000; }

  // A failed request: tried again after 5 s, doubling to the interval (at least 5 minutes),
  // within +-20 %.
  int64_t fail(const std::string& why, int status = 0) {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_.error != why)
      FIREHUB_LOG(kWarning, "http-poll", "feed " << spec().id << ": " << why);
    state_.error = why;
    state_.last_status = status;
    ++state_.failures;
    const int64_t cap = std::max<int64_t>(interval(), 300000);
    const int64_t base = std::min<int64_t>(cap, 5000ll << std::min(state_.failures - 1, 16));
    return std::uniform_int_distribution<int64_t>(base * 8 / 10, base * 12 / 10)(rng_);
  }

  void succeeded(int status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!state_.error.empty())
      FIREHUB_LOG(kInfo, "http-poll",
                  "feed " << spec().id << " polls again (HTTP " << status << ")");
    state_.error.clear();
    state_.failures = 0;
    state_.last_status = status;
    state_.last_success_at = nowMs();
  }

  // One poll: the pages from where the poll stands until the last one, a failure, or max_pages.
  // Returns milliseconds until the next poll.
  int64_t pollOnce() {
    const auto& p = spec().poll;
    auto feed = owner_.feeds_.get(spec().id);
    if (!feed) return 1000;
    if (feed->paused()) {
      std::lock_guard<std::mutex> lock(mu_);
      state_.error = "the feed is paused";
      return 1000;
    }
    const Poco::URI origin(p.url);
    for (int64_t page = 0; page < p.max_pages && !stopping_; ++page) {
      const std::string url = place_.next.empty() ? p.url : place_.next;
      std::map<std::string, std::string> headers = p.headers;
      if (place_.validated == url) {
        if (!place_.etag.empty()) headers["If-None-Match"] = place_.etag;
        if (!place_.modified.empty()) headers["If-Modified-Since"] = place_.modified;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        state_.last_poll_at = nowMs();
      }
      auto r = net::request(owner_.policy_, "GET", url, headers, "", "",
                            static_cast<int>(p.timeout_s), kMaxAnswer);
      const std::string shown = registry::displayUrl(url);
      if (!r.isOk()) return fail("GET " + shown + ": " + r.status().message());
      if (r->status == 304) {
        succeeded(304);
        std::lock_guard<std::mutex> lock(mu_);
        ++state_.not_modified;
        return interval();
      }
      if (r->status < 200 || r->status > 299)
        return fail("GET " + shown + " answered HTTP " + std::to_string(r->status) + ": " +
                        excerpt(r->body),
                    r->status);
      if (r->cut)
        return fail("GET " + shown + ": the answer is over 64 MiB; ask for smaller pages");

      // Where the poll goes on after this page.
      Place after = place_;
      if (page == 0) {  // the validators of the request each poll starts with
        after.validated = url;
        after.etag = r->etag;
        after.modified = r->last_modified;
      }
      const bool json =
          (!p.next.empty() && p.next != "link") || !p.cursor.empty() || !p.items.empty();
      const Answer answer(json ? r->body : std::string(), pipeline::charsetOf(r->content_type));
      std::string next;
      if (p.next == "link") {
        next = linkNext(r->link);
      } else if (!p.next.empty()) {
        next = answer.scalar(p.next);
      } else if (!p.cursor.empty()) {
        const std::string cursor = answer.scalar(p.cursor);
        if (!cursor.empty()) next = withParam(p.url, p.cursor_param, cursor);
      }
      if (!next.empty()) {
        try {
          Poco::URI resolved(Poco::URI(url), next);
          if (!sameOrigin(resolved, origin))
            return fail("GET " + shown + ": its next page " + registry::displayUrl(next) +
                        " is on another origin than poll.url; not followed (the feed's headers "
                        "go only to poll.url's origin)");
          next = resolved.toString();
        } catch (const Poco::Exception& e) {
          return fail("GET " + shown + ": its next page '" + excerpt(next) +
                      "' is not a URL: " + e.displayText());
        }
      }
      // Cursor pages: without a new cursor, the same request next time. Link pages: without a
      // next page, the feed's url next time.
      if (!p.cursor.empty()) {
        if (!next.empty()) after.next = next;
      } else {
        after.next = next;
      }
      const int taken = take(r.value(), answer, url, after);
      if (taken < 0) return 5000;  // paused or the lake failing: the same page again
      succeeded(r->status);
      place_ = after;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++state_.pages;
        state_.next = registry::displayUrl(place_.next);
      }
      const bool more = !next.empty() && next != url && (p.cursor.empty() || taken > 0);
      if (!more) return interval();
    }
    return 1000;  // max_pages read: the rest soon, after other work
  }

  // Stores one page with its place. Returns the pieces it held, or -1 when it must be tried
  // again (the feed paused, the lake failing).
  int take(const net::OutboundResponse& r, const Answer& answer, const std::string& url,
           const Place& after) {
    const std::vector<std::pair<std::string, std::string>> meta{
        {registry::pollStateKey(spec().id), encodePlace(after)}};
    std::string type = spec().poll.content_type.empty() ? pipeline::mediaType(r.content_type)
                                                        : spec().poll.content_type;
    std::string charset = pipeline::charsetOf(r.content_type);
    std::string body = r.body;
    if (const std::string& items = spec().poll.items; !items.empty()) {
      // The records' array goes to the connector (as UTF-8 JSON); an answer without it (an
      // error said in a 200) is kept whole as a dead letter.
      auto v = answer.at(items);
      if (answer.null(items)) {
        body.clear();  // "items": null, an empty page
      } else if (!answer.parsed() || v.type() != typeid(Poco::JSON::Array::Ptr)) {
        return unreadable((answer.parsed() ? "the answer has no array at '" + items + "'"
                                           : std::string("the answer is not JSON")),
                          r.body, url, type, meta);
      } else {
        std::ostringstream os;
        v.extract<Poco::JSON::Array::Ptr>()->stringify(os);
        body = os.str();
        type = "application/json";
        charset.clear();
      }
    }
    if (body.find_first_not_of(" \t\r\n") == std::string::npos) {  // nothing in it
      auto committed = owner_.lake_.commit(
          {}, {},
          [&](const lake::CommitResult&, std::vector<std::pair<std::string, std::string>>& m) {
            m.insert(m.end(), meta.begin(), meta.end());
          });
      if (committed.isOk()) return 0;
      fail(committed.status().message());
      return -1;
    }
    pipeline::IngestRequest in;
    in.feed_id = spec().id;
    in.body = body;
    in.content_type = type;
    in.charset = charset;
    in.transport = "http_poll";
    in.source = registry::displayUrl(url);
    in.meta = meta;
    auto summary = owner_.pipeline_.ingest(in);
    if (summary.isOk())
      return static_cast<int>(summary->accepted + summary->rejected + summary->duplicates +
                              summary->skipped);
    const auto code = summary.status().code();
    auto feed = owner_.feeds_.get(spec().id);
    if ((code == StatusCode::kInvalidArgument || code == StatusCode::kUnsupportedMedia) && feed &&
        !feed->paused())
      return unreadable(summary.status().message(), r.body, url, r.content_type, meta);
    fail(summary.status().message());
    return -1;
  }

  // An answer the connector cannot read at all: a dead letter (its bytes as sent), and past it.
  int unreadable(const std::string& why, const std::string& raw, const std::string& url,
                 const std::string& content_type,
                 const std::vector<std::pair<std::string, std::string>>& meta) {
    Status kept = keepUnreadable(owner_.lake_, spec(), why, raw, registry::displayUrl(url),
                                 content_type, meta);
    if (!kept.isOk()) {
      fail(kept.message());
      return -1;
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++state_.dead_lettered;
    return 0;
  }

  HttpPolls& owner_;
  Place place_;  // only the poll thread touches it once started
  std::mt19937 rng_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  PollSourceState state_;
  std::thread thread_;
};

HttpPolls::HttpPolls(pipeline::Pipeline& pipeline, registry::FeedRegistry& feeds, lake::Lake& lake,
                     net::OutboundPolicy policy)
    : pipeline_(pipeline),
      feeds_(feeds),
      lake_(lake),
      policy_(std::move(policy)),
      workers_(feeds, {"http-poll", [](const registry::FeedSpec& s) { return !s.poll.url.empty(); },
                       [](const registry::FeedSpec& a, const registry::FeedSpec& b) {
                         return a.poll == b.poll && a.connector == b.connector;
                       },
                       [this](const registry::FeedSpec& s) -> std::unique_ptr<SourceWorker> {
                         return std::make_unique<Poller>(*this, s);
                       },
                       [](const registry::FeedSpec& s) {
                         return "polls " + registry::displayUrl(s.poll.url) + " every " +
                                std::to_string(s.poll.interval_s) + " s";
                       }}) {}

HttpPolls::~HttpPolls() { stop(); }

void HttpPolls::start() { workers_.start(); }

void HttpPolls::stop() { workers_.stop(); }

std::optional<PollSourceState> HttpPolls::state(const std::string& feed) const {
  std::optional<PollSourceState> out;
  workers_.with(feed, [&](SourceWorker& w) { out = static_cast<Poller&>(w).state(); });
  return out;
}

}  // namespace firehub::transport
