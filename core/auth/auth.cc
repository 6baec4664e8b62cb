#include "firehub/auth.h"

#include <Poco/DigestEngine.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/RandomStream.h>
#include <Poco/SHA2Engine.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "firehub/log.h"
#include "firehub/v1/options.pb.h"
#include "firehub/v1/record.pb.h"

namespace firehub::auth {
namespace {

constexpr const char* kKeyPrefix = "keys/";
constexpr const char* kAuditPrefix = "audit/";
// Not under kAuditPrefix: where the chain starts once old entries were removed.
constexpr const char* kAuditAnchorKey = "auditanchor";

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string randomHex(size_t bytes) {
  Poco::RandomInputStream in;  // the kernel's CSPRNG
  std::string raw(bytes, '\0');
  in.read(raw.data(), static_cast<std::streamsize>(bytes));
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

bool constantTimeEqual(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string toJson(const Poco::JSON::Object& o) {
  std::ostringstream os;
  o.stringify(os);
  return os.str();
}

std::string encodeKey(const KeyInfo& k, const std::string& hash) {
  Poco::JSON::Object o;
  o.set("role", roleName(k.role));
  o.set("agency", k.agency);
  o.set("restricted", k.restricted);
  if (!k.domains.empty()) {
    Poco::JSON::Array domains;
    for (const auto& d : k.domains) domains.add(d);
    o.set("domains", domains);
  }
  o.set("note", k.note);
  o.set("created_at_ms", k.created_at);
  o.set("created_by", k.created_by);
  o.set("revoked", k.revoked);
  if (k.expires_at) o.set("expires_at_ms", k.expires_at);
  if (!k.session_of.empty()) o.set("session_of", k.session_of);
  o.set("sha256", hash);
  return toJson(o);
}

bool decodeKey(const std::string& id, const std::string& text, KeyInfo& k, std::string& hash) {
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
    auto role = parseRole(o->getValue<std::string>("role"));
    if (!role.isOk()) return false;
    k.id = id;
    k.role = role.value();
    k.agency = o->optValue<std::string>("agency", "");
    k.restricted = o->optValue<bool>("restricted", false);
    k.domains.clear();
    if (auto domains = o->getArray("domains")) {
      for (size_t i = 0; i < domains->size(); ++i)
        k.domains.push_back(domains->getElement<std::string>(static_cast<unsigned>(i)));
    }
    k.note = o->optValue<std::string>("note", "");
    k.created_at = o->optValue<int64_t>("created_at_ms", 0);
    k.created_by = o->optValue<std::string>("created_by", "");
    k.revoked = o->optValue<bool>("revoked", false);
    k.expires_at = o->optValue<int64_t>("expires_at_ms", 0);
    k.session_of = o->optValue<std::string>("session_of", "");
    hash = o->getValue<std::string>("sha256");
    return true;
  } catch (const Poco::Exception&) {
    return false;
  }
}

Principal principalOf(const KeyInfo& k) {
  Principal p;
  p.key_id = k.id;
  p.role = k.role;
  p.agency = k.agency;
  p.domains = k.domains;
  p.restricted = k.restricted || k.role == Role::kAdmin;
  return p;
}

std::string auditKey(uint64_t seq) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%020llu", kAuditPrefix, static_cast<unsigned long long>(seq));
  return buf;
}

std::string entryHash(const AuditEntry& e) {
  std::ostringstream os;
  os << e.prev_hash << '\n'
     << e.sequence << '\n'
     << e.at_ms << '\n'
     << e.actor << '\n'
     << e.role << '\n'
     << e.action << '\n'
     << e.target << '\n'
     << e.status;
  return sha256Hex(os.str());
}

bool decodeAudit(const std::string& text, AuditEntry& e) {
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
    e.sequence = o->getValue<uint64_t>("sequence");
    e.at_ms = o->getValue<int64_t>("at_ms");
    e.actor = o->getValue<std::string>("actor");
    e.role = o->getValue<std::string>("role");
    e.action = o->getValue<std::string>("action");
    e.target = o->getValue<std::string>("target");
    e.status = o->getValue<int>("status");
    e.prev_hash = o->getValue<std::string>("prev_hash");
    e.hash = o->getValue<std::string>("hash");
    return true;
  } catch (const Poco::Exception&) {
    return false;
  }
}

}  // namespace

