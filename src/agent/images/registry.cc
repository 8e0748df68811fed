#include "agent/images/registry.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

#include "agent/images/digest.h"
#include "agent/images/fs_util.h"
#include "agent/images/reference.h"
#include "common/base64.h"
#include "common/dynamic_library.h"
#include "common/strings.h"

namespace skiff::agent::images {
namespace {

constexpr size_t kMaxManifestBytes = 4 << 20;
constexpr size_t kMaxErrorBytes = 64 << 10;
constexpr int64_t kProgressStep = 256 << 10;

// libcurl, with the TLS, HTTP/2, IDN and authentication libraries it brings, is loaded when
// the first registry client is made (common/dynamic_library.h): a node that never pulls
// does not carry it in memory.
struct CurlApi {
  decltype(&::curl_global_init) global_init;
  decltype(&::curl_easy_init) easy_init;
  decltype(&::curl_easy_cleanup) easy_cleanup;
  decltype(&::curl_easy_reset) easy_reset;
  decltype(&::curl_easy_setopt) easy_setopt;
  decltype(&::curl_easy_getinfo) easy_getinfo;
  decltype(&::curl_easy_perform) easy_perform;
  decltype(&::curl_easy_strerror) easy_strerror;
  decltype(&::curl_slist_append) slist_append;
  decltype(&::curl_slist_free_all) slist_free_all;
};

// The loaded API, or nullptr with *error saying why it could not be loaded.
const CurlApi* load_curl(std::string* error) {
  static std::once_flag once;
  static CurlApi api;
  static Status loaded;
  std::call_once(once, [] {
    auto slot = [](auto& fn) { return reinterpret_cast<void**>(&fn); };
    loaded = load_library("libcurl.so.4", {{"curl_global_init", slot(api.global_init)},
                                           {"curl_easy_init", slot(api.easy_init)},
                                           {"curl_easy_cleanup", slot(api.easy_cleanup)},
                                           {"curl_easy_reset", slot(api.easy_reset)},
                                           {"curl_easy_setopt", slot(api.easy_setopt)},
                                           {"curl_easy_getinfo", slot(api.easy_getinfo)},
                                           {"curl_easy_perform", slot(api.easy_perform)},
                                           {"curl_easy_strerror", slot(api.easy_strerror)},
                                           {"curl_slist_append", slot(api.slist_append)},
                                           {"curl_slist_free_all", slot(api.slist_free_all)}});
    if (loaded.ok()) api.global_init(CURL_GLOBAL_DEFAULT);
  });
  if (!loaded.ok()) {
    if (error) *error = loaded.message();
    return nullptr;
  }
  return &api;
}

// REQUIRES: load_curl() succeeded.
const CurlApi& lib() { return *load_curl(nullptr); }

struct Challenge {
  std::string scheme;  // "bearer" or "basic", lowercase
  std::map<std::string, std::string> params;
};

// Parses `Bearer realm="...",service="...",scope="..."` (RFC 7235 auth-params).
Challenge parse_challenge(std::string_view h) {
  Challenge c;
  h = trim_space(h);
  size_t sp = h.find(' ');
  c.scheme = ascii_lower(h.substr(0, sp));
  if (sp == std::string_view::npos) return c;
  std::string_view rest = h.substr(sp + 1);
  size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && (rest[i] == ' ' || rest[i] == ',')) ++i;
    size_t eq = rest.find('=', i);
    if (eq == std::string_view::npos) break;
    std::string key = ascii_lower(trim_space(rest.substr(i, eq - i)));
    i = eq + 1;
    std::string value;
    if (i < rest.size() && rest[i] == '"') {
      ++i;
      while (i < rest.size() && rest[i] != '"') {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        value.push_back(rest[i++]);
      }
      ++i;
    } else {
      size_t end = rest.find(',', i);
      if (end == std::string_view::npos) end = rest.size();
      value = std::string(trim_space(rest.substr(i, end - i)));
      i = end;
    }
    c.params[key] = value;
  }
  return c;
}

