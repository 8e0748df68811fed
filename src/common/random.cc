#include "common/random.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace skiff {
namespace {

constexpr char kHex[] = "0123456789abcdef";

[[noreturn]] void die(const char* what) {
  // No randomness means no safe UIDs or tokens; there is nothing sensible to
  // fall back to.
  std::fprintf(stderr, "skiff: fatal: cannot read random bytes: %s (errno %d)\n", what, errno);
  std::abort();
}

// Used only on kernels without getrandom(2) (before Linux 3.17).
void fill_from_urandom(unsigned char* p, size_t n) {
  const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open /dev/urandom");
  while (n > 0) {
    const ssize_t got = ::read(fd, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) die("read /dev/urandom");
    p += got;
    n -= static_cast<size_t>(got);
  }
  ::close(fd);
}

}  // namespace

void fill_random(void* out, size_t n) {
  auto* p = static_cast<unsigned char*>(out);
  while (n > 0) {
    const ssize_t got = ::getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOSYS) {
        fill_from_urandom(p, n);
        return;
      }
      die("getrandom");
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  fill_random(out.data(), n);
  return out;
}

uint64_t random_below(uint64_t bound) {
  if (bound == 0) return 0;
  // Rejection sampling: values in the incomplete last block of `bound` would
  // bias the result.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  for (;;) {
    uint64_t v;
    fill_random(&v, sizeof(v));
    if (v < limit) return v % bound;
  }
}

std::string new_uuid() {
  unsigned char b[16];
  fill_random(b, sizeof(b));
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 0x0F];
  }
  return out;
}

std::string random_string(size_t n, std::string_view alphabet) {
  const size_t size = alphabet.size();
  if (size == 0) return {};
  std::string out;
  out.reserve(n);
  if (size <= 256) {
    // One byte per character, rejecting bytes above the largest multiple of the
    // alphabet size.
    const unsigned limit = 256 - 256 % static_cast<unsigned>(size);
    unsigned char buf[64];
    while (out.size() < n) {
      fill_random(buf, sizeof(buf));
      for (const unsigned char c : buf) {
        if (c < limit && out.size() < n) out += alphabet[c % size];
      }
    }
    return out;
  }
  while (out.size() < n) out += alphabet[random_below(size)];
  return out;
}

std::string random_hex(size_t n) {
  const std::string bytes = random_bytes(n);
  std::string out;
  out.reserve(2 * n);
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    out += kHex[c >> 4];
    out += kHex[c & 0x0F];
  }
  return out;
}

std::string generate_name_suffix() { return random_string(5, kNameSuffixAlphabet); }

std::string generate_name(std::string_view base) {
  constexpr size_t kMaxGeneratedNameLength = 63 - 5;
  if (base.size() > kMaxGeneratedNameLength) base = base.substr(0, kMaxGeneratedNameLength);
  return std::string(base) + generate_name_suffix();
}

}  // namespace skiff
