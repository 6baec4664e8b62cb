// People who sign in with a name and password: entries "users/<name>" in the lake's meta, the
// password kept as a salted scrypt hash.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/RandomStream.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <chrono>
#include <cstring>
#include <regex>
#include <sstream>

#include "firehub/auth.h"

namespace firehub::auth {
namespace {

constexpr const char* kUserPrefix = "users/";
// scrypt's cost: N = 2^15, r = 8, p = 1 (32 MiB, tens of milliseconds a guess).
constexpr uint64_t kN = 1u << 15, kR = 8, kP = 1;

std::string hex(const unsigned char* data, size_t n) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kHex[data[i] >> 4];
    out += kHex[data[i] & 15];
  }
  return out;
}

Result<std::string> scrypt(const std::string& password, const std::string& salt, uint64_t n,
                           uint64_t r, uint64_t p) {
  unsigned char out[32];
  if (EVP_PBE_scrypt(password.data(), password.size(),
                     reinterpret_cast<const unsigned char*>(salt.data()), salt.size(), n, r, p,
                     64u << 20, out, sizeof out) != 1) {
    return Status::internal("scrypt failed");
  }
  return hex(out, sizeof out);
}

std::string encodeUser(const UserInfo& u, const std::string& salt, const std::string& hash) {
  Poco::JSON::Object o;
  o.set("role", roleName(u.role));
  o.set("agency", u.agency);
  Poco::JSON::Array domains;
  for (const auto& d : u.domains) domains.add(d);
  o.set("domains", domains);
  o.set("restricted", u.restricted);
  o.set("created_at_ms", u.created_at);
  o.set("created_by", u.created_by);
  o.set("scrypt",
        "N=" + std::to_string(kN) + ",r=" + std::to_string(kR) + ",p=" + std::to_string(kP));
  o.set("salt", salt);
  o.set("hash", hash);
  std::ostringstream os;
  o.stringify(os);
  return os.str();
}

bool decodeUser(const std::string& name, const std::string& text, UserInfo& u, std::string& salt,
                std::string& hash) {
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
    auto role = parseRole(o->getValue<std::string>("role"));
    if (!role.isOk()) return false;
    u.name = name;
    u.role = role.value();
    u.agency = o->optValue<std::string>("agency", "");
    u.domains.clear();
    if (auto d = o->getArray("domains")) {
      for (size_t i = 0; i < d->size(); ++i)
        u.domains.push_back(d->getElement<std::string>(static_cast<unsigned>(i)));
    }
    u.restricted = o->optValue<bool>("restricted", false);
    u.created_at = o->optValue<int64_t>("created_at_ms", 0);
    u.created_by = o->optValue<std::string>("created_by", "");
    salt = o->getValue<std::string>("salt");
    hash = o->getValue<std::string>("hash");
    return true;
  } catch (const Poco::Exception&) {
    return false;
  }
}

}  // namespace

Principal principalOfUser(const UserInfo& u) {
  Principal p;
  p.role = u.role;
  p.agency = u.agency;
  p.domains = u.domains;
  p.restricted = u.restricted || u.role == Role::kAdmin;
  return p;
}

Result<UserInfo> UserStore::create(const UserInfo& user, const std::string& password) {
  static const std::regex kName("[a-z0-9._-]{1,64}");
  if (!std::regex_match(user.name, kName)) {
    return Status::invalidArgument("a user name is 1 to 64 of a-z, 0-9, '.', '_' and '-'");
  }
  if (password.size() < 10) {
    return Status::invalidArgument("a password has at least 10 characters");
  }
  if (user.role == Role::kAgency && user.agency.empty()) {
    return Status::invalidArgument("an agency user needs the agency it acts for ('agency')");
  }
  if (user.role != Role::kAgency && !user.agency.empty()) {
    return Status::invalidArgument("only agency users are bound to an agency");
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto existing = lake_.getMeta(kUserPrefix + user.name);
  if (!existing.isOk()) return existing.status();
  if (existing.value()) return Status::alreadyExists("user '" + user.name + "' exists");
  unsigned char raw[16];
  Poco::RandomInputStream().read(reinterpret_cast<char*>(raw), sizeof raw);
  const std::string salt = hex(raw, sizeof raw);
  auto hash = scrypt(password, salt, kN, kR, kP);
  if (!hash.isOk()) return hash.status();
  UserInfo u = user;
  u.created_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  FIREHUB_RETURN_IF_ERROR(lake_.putMeta(kUserPrefix + u.name, encodeUser(u, salt, hash.value())));
  return u;
}

Result<UserInfo> UserStore::verify(const std::string& name, const std::string& password) const {
  const Status wrong(StatusCode::kUnauthenticated, "wrong user name or password");
  auto stored = lake_.getMeta(kUserPrefix + name);
  if (!stored.isOk()) return stored.status();
  UserInfo u;
  std::string salt, hash;
  // An unknown name costs a hash too, so the answer's time does not tell names apart.
  const bool known = stored.value() && decodeUser(name, *stored.value(), u, salt, hash);
  auto computed = scrypt(password, known ? salt : std::string(32, '0'), kN, kR, kP);
  if (!computed.isOk()) return computed.status();
  if (!known || computed.value().size() != hash.size() ||
      CRYPTO_memcmp(computed.value().data(), hash.data(), hash.size()) != 0) {
    return wrong;
  }
  return u;
}

Result<std::optional<UserInfo>> UserStore::get(const std::string& name) const {
  auto stored = lake_.getMeta(kUserPrefix + name);
  if (!stored.isOk()) return stored.status();
  UserInfo u;
  std::string salt, hash;
  if (!stored.value() || !decodeUser(name, *stored.value(), u, salt, hash))
    return std::optional<UserInfo>();
  return std::optional<UserInfo>(u);
}

Result<std::vector<UserInfo>> UserStore::list() const {
  std::vector<UserInfo> out;
  Status s = lake_.scanMeta(kUserPrefix, [&](const std::string& key, const std::string& value) {
    UserInfo u;
    std::string salt, hash;
    if (decodeUser(key.substr(std::strlen(kUserPrefix)), value, u, salt, hash)) out.push_back(u);
  });
  if (!s.isOk()) return s;
  return out;
}

Status UserStore::remove(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto stored = lake_.getMeta(kUserPrefix + name);
  if (!stored.isOk()) return stored.status();
  if (!stored.value()) return Status::notFound("no user '" + name + "'");
  return lake_.deleteMeta(kUserPrefix + name);
}

}  // namespace firehub::auth