std::string url_escape(std::string_view s) {
  std::string out;
  static const char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// What one request wants done with the response body.
struct Response {
  long code = 0;
  std::map<std::string, std::string> headers;  // lowercase names, last value wins
  std::string body;                            // small bodies and error bodies
  // For blobs: written to fd when the status is 2xx, hashed, counted.
  int fd = -1;
  Sha256* hash = nullptr;
  int64_t written = 0;
  int64_t limit = -1;  // abort when more arrives (a blob larger than its descriptor)
  bool too_large = false;
  int write_errno = 0;
  const BlobProgressFn* progress = nullptr;
  const std::string* digest = nullptr;
  int64_t total = -1;
  int64_t last_reported = 0;
  CURL* curl = nullptr;
};

size_t on_header(char* data, size_t size, size_t n, void* ud) {
  auto* r = static_cast<Response*>(ud);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    r->headers.clear();  // a new response (after a redirect or 100-continue)
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    r->headers[ascii_lower(trim_space(line.substr(0, colon)))] =
        std::string(trim_space(line.substr(colon + 1)));
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* ud) {
  auto* r = static_cast<Response*>(ud);
  size_t len = size * n;
  long code = 0;
  lib().easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &code);
  bool success = code >= 200 && code < 300;
  if (r->fd < 0 || !success) {
    size_t cap = success ? kMaxManifestBytes : kMaxErrorBytes;
    if (r->body.size() + len > cap) {
      r->too_large = true;
      return 0;
    }
    r->body.append(data, len);
    return len;
  }
  if (r->limit >= 0 && r->written + static_cast<int64_t>(len) > r->limit) {
    r->too_large = true;
    return 0;
  }
  size_t off = 0;
  while (off < len) {
    ssize_t w = ::write(r->fd, data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      r->write_errno = errno;
      return 0;
    }
    off += static_cast<size_t>(w);
  }
  r->hash->update(data, len);
  r->written += static_cast<int64_t>(len);
  if (r->progress && *r->progress && r->written - r->last_reported >= kProgressStep) {
    r->last_reported = r->written;
    (*r->progress)(*r->digest, r->written, r->total);
  }
  return len;
}

// "manifest unknown", "unauthorized: authentication required" from the registry's
// {"errors": [{"code", "message", "detail"}]} body; "" if the body is not one.
std::string registry_error_text(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "";
  auto errs = j.find("errors");
  if (errs == j.end() || !errs->is_array()) return "";
  std::string out;
  for (const auto& e : *errs) {
    if (!e.is_object()) continue;
    std::string code;
    if (auto c = e.find("code"); c != e.end() && c->is_string()) {
      code = ascii_lower(c->get<std::string>());
      for (char& ch : code) {
        if (ch == '_') ch = ' ';
      }
    }
    std::string msg;
    if (auto m = e.find("message"); m != e.end() && m->is_string()) msg = m->get<std::string>();
    std::string one = code;
    if (!msg.empty() && msg != code) one += (one.empty() ? "" : ": ") + msg;
    if (one.empty()) continue;
    if (!out.empty()) out += "; ";
    out += one;
  }
  return out;
}

Status http_error(long code, const std::string& body, std::string_view what) {
  std::string text = registry_error_text(body);
  if (text.empty()) {
    switch (code) {
      case 401:
        text = "unauthorized: authentication required";
        break;
      case 403:
        text = "denied: requested access to the resource is denied";
        break;
      case 404:
        text = "not found";
        break;
      default:
        text = "unexpected HTTP status " + std::to_string(code);
    }
  }
  std::string m = std::string(what) + ": " + text;
  if (code == 401) return Status::Unauthorized(text);
  if (code == 403) return Status::Forbidden(text);
  if (code == 404) return Status::NotFound(text);
  if (code == 429) return Status(StatusCode::kTooManyRequests, m);
  if (code >= 500) return Status::Unavailable(m);
  return Status::Internal(m);
}

}  // namespace

struct RegistryClient::Impl {
  std::string domain;
  std::string repository;
  RegistryOptions options;
  std::string base_url;
  std::string authorization;  // the header value that last worked (or was obtained)
  CURL* curl = nullptr;  // null when libcurl could not be loaded (load_error says why)
  std::string load_error;
  char errbuf[CURL_ERROR_SIZE] = {};

  Status perform(const std::string& url, const std::vector<std::string>& headers, Response& r,
                 const std::string* post_body = nullptr);
  // GET with the cached authorization; on 401 answers the challenge once and retries.
  Status get(const std::string& url, const std::vector<std::string>& headers, Response& r,
             const std::function<void()>& rewind);
  Status authorize(const std::string& challenge_header);
  Status fetch_token(const Challenge& c);
};

