// Service-account tokens (compact JWS, RFC 7515/7519) and K3s node join tokens.

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <nlohmann/json.hpp>

#include "apiserver/pki/crypto.h"
#include "apiserver/pki/pki.h"
#include "common/base64.h"
#include "common/random.h"
#include "common/strings.h"

namespace skiff::apiserver::pki {
namespace {

using json = nlohmann::json;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpenSslFree<&EVP_MD_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OpenSslFree<&ECDSA_SIG_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslFree<&BN_free>>;

// Bounds on what a presented token may be before any decoding. Real service-account tokens
// are around a kilobyte; the bounds keep hostile input from costing memory or stack.
constexpr size_t kMaxJwtBytes = size_t{64} * 1024;
constexpr int kMaxJsonNesting = 16;
constexpr size_t kMaxJoinTokenBytes = 4096;
constexpr size_t kEs256CoordinateBytes = 32;
constexpr char kServiceAccountPrefix[] = "system:serviceaccount:";

Result<std::shared_ptr<const PkiKeys>> keys_of(const Pki& pki) {
  if (pki.keys) return pki.keys;
  return load_keys(pki);
}

// Signs with SHA-256. ES256 signatures are returned as JWS wants them: r || s, each 32 bytes
// big-endian (RFC 7518 §3.4), not OpenSSL's DER.
Result<std::string> sign_bytes(EVP_PKEY* key, const std::string& alg, std::string_view data) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1)
    return openssl_error("signing a token");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1)
    return openssl_error("signing a token");
  sig.resize(len);
  if (alg != "ES256") return sig;

  const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
  EcdsaSigPtr ecdsa(d2i_ECDSA_SIG(nullptr, &p, long(sig.size())));
  if (!ecdsa) return openssl_error("decoding an ECDSA signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(ecdsa.get(), &r, &s);
  std::string raw(2 * kEs256CoordinateBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(r, out, int(kEs256CoordinateBytes)) < 0 ||
      BN_bn2binpad(s, out + kEs256CoordinateBytes, int(kEs256CoordinateBytes)) < 0)
    return openssl_error("encoding an ECDSA signature");
  return raw;
}