std::string auditEntryJson(const AuditEntry& e) {
  Poco::JSON::Object o;
  o.set("sequence", e.sequence);
  o.set("at_ms", e.at_ms);
  o.set("actor", e.actor);
  o.set("role", e.role);
  o.set("action", e.action);
  o.set("target", e.target);
  o.set("status", e.status);
  o.set("prev_hash", e.prev_hash);
  o.set("hash", e.hash);
  return toJson(o);
}

std::string sha256Hex(const std::string& data) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  engine.update(data);
  return Poco::DigestEngine::digestToHex(engine.digest());
}

const char* roleName(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kOperator:
      return "operator";
    case Role::kAgency:
      return "agency";
    case Role::kSubscriber:
      return "subscriber";
    case Role::kViewer:
      return "viewer";
  }
  return "viewer";
}

Result<Role> parseRole(const std::string& name) {
  for (Role r : {Role::kAdmin, Role::kOperator, Role::kAgency, Role::kSubscriber, Role::kViewer}) {
    if (name == roleName(r)) return r;
  }
  return Status::invalidArgument("role '" + name +
                                 "' is not one of admin, operator, agency, subscriber, viewer");
}

std::string Principal::describe() const {
  if (anonymous) return "anonymous " + std::string(roleName(role));
  std::string s = std::string(roleName(role)) + " key " + key_id;
  if (!agency.empty()) s += " (" + agency + ")";
  return s;
}

