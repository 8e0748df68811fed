#include "agent/images/reference.h"

#include <arpa/inet.h>

#include <vector>

#include "agent/images/digest.h"

namespace skiff::agent::images {
namespace {

constexpr std::string_view kDefaultDomain = "docker.io";

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
bool valid_path_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (is_lower_alnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !is_lower_alnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
    i = j;
  }
  return true;
}

bool valid_domain(std::string_view d) {
  if (d.empty()) return false;
  std::string_view host = d;
  std::string_view port;
  if (d.front() == '[') {
    size_t close = d.find(']');
    if (close == std::string_view::npos) return false;
    host = d.substr(1, close - 1);
    std::string_view rest = d.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
    in6_addr a6;
    if (inet_pton(AF_INET6, std::string(host).c_str(), &a6) != 1) return false;
  } else {
    if (size_t colon = d.rfind(':'); colon != std::string_view::npos) {
      host = d.substr(0, colon);
      port = d.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (host.empty()) return false;
    for (char c : host) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.';
      if (!ok) return false;
    }
    if (host.front() == '-' || host.back() == '-' || host.front() == '.') return false;
  }
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (!word(t.front())) return false;
  for (char c : t) {
    if (!word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

Status invalid(std::string_view ref, std::string_view why = {}) {
  std::string m = "invalid reference format";
  if (!why.empty()) m += ": " + std::string(why);
  return Status::Invalid(m + " (\"" + std::string(ref) + "\")");
}

}  // namespace

std::string ImageReference::name() const { return domain + "/" + repository; }

std::string ImageReference::tagged() const { return tag.empty() ? "" : name() + ":" + tag; }

std::string ImageReference::digested() const { return digest.empty() ? "" : name() + "@" + digest; }

std::string ImageReference::string() const {
  std::string s = name();
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

Result<ImageReference> parse_reference(std::string_view input) {
  if (input.empty()) return invalid(input);
  ImageReference r;
  std::string_view rest = input;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    r.digest = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (!is_valid_digest(r.digest)) {
      return invalid(input, "digest must be sha256: followed by 64 lowercase hex digits");
    }
  }
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    r.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (!valid_tag(r.tag)) return invalid(input);
  }
  if (rest.empty() || rest.size() > 255) return invalid(input);
  size_t first = rest.find('/');
  std::string_view path = rest;
  if (first != std::string_view::npos) {
    std::string_view head = rest.substr(0, first);
    bool lower = true;
    for (char c : head) lower = lower && !(c >= 'A' && c <= 'Z');
    if (head.find_first_of(".:") != std::string_view::npos || head == "localhost" || !lower) {
      if (!valid_domain(head)) return invalid(input);
      r.domain = std::string(head);
      path = rest.substr(first + 1);
    }
  }
  if (r.domain.empty()) r.domain = std::string(kDefaultDomain);
  if (r.domain == "index.docker.io") r.domain = std::string(kDefaultDomain);
  std::vector<std::string_view> comps;
  size_t start = 0;
  while (true) {
    size_t end = path.find('/', start);
    comps.push_back(path.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  for (std::string_view c : comps) {
    if (!valid_path_component(c)) {
      for (char ch : c) {
        if (ch >= 'A' && ch <= 'Z') return invalid(input, "repository name must be lowercase");
      }
      return invalid(input);
    }
  }
  r.repository = std::string(path);
  if (r.domain == kDefaultDomain && comps.size() == 1) r.repository = "library/" + r.repository;
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  return r;
}

bool is_loopback_registry(std::string_view d) {
  std::string host(d);
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    host = host.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  } else if (size_t colon = host.rfind(':');
             colon != std::string::npos && host.find(':') == colon) {
    host = host.substr(0, colon);
  }
  if (host == "localhost") return true;
  in_addr a4;
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6;
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

std::string registry_api_host(std::string_view domain) {
  if (domain == kDefaultDomain) return "registry-1.docker.io";
  return std::string(domain);
}

}  // namespace skiff::agent::images