bool verify_bytes(EVP_PKEY* key, const std::string& alg, std::string_view data,
                  std::string_view sig) {
  std::string der;
  if (alg == "ES256") {
    if (sig.size() != 2 * kEs256CoordinateBytes) return false;
    auto* in = reinterpret_cast<const unsigned char*>(sig.data());
    BignumPtr r(BN_bin2bn(in, int(kEs256CoordinateBytes), nullptr));
    BignumPtr s(BN_bin2bn(in + kEs256CoordinateBytes, int(kEs256CoordinateBytes), nullptr));
    EcdsaSigPtr ecdsa(ECDSA_SIG_new());
    if (!r || !s || !ecdsa || ECDSA_SIG_set0(ecdsa.get(), r.get(), s.get()) != 1) {
      clear_openssl_errors();
      return false;
    }
    (void)r.release();  // owned by ecdsa now
    (void)s.release();
    unsigned char* buf = nullptr;
    int len = i2d_ECDSA_SIG(ecdsa.get(), &buf);
    if (len <= 0) {
      clear_openssl_errors();
      return false;
    }
    der.assign(reinterpret_cast<char*>(buf), size_t(len));
    OPENSSL_free(buf);
    sig = der;
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok =
      ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  clear_openssl_errors();
  return ok;
}

// Whether JSON text nests no deeper than max_depth, checked before parsing so that no parser
// or later recursive walk of the value sees deeper input.
bool nesting_within(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

// Decodes one base64url JWS segment holding a JSON object; nullopt for anything else.
std::optional<json> decode_json_segment(std::string_view segment) {
  Result<std::string> text = base64url_decode_strict(segment);
  if (!text.ok() || !nesting_within(*text, kMaxJsonNesting)) return std::nullopt;
  try {
    json value = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded() || !value.is_object()) return std::nullopt;
    return value;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

// A JWT NumericDate (RFC 7519 §2): seconds since the epoch, possibly fractional (truncated).
std::optional<int64_t> numeric_date(const json& v) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(INT64_MAX)) return std::nullopt;
    return int64_t(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    // Range-checked so that the conversion below is defined.
    if (!std::isfinite(d) || d >= 9.2e18 || d <= -9.2e18) return std::nullopt;
    return int64_t(d);
  }
  return std::nullopt;
}

const json* member(const json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

const std::string* string_member(const json& object, const char* key) {
  const json* v = member(object, key);
  return v != nullptr && v->is_string() ? v->get_ptr<const std::string*>() : nullptr;
}

Status reject(std::string_view why) {
  return Status::Unauthorized("invalid bearer token, " + std::string(why));
}

Status check_claims(const json& claims, int64_t now, const std::vector<std::string>& audiences) {
  const std::string* iss = string_member(claims, "iss");
  if (iss == nullptr || *iss != kServiceAccountIssuer) return reject("unexpected issuer");

  const json* exp_v = member(claims, "exp");
  std::optional<int64_t> exp = exp_v ? numeric_date(*exp_v) : std::nullopt;
  if (!exp) return reject("token has no valid expiry");
  // Written as subtractions from `now` (a sane clock value) so hostile claims cannot overflow.
  if (*exp < now - kTokenLeewaySeconds) return reject("service account token has expired");
  for (const char* key : {"nbf", "iat"}) {
    const json* v = member(claims, key);
    if (v == nullptr) continue;
    std::optional<int64_t> t = numeric_date(*v);
    if (!t) return reject(std::string("malformed ") + key);
    if (*t > now + kTokenLeewaySeconds) return reject("service account token is not valid yet");
  }

  if (!audiences.empty()) {
    const json* aud = member(claims, "aud");
    bool match = false;
    auto matches = [&](const json& a) {
      return a.is_string() && std::find(audiences.begin(), audiences.end(),
                                        a.get_ref<const std::string&>()) != audiences.end();
    };
    if (aud != nullptr && aud->is_array()) {
      for (const json& a : *aud) match = match || matches(a);
    } else if (aud != nullptr) {
      match = matches(*aud);
    }
    if (!match) return reject("token audiences do not match");
  }

  const json* k8s = member(claims, "kubernetes.io");
  const json* sa = k8s && k8s->is_object() ? member(*k8s, "serviceaccount") : nullptr;
  const std::string* ns = k8s && k8s->is_object() ? string_member(*k8s, "namespace") : nullptr;
  const std::string* name = sa && sa->is_object() ? string_member(*sa, "name") : nullptr;
  const std::string* sub = string_member(claims, "sub");
  if (ns == nullptr || ns->empty() || name == nullptr || name->empty() || sub == nullptr ||
      *sub != kServiceAccountPrefix + *ns + ":" + *name)
    return reject("token does not name a service account");
  return Status::Ok();
}

}  // namespace

Result<std::string> sign_token(const nlohmann::json& claims, const Pki& pki) {
  if (!claims.is_object()) return Status::Invalid("token claims must be a JSON object");
  auto keys = keys_of(pki);
  if (!keys.ok()) return keys.status();
  const PkiKeys& k = **keys;
  if (!k.sa_signing_key) return Status::Internal("the service-account signing key is missing");
  std::string payload;
  try {
    payload = claims.dump();
  } catch (const json::exception& e) {
    return Status::Invalid(std::string("token claims cannot be encoded: ") + e.what());
  }
  json header = {{"alg", k.sa_alg}, {"kid", k.sa_kid}};
  std::string input = base64url_encode(header.dump()) + "." + base64url_encode(payload);
  auto sig = sign_bytes(k.sa_signing_key.get(), k.sa_alg, input);
  if (!sig.ok()) return sig.status();
  return input + "." + base64url_encode(*sig);
}

Result<nlohmann::json> verify_token(std::string_view jwt, const Pki& pki, int64_t now,
                                    const std::vector<std::string>& audiences) {
  if (jwt.size() > kMaxJwtBytes) return reject("token is too large");
  size_t dot1 = jwt.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : jwt.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || jwt.find('.', dot2 + 1) != std::string_view::npos)
    return reject("not a compact JWS");
  std::string_view header_b64 = jwt.substr(0, dot1);
  std::string_view payload_b64 = jwt.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view sig_b64 = jwt.substr(dot2 + 1);

  auto keys = keys_of(pki);
  if (!keys.ok()) return keys.status();
  const PkiKeys& k = **keys;
  if (!k.sa_verify_key) return Status::Internal("the service-account key is missing");

  std::optional<json> header = decode_json_segment(header_b64);
  if (!header) return reject("malformed header");
  // Only the key's own algorithm is accepted: never "none", never HS256 keyed with a public
  // key, never RS256 for an EC key.
  const std::string* alg = string_member(*header, "alg");
  if (alg == nullptr || *alg != k.sa_alg) return reject("unexpected signing algorithm");
  if (member(*header, "crit") != nullptr) return reject("unsupported critical header");
  if (const json* kid = member(*header, "kid"); kid != nullptr) {
    if (!kid->is_string() || kid->get_ref<const std::string&>() != k.sa_kid)
      return reject("unknown signing key");
  }
  Result<std::string> sig = base64url_decode_strict(sig_b64);
  if (!sig.ok()) return reject("malformed signature");
  std::string_view signed_part = jwt.substr(0, dot2);
  if (!verify_bytes(k.sa_verify_key.get(), k.sa_alg, signed_part, *sig))
    return reject("signature does not verify");

  std::optional<json> claims = decode_json_segment(payload_b64);
  if (!claims) return reject("malformed claims");
  Status s = check_claims(*claims, now, audiences);
  if (!s.ok()) return s;
  return std::move(*claims);
}