namespace {

std::vector<std::string> sortedUnique(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

Status checkDomains(Role role, const std::vector<std::string>& domains) {
  if (role != Role::kAgency && !domains.empty()) {
    return Status::invalidArgument("only agency keys are bound to domains");
  }
  const auto& known = schemaDomains();
  for (const auto& d : domains) {
    if (!std::binary_search(known.begin(), known.end(), d)) {
      return Status::invalidArgument("'" + d + "' is not a domain of the shared schema (" +
                                     schemaDomainList() + ")");
    }
  }
  return Status::ok();
}

}  // namespace

const std::vector<std::string>& schemaDomains() {
  static const std::vector<std::string> domains = [] {
    std::set<std::string> found;
    const auto* body = firehub::v1::Record::descriptor()->FindOneofByName("body");
    for (int i = 0; body && i < body->field_count(); ++i) {
      const auto* type = body->field(i)->message_type();
      if (!type) continue;
      std::string d = type->options().GetExtension(firehub::v1::domain);
      if (!d.empty()) found.insert(d);
    }
    return std::vector<std::string>(found.begin(), found.end());
  }();
  return domains;
}

std::string schemaDomainList() {
  std::string list;
  for (const auto& d : schemaDomains()) list += (list.empty() ? "" : ", ") + d;
  return list;
}

bool Principal::mayWriteDomain(const std::string& domain) const {
  if (canOperate()) return true;
  return role == Role::kAgency &&
         std::find(domains.begin(), domains.end(), domain) != domains.end();
}

Result<std::pair<KeyInfo, std::string>> KeyStore::create(Role role, const std::string& agency,
                                                         bool restricted, const std::string& note,
                                                         const std::string& created_by,
                                                         const std::vector<std::string>& domains) {
  if (role == Role::kAgency && agency.empty()) {
    return Status::invalidArgument("an agency key needs the agency it acts for ('agency')");
  }
  if (role != Role::kAgency && !agency.empty()) {
    return Status::invalidArgument("only agency keys are bound to an agency");
  }
  FIREHUB_RETURN_IF_ERROR(checkDomains(role, domains));
  std::lock_guard<std::mutex> lock(mu_);
  KeyInfo k;
  k.id = randomHex(6);
  k.role = role;
  k.agency = agency;
  k.restricted = restricted;
  k.domains = sortedUnique(domains);
  k.note = note;
  k.created_at = nowMs();
  k.created_by = created_by;
  std::string secret = randomHex(32);
  FIREHUB_RETURN_IF_ERROR(lake_.putMeta(kKeyPrefix + k.id, encodeKey(k, sha256Hex(secret))));
  return std::make_pair(k, "fh_" + k.id + "_" + secret);
}

Result<Principal> KeyStore::authenticate(const std::string& key) const {
  // fh_<12 hex>_<64 hex>
  if (key.size() != 3 + 12 + 1 + 64 || key.compare(0, 3, "fh_") != 0 || key[15] != '_') {
    return Status(StatusCode::kUnauthenticated, "malformed API key");
  }
  std::string id = key.substr(3, 12);
  auto stored = load(id);
  if (!stored.isOk()) return stored.status();
  if (!stored.value() || !constantTimeEqual(stored.value()->second, sha256Hex(key.substr(16)))) {
    return Status(StatusCode::kUnauthenticated, "unknown API key");
  }
  FIREHUB_RETURN_IF_ERROR(live(stored.value()->first));
  return principalOf(stored.value()->first);
}

// A key may act: not revoked, and a session not past its end whose key or user is still there.
Status KeyStore::live(const KeyInfo& k) const {
  if (k.revoked) return Status(StatusCode::kUnauthenticated, "API key " + k.id + " was revoked");
  if (k.expires_at && nowMs() >= k.expires_at)
    return Status(StatusCode::kUnauthenticated, "the session ended; sign in again");
  if (k.session_of.rfind("key:", 0) == 0) {
    auto parent = load(k.session_of.substr(4));
    if (!parent.isOk()) return parent.status();
    if (!parent.value() || parent.value()->first.revoked ||
        !parent.value()->first.session_of.empty())
      return Status(StatusCode::kUnauthenticated,
                    "the key this session was opened with is revoked");
  } else if (k.session_of.rfind("user:", 0) == 0) {
    auto user = lake_.getMeta("users/" + k.session_of.substr(5));
    if (!user.isOk()) return user.status();
    if (!user.value())
      return Status(StatusCode::kUnauthenticated, "the user of this session is gone");
  }
  return Status::ok();
}

Result<std::optional<std::pair<KeyInfo, std::string>>> KeyStore::load(const std::string& id) const {
  auto stored = lake_.getMeta(kKeyPrefix + id);
  if (!stored.isOk()) return stored.status();
  KeyInfo k;
  std::string hash;
  if (!stored.value() || !decodeKey(id, *stored.value(), k, hash)) {
    return std::optional<std::pair<KeyInfo, std::string>>();
  }
  return std::optional<std::pair<KeyInfo, std::string>>(
      std::make_pair(std::move(k), std::move(hash)));
}

Result<Principal> KeyStore::principal(const std::string& id) const {
  auto key = load(id);
  if (!key.isOk()) return key.status();
  if (!key.value()) return Status(StatusCode::kUnauthenticated, "API key " + id + " is unknown");
  FIREHUB_RETURN_IF_ERROR(live(key.value()->first));
  return principalOf(key.value()->first);
}

Result<KeyInfo> KeyStore::setDomains(const std::string& id,
                                     const std::vector<std::string>& domains) {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = load(id);
  if (!key.isOk()) return key.status();
  if (!key.value()) return Status::notFound("no key '" + id + "'");
  auto& [k, hash] = *key.value();
  FIREHUB_RETURN_IF_ERROR(checkDomains(k.role, domains));
  k.domains = sortedUnique(domains);
  FIREHUB_RETURN_IF_ERROR(lake_.putMeta(kKeyPrefix + id, encodeKey(k, hash)));
  return k;
}

std::vector<std::string> KeyStore::undecodable() const {
  std::vector<std::string> out;
  (void)lake_.scanMeta(kKeyPrefix, [&](const std::string& key, const std::string& value) {
    KeyInfo k;
    std::string hash;
    std::string id = key.substr(std::strlen(kKeyPrefix));
    if (!decodeKey(id, value, k, hash)) out.push_back(id);
  });
  return out;
}

Status KeyStore::revoke(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = load(id);
  if (!key.isOk()) return key.status();
  if (!key.value()) return Status::notFound("no key '" + id + "'");
  auto& [k, hash] = *key.value();
  k.revoked = true;
  return lake_.putMeta(kKeyPrefix + id, encodeKey(k, hash));
}

Result<std::pair<KeyInfo, std::string>> KeyStore::createSession(const Principal& of,
                                                                const std::string& session_of,
                                                                int64_t expires_at_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  KeyInfo k;
  k.id = randomHex(6);
  k.role = of.role;
  k.agency = of.agency;
  k.domains = of.domains;
  k.restricted = of.restricted && of.role != Role::kAdmin;
  k.note = "sign-in session";
  k.created_at = nowMs();
  k.created_by = session_of;
  k.expires_at = expires_at_ms;
  k.session_of = session_of;
  std::string secret = randomHex(32);
  FIREHUB_RETURN_IF_ERROR(lake_.putMeta(kKeyPrefix + k.id, encodeKey(k, sha256Hex(secret))));
  return std::make_pair(k, "fh_" + k.id + "_" + secret);
}

Result<size_t> KeyStore::revokeSessions(const std::string& session_of) {
  auto keys = list();
  if (!keys.isOk()) return keys.status();
  size_t n = 0;
  for (const auto& k : keys.value()) {
    if (k.session_of != session_of || k.revoked) continue;
    FIREHUB_RETURN_IF_ERROR(revoke(k.id));
    ++n;
  }
  return n;
}

Result<std::vector<KeyInfo>> KeyStore::list() const {
  std::vector<KeyInfo> out;
  Status s = lake_.scanMeta(kKeyPrefix, [&](const std::string& key, const std::string& value) {
    KeyInfo k;
    std::string hash;
    if (decodeKey(key.substr(std::strlen(kKeyPrefix)), value, k, hash)) out.push_back(k);
  });
  if (!s.isOk()) return s;
  return out;
}

Result<std::optional<std::string>> KeyStore::ensureAdmin(const std::string& key_file) {
  auto keys = list();
  if (!keys.isOk()) return keys.status();
  for (const auto& k : keys.value()) {
    if (k.role == Role::kAdmin && !k.revoked) return std::optional<std::string>();
  }
  auto created = create(Role::kAdmin, "", true, "first start", "system");
  if (!created.isOk()) return created.status();
  const std::string& key = created->second;
  std::string tmp = key_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return Status::unavailable("cannot write " + tmp);
    out << key << "\n";
  }
  ::chmod(tmp.c_str(), 0600);
  if (std::rename(tmp.c_str(), key_file.c_str()) != 0)
    return Status::unavailable("cannot write " + key_file);
  return std::optional<std::string>(key);
}

