// Content digests ("sha256:<64 hex>") as the OCI image spec defines them.
//
// Sha256 is not thread-safe (one per stream); the free functions are pure and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace skiff::agent::images {

// Incremental SHA-256 over a byte stream.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // "sha256:<hex>" of everything passed to update(). Call once.
  std::string digest();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// "sha256:<hex>" of `bytes`.
std::string sha256_digest(std::string_view bytes);

// True for "sha256:" followed by exactly 64 lowercase hex digits; the only algorithm the
// store accepts (as containerd, by default).
bool is_valid_digest(std::string_view digest);

// The 64 hex digits of a valid digest. REQUIRES: is_valid_digest(digest).
std::string_view digest_hex(std::string_view digest);

}  // namespace skiff::agent::images