nlohmann::json service_account_claims(const std::string& ns, const std::string& sa_name,
                                      const std::string& sa_uid,
                                      const std::vector<std::string>& audiences,
                                      int64_t expiration_seconds, int64_t now,
                                      const std::optional<BoundPod>& pod) {
  json k8s = {{"namespace", ns}, {"serviceaccount", {{"name", sa_name}, {"uid", sa_uid}}}};
  if (pod) {
    k8s["pod"] = {{"name", pod->name}, {"uid", pod->uid}};
    if (!pod->node_name.empty()) k8s["node"] = {{"name", pod->node_name}, {"uid", pod->node_uid}};
  }
  json aud = json::array();
  if (audiences.empty()) {
    aud.push_back(kServiceAccountIssuer);
  } else {
    for (const std::string& a : audiences) aud.push_back(a);
  }
  return json{{"iss", kServiceAccountIssuer},
              {"sub", kServiceAccountPrefix + ns + ":" + sa_name},
              {"aud", std::move(aud)},
              {"exp", now + expiration_seconds},
              {"iat", now},
              {"nbf", now},
              {"jti", new_uuid()},
              {"kubernetes.io", std::move(k8s)}};
}

Result<UserInfo> user_from_service_account_claims(const nlohmann::json& claims) {
  const json* k8s = claims.is_object() ? member(claims, "kubernetes.io") : nullptr;
  const json* sa = k8s && k8s->is_object() ? member(*k8s, "serviceaccount") : nullptr;
  const std::string* ns = k8s && k8s->is_object() ? string_member(*k8s, "namespace") : nullptr;
  const std::string* name = sa && sa->is_object() ? string_member(*sa, "name") : nullptr;
  if (ns == nullptr || ns->empty() || name == nullptr || name->empty())
    return Status::Unauthorized("token does not name a service account");
  UserInfo user;
  user.name = kServiceAccountPrefix + *ns + ":" + *name;
  user.groups = {"system:serviceaccounts", "system:serviceaccounts:" + *ns};
  if (const std::string* uid = string_member(*sa, "uid")) user.uid = *uid;
  auto add_ref = [&](const char* key, const std::string& extra_prefix) {
    const json* ref = member(*k8s, key);
    if (ref == nullptr || !ref->is_object()) return;
    if (const std::string* v = string_member(*ref, "name"); v && !v->empty())
      user.extra[extra_prefix + "-name"] = {*v};
    if (const std::string* v = string_member(*ref, "uid"); v && !v->empty())
      user.extra[extra_prefix + "-uid"] = {*v};
  };
  add_ref("pod", "authentication.kubernetes.io/pod");
  add_ref("node", "authentication.kubernetes.io/node");
  if (const std::string* jti = string_member(claims, "jti"); jti && !jti->empty())
    user.extra["authentication.kubernetes.io/credential-id"] = {"JTI=" + *jti};
  return user;
}

Result<JoinToken> parse_join_token(std::string_view token) {
  if (token.empty()) return Status::BadRequest("token must not be empty");
  if (token.size() > kMaxJoinTokenBytes) return Status::BadRequest("token is too long");
  for (char c : token) {
    if (uint8_t(c) <= 0x20 || c == 0x7f)
      return Status::BadRequest("token must not contain whitespace or control characters");
  }
  JoinToken out;
  constexpr std::string_view kPrefix = "K10";
  if (token.substr(0, kPrefix.size()) != kPrefix) {
    // A short token is the secret alone, as K3s reads it.
    out.secret.assign(token);
    return out;
  }
  std::string_view rest = token.substr(kPrefix.size());
  std::string_view creds = rest;
  if (size_t sep = rest.find("::"); sep != std::string_view::npos) {
    std::string_view hash = rest.substr(0, sep);
    if (!hash.empty()) {
      if (hash.size() != 64 || !hex_decode(hash))
        return Status::BadRequest("invalid token CA hash: want 64 hex digits");
      out.ca_hash = ascii_lower(hash);
    }
    creds = rest.substr(sep + 2);
  }
  size_t colon = creds.find(':');
  if (colon == std::string_view::npos || colon + 1 == creds.size())
    return Status::BadRequest("invalid token format: want K10<ca hash>::<user>:<secret>");
  out.username.assign(creds.substr(0, colon));
  out.secret.assign(creds.substr(colon + 1));
  return out;
}

bool check_join_token(std::string_view presented, const Pki& pki) {
  auto ours = parse_join_token(pki.join_token);
  auto theirs = parse_join_token(presented);
  if (!ours.ok() || ours->secret.empty() || !theirs.ok()) return false;
  if (!theirs->username.empty() && theirs->username != "server") return false;
  if (!theirs->ca_hash.empty() && !ca_matches_hash(pki.ca_cert_pem, theirs->ca_hash)) return false;
  return constant_time_equal(theirs->secret, ours->secret);
}

bool ca_matches_hash(const std::string& ca_pem, const std::string& hex) {
  auto want = hex_decode(hex);
  if (!want || want->size() != 32 || ca_pem.empty()) return false;
  return constant_time_equal(sha256(ca_pem), *want);
}

}  // namespace skiff::apiserver::pki