AuditLog::AuditLog(lake::Lake& lake) : lake_(lake) {
  // Continue the chain after the newest entry.
  (void)lake_.scanMeta(kAuditPrefix, [&](const std::string&, const std::string& value) {
    AuditEntry e;
    if (decodeAudit(value, e)) {
      next_ = e.sequence + 1;
      last_hash_ = e.hash;
    }
  });
}

Status AuditLog::append(const std::string& actor, const std::string& role,
                        const std::string& action, const std::string& target, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  AuditEntry e;
  e.sequence = next_;
  e.at_ms = nowMs();
  e.actor = actor;
  e.role = role;
  e.action = action;
  e.target = target;
  e.status = status;
  e.prev_hash = last_hash_;
  e.hash = entryHash(e);
  FIREHUB_RETURN_IF_ERROR(lake_.putMeta(auditKey(e.sequence), auditEntryJson(e)));
  next_ = e.sequence + 1;
  last_hash_ = e.hash;
  return Status::ok();
}

Result<std::vector<AuditEntry>> AuditLog::list(uint64_t from, size_t max) const {
  std::vector<AuditEntry> out;
  Status s = lake_.scanMeta(kAuditPrefix, [&](const std::string&, const std::string& value) {
    AuditEntry e;
    if (out.size() < max && decodeAudit(value, e) && e.sequence >= from) out.push_back(e);
  });
  if (!s.isOk()) return s;
  return out;
}

