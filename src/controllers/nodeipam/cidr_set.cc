#include "controllers/nodeipam/cidr_set.h"

#include <charconv>
#include <cstdio>

namespace skiff::controllers::nodeipam {
namespace {

std::optional<uint32_t> parse_ipv4(std::string_view text) {
  uint32_t ip = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (p == end || *p != '.') return std::nullopt;
      ++p;
    }
    unsigned value = 0;
    auto [next, ec] = std::from_chars(p, end, value);
    if (ec != std::errc() || next == p || next - p > 3 || value > 255) return std::nullopt;
    p = next;
    ip = (ip << 8) | value;
  }
  if (p != end) return std::nullopt;
  return ip;
}

}  // namespace

Result<Ipv4Cidr> Ipv4Cidr::parse(std::string_view text) {
  auto bad = [&] { return Status::BadRequest("invalid CIDR address: " + std::string(text)); };
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return bad();
  auto ip = parse_ipv4(text.substr(0, slash));
  std::string_view bits = text.substr(slash + 1);
  int prefix = -1;
  auto [next, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), prefix);
  if (!ip || bits.empty() || ec != std::errc() || next != bits.data() + bits.size() ||
      prefix < 0 || prefix > 32) {
    return bad();
  }
  Ipv4Cidr c;
  c.prefix = prefix;
  c.base = prefix == 0 ? 0 : static_cast<uint32_t>(*ip & ~((uint64_t{1} << (32 - prefix)) - 1));
  return c;
}

std::string Ipv4Cidr::to_string() const {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u/%d", base >> 24, (base >> 16) & 255,
                (base >> 8) & 255, base & 255, prefix);
  return buf;
}

CidrSet::CidrSet(Ipv4Cidr cluster, int node_mask)
    : cluster_(cluster), node_mask_(node_mask), bits_(size_t{1} << (node_mask - cluster.prefix)) {}

Result<CidrSet> CidrSet::create(const std::string& cluster_cidr, int node_mask) {
  auto cluster = Ipv4Cidr::parse(cluster_cidr);
  if (!cluster.ok()) {
    return Status::BadRequest("cluster CIDR " + cluster_cidr + ": " + cluster.status().message() +
                              " (only IPv4 is supported)");
  }
  if (node_mask < cluster->prefix || node_mask > 32) {
    return Status::BadRequest("node CIDR mask size /" + std::to_string(node_mask) +
                              " does not fit in cluster CIDR " + cluster->to_string());
  }
  if (node_mask - cluster->prefix > kMaxSubnetBits) {
    return Status::BadRequest("cluster CIDR " + cluster->to_string() + " split into /" +
                              std::to_string(node_mask) +
                              " node ranges makes too many of them (at most 2^16)");
  }
  return CidrSet(*cluster, node_mask);
}

std::optional<Ipv4Cidr> CidrSet::allocate() {
  uint32_t n = size();
  for (uint32_t k = 0; k < n; ++k) {
    uint32_t i = (next_ + k) % n;
    if (bits_[i]) continue;
    bits_[i] = true;
    ++used_count_;
    next_ = (i + 1) % n;
    return subnet(i);
  }
  return std::nullopt;
}

std::optional<std::pair<uint32_t, uint32_t>> CidrSet::indices(const Ipv4Cidr& block) const {
  if (block.base < cluster_.base || block.last() > cluster_.last()) return std::nullopt;
  int shift = 32 - node_mask_;
  auto first = static_cast<uint32_t>((uint64_t{block.base} - cluster_.base) >> shift);
  auto last = static_cast<uint32_t>((block.last() - cluster_.base) >> shift);
  return std::make_pair(first, last);
}

bool CidrSet::occupy(uint32_t first, uint32_t last) {
  if (last >= size() || first > last) return false;
  for (uint32_t i = first; i <= last; ++i) {
    if (bits_[i]) return false;
  }
  for (uint32_t i = first; i <= last; ++i) bits_[i] = true;
  used_count_ += last - first + 1;
  return true;
}

void CidrSet::release(uint32_t first, uint32_t last) {
  for (uint32_t i = first; i <= last && i < size(); ++i) {
    if (bits_[i]) {
      bits_[i] = false;
      --used_count_;
    }
  }
}

bool CidrSet::used(uint32_t index) const { return index < size() && bits_[index]; }

Ipv4Cidr CidrSet::subnet(uint32_t index) const {
  Ipv4Cidr c;
  c.prefix = node_mask_;
  c.base = static_cast<uint32_t>(uint64_t{cluster_.base} + (uint64_t{index} << (32 - node_mask_)));
  return c;
}

}  // namespace skiff::controllers::nodeipam