Status RegistryClient::Impl::perform(const std::string& url,
                                     const std::vector<std::string>& headers, Response& r,
                                     const std::string* post_body) {
  if (curl == nullptr) return Status::Unavailable(load_error);
  lib().easy_reset(curl);
  errbuf[0] = 0;
  r.curl = curl;
  lib().easy_setopt(curl, CURLOPT_URL, url.c_str());
  lib().easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  lib().easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  lib().easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  lib().easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  lib().easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  lib().easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  lib().easy_setopt(curl, CURLOPT_USERAGENT, "skiff/0.1");
  lib().easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_seconds);
  lib().easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  lib().easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, options.stall_timeout_seconds);
  lib().easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  lib().easy_setopt(curl, CURLOPT_HEADERDATA, &r);
  lib().easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  lib().easy_setopt(curl, CURLOPT_WRITEDATA, &r);
  if (!options.ca_file.empty()) lib().easy_setopt(curl, CURLOPT_CAINFO, options.ca_file.c_str());
  if (options.insecure_skip_tls_verify) {
    lib().easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    lib().easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (post_body != nullptr) {
    lib().easy_setopt(curl, CURLOPT_POSTFIELDS, post_body->c_str());
    lib().easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(post_body->size()));
  }
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = lib().slist_append(list, h.c_str());
  lib().easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  CURLcode rc = lib().easy_perform(curl);
  lib().slist_free_all(list);
  lib().easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.code);
  if (rc == CURLE_OK) return Status::Ok();
  if (r.write_errno != 0) return errno_status("write", "blob", r.write_errno);
  if (r.too_large) return Status::Invalid("response from " + url + " is larger than expected");
  long os_errno = 0;
  lib().easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
  std::string detail = errbuf[0] ? errbuf : lib().easy_strerror(rc);
  if (rc == CURLE_COULDNT_CONNECT && os_errno != 0) {
    detail = ascii_lower(std::strerror(static_cast<int>(os_errno)));
  }
  std::string host = url.substr(0, url.find('/', url.find("://") + 3));
  return Status::Unavailable("connecting to " + host + ": " + detail);
}

Status RegistryClient::Impl::fetch_token(const Challenge& c) {
  auto realm = c.params.find("realm");
  if (realm == c.params.end() || realm->second.empty()) {
    return Status::Unauthorized("registry sent a Bearer challenge without a realm");
  }
  std::string service = c.params.count("service") ? c.params.at("service") : "";
  std::string scope =
      c.params.count("scope") ? c.params.at("scope") : "repository:" + repository + ":pull";
  const RegistryCredentials* creds = options.credentials ? &*options.credentials : nullptr;
  Response r;
  Status s;
  if (creds && !creds->identity_token.empty()) {
    std::string form = "grant_type=refresh_token&client_id=skiff&service=" + url_escape(service) +
                       "&scope=" + url_escape(scope) +
                       "&refresh_token=" + url_escape(creds->identity_token);
    s = perform(realm->second, {"Content-Type: application/x-www-form-urlencoded"}, r, &form);
  } else {
    std::string url = realm->second;
    url += url.find('?') == std::string::npos ? '?' : '&';
    url += "service=" + url_escape(service) + "&scope=" + url_escape(scope);
    std::vector<std::string> headers;
    if (creds && (!creds->username.empty() || !creds->password.empty())) {
      headers.push_back("Authorization: Basic " +
                        base64_encode(creds->username + ":" + creds->password));
    }
    s = perform(url, headers, r);
  }
  if (!s.ok()) return s;
  if (r.code == 401 || r.code == 403) {
    std::string text = registry_error_text(r.body);
    return Status::Unauthorized(text.empty() ? "unauthorized: incorrect username or password"
                                             : text);
  }
  if (r.code != 200) return http_error(r.code, r.body, "token endpoint " + realm->second);
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  std::string token;
  if (j.is_object()) {
    for (const char* key : {"token", "access_token"}) {
      if (auto it = j.find(key); it != j.end() && it->is_string() && token.empty()) {
        token = it->get<std::string>();
      }
    }
  }
  if (token.empty()) return Status::Unauthorized("token endpoint returned no token");
  authorization = "Bearer " + token;
  return Status::Ok();
}

Status RegistryClient::Impl::authorize(const std::string& header) {
  Challenge c = parse_challenge(header);
  const RegistryCredentials* creds = options.credentials ? &*options.credentials : nullptr;
  if (c.scheme == "bearer") {
    if (creds && !creds->registry_token.empty()) {
      authorization = "Bearer " + creds->registry_token;
      return Status::Ok();
    }
    return fetch_token(c);
  }
  if (c.scheme == "basic") {
    if (creds == nullptr || (creds->username.empty() && creds->password.empty())) {
      return Status::Unauthorized("unauthorized: authentication required");
    }
    authorization = "Basic " + base64_encode(creds->username + ":" + creds->password);
    return Status::Ok();
  }
  return Status::Unauthorized("unauthorized: unsupported authentication scheme \"" + c.scheme +
                              "\"");
}