Result<std::optional<std::string>> AuditLog::anchor() const {
  return lake_.getMeta(kAuditAnchorKey);
}

Result<size_t> AuditLog::expire(int64_t before_ms) {
  std::lock_guard<std::mutex> lock(mu_);  // no entry is appended meanwhile
  auto stored = anchor();
  FIREHUB_RETURN_IF_ERROR(stored.status());
  uint64_t removed_before = 0;
  if (stored.value()) {
    try {
      auto o = Poco::JSON::Parser().parse(*stored.value()).extract<Poco::JSON::Object::Ptr>();
      removed_before = o->getValue<uint64_t>("removed");
    } catch (const Poco::Exception&) {
      return Status::dataLoss("the audit anchor does not parse");
    }
  }
  std::vector<std::string> keys;
  AuditEntry last;
  Status s = lake_.scanMetaFrom(kAuditPrefix, kAuditPrefix,
                                [&](const std::string& key, const std::string& value) {
                                  AuditEntry e;
                                  if (!decodeAudit(value, e) || e.at_ms >= before_ms ||
                                      e.sequence + 1 >= next_ || keys.size() >= 100000)
                                    return false;
                                  keys.push_back(key);
                                  last = e;
                                  return true;
                                });
  FIREHUB_RETURN_IF_ERROR(s);
  if (keys.empty()) return size_t{0};
  Poco::JSON::Object a;
  a.set("through", last.sequence);
  a.set("hash", last.hash);
  a.set("removed", removed_before + keys.size());
  a.set("at_ms", last.at_ms);
  std::ostringstream os;
  a.stringify(os);
  FIREHUB_RETURN_IF_ERROR(lake_.putMetaBatch({{kAuditAnchorKey, os.str()}}, keys));
  return keys.size();
}

Result<std::optional<std::string>> AuditLog::verify() const {
  std::optional<std::string> broken;
  std::string prev;
  uint64_t expected = 1;
  auto stored = anchor();
  FIREHUB_RETURN_IF_ERROR(stored.status());
  if (stored.value()) {
    try {
      auto o = Poco::JSON::Parser().parse(*stored.value()).extract<Poco::JSON::Object::Ptr>();
      expected = o->getValue<uint64_t>("through") + 1;
      prev = o->getValue<std::string>("hash");
    } catch (const Poco::Exception&) {
      return std::optional<std::string>("the anchor of removed entries does not parse");
    }
  }
  Status s = lake_.scanMeta(kAuditPrefix, [&](const std::string& key, const std::string& value) {
    if (broken) return;
    AuditEntry e;
    if (!decodeAudit(value, e)) {
      broken = "entry " + key + " does not parse";
      return;
    }
    if (e.sequence != expected) {
      broken = "entry " + std::to_string(expected) + " is missing (next is " +
               std::to_string(e.sequence) + ")";
      return;
    }
    if (e.prev_hash != prev) {
      broken = "entry " + std::to_string(e.sequence) + " does not link to the entry before it";
      return;
    }
    if (entryHash(e) != e.hash) {
      broken = "entry " + std::to_string(e.sequence) +
               " was altered (its hash does not match its content)";
      return;
    }
    prev = e.hash;
    ++expected;
  });
  if (!s.isOk()) return s;
  return broken;
}

}  // namespace firehub::auth