Status RegistryClient::Impl::get(const std::string& url, const std::vector<std::string>& headers,
                                 Response& r, const std::function<void()>& rewind) {
  std::string used;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::vector<std::string> h = headers;
    used = authorization;
    if (!used.empty()) h.push_back("Authorization: " + used);
    Status s = perform(url, h, r);
    if (!s.ok()) return s;
    if (r.code != 401 || attempt == 1) break;
    auto challenge = r.headers.find("www-authenticate");
    if (challenge == r.headers.end()) break;
    // A cached token that expired, or none yet: answer the challenge and try again.
    s = authorize(challenge->second);
    if (!s.ok()) return s;
    r.body.clear();
    r.headers.clear();
    if (rewind) rewind();
  }
  return Status::Ok();
}

RegistryClient::RegistryClient(std::string domain, std::string repository, RegistryOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->domain = std::move(domain);
  impl_->repository = std::move(repository);
  impl_->options = std::move(options);
  bool plain = impl_->options.plain_http.value_or(is_loopback_registry(impl_->domain));
  impl_->base_url = (plain ? "http://" : "https://") + registry_api_host(impl_->domain);
  if (load_curl(&impl_->load_error) == nullptr) return;  // every request reports it
  impl_->curl = lib().easy_init();
  if (impl_->curl == nullptr) std::abort();  // out of memory: nothing sensible to return
}

RegistryClient::~RegistryClient() {
  if (impl_->curl != nullptr) lib().easy_cleanup(impl_->curl);
}

const std::string& RegistryClient::base_url() const { return impl_->base_url; }

Result<FetchedManifest> RegistryClient::get_manifest(std::string_view ref) {
  std::string url = impl_->base_url + "/v2/" + impl_->repository + "/manifests/" + std::string(ref);
  std::vector<std::string> headers = {
      "Accept: " + std::string(kOciIndex) + ", " + std::string(kOciManifest) + ", " +
      std::string(kDockerManifestList) + ", " + std::string(kDockerManifest)};
  Response r;
  Status s = impl_->get(url, headers, r, nullptr);
  if (!s.ok()) return s;
  if (r.code != 200) return http_error(r.code, r.body, "manifest " + std::string(ref));
  FetchedManifest m;
  m.body = std::move(r.body);
  m.digest = sha256_digest(m.body);
  std::string want = is_valid_digest(ref) ? std::string(ref) : "";
  if (want.empty()) {
    auto h = r.headers.find("docker-content-digest");
    if (h != r.headers.end() && is_valid_digest(h->second)) want = h->second;
  }
  if (!want.empty() && want != m.digest) {
    return Status::Invalid("digest mismatch for manifest " + want + ": the content received has " +
                           m.digest);
  }
  std::string ct;
  if (auto h = r.headers.find("content-type"); h != r.headers.end()) {
    ct = std::string(trim_space(h->second.substr(0, h->second.find(';'))));
  }
  m.media_type =
      is_index_media_type(ct) || is_manifest_media_type(ct) ? ct : detect_media_type(m.body);
  return m;
}

Status RegistryClient::get_blob(const Descriptor& d, const std::string& path,
                                const BlobProgressFn& progress) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("create", path, errno);
  Sha256 hash;
  Response r;
  r.fd = fd;
  r.hash = &hash;
  r.limit = d.size;
  r.progress = &progress;
  r.digest = &d.digest;
  r.total = d.size;
  std::string url = impl_->base_url + "/v2/" + impl_->repository + "/blobs/" + d.digest;
  Status s = impl_->get(url, {}, r, [&] {
    // A retried request starts the file over.
    ::ftruncate(fd, 0);
    ::lseek(fd, 0, SEEK_SET);
  });
  if (s.ok() && r.code != 200) s = http_error(r.code, r.body, "blob " + d.digest);
  if (s.ok() && ::fsync(fd) != 0) s = errno_status("fsync", path, errno);
  ::close(fd);
  if (!s.ok()) return s;
  if (d.size >= 0 && r.written != d.size) {
    return Status::Invalid("size mismatch for " + d.digest + ": expected " +
                           std::to_string(d.size) + " bytes, received " +
                           std::to_string(r.written));
  }
  std::string got = hash.digest();
  if (got != d.digest) {
    return Status::Invalid("digest mismatch for " + d.digest + ": the content received has " + got);
  }
  if (progress) progress(d.digest, r.written, d.size);
  return Status::Ok();
}

}  // namespace skiff::agent::images
