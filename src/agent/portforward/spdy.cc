#include "agent/portforward/spdy.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

namespace skiff::agent::portforward::spdy {
namespace {

void put32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

uint32_t get32(std::string_view s, size_t at) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(s[at + i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

std::string build_dictionary() {
  // The SPDY/3 draft's dictionary: length-prefixed header names and common values, then a
  // run of status codes, reason phrases, dates and media types without prefixes.
  // clang-format off
  static const char* const kWords[] = {
      "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
      "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
      "cache-control", "connection", "content-base", "content-encoding", "content-language",
      "content-length", "content-location", "content-md5", "content-range", "content-type",
      "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
      "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
      "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
      "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
      "vary", "via", "warning", "www-authenticate", "method", "get", "status", "200 OK",
      "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"};
  // clang-format on
  static const char kTail[] =
      "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504"
      "505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
      "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
      "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
      "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/"
      "xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,"
      "sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
  std::string d;
  for (const char* w : kWords) {
    put32(d, static_cast<uint32_t>(std::strlen(w)));
    d += w;
  }
  d.append(kTail, sizeof(kTail) - 1);
  return d;
}

}  // namespace

std::string_view header_dictionary() {
  static const std::string kDictionary = build_dictionary();
  return kDictionary;
}

std::optional<std::string> header_value(const HeaderBlock& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (n == name) {
      // Several values are joined with NUL; the first one is the value.
      return v.substr(0, v.find('\0'));
    }
  }
  return std::nullopt;
}

std::string serialize_header_block(const HeaderBlock& headers) {
  std::string out;
  put32(out, static_cast<uint32_t>(headers.size()));
  for (const auto& [name, value] : headers) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    put32(out, static_cast<uint32_t>(lower.size()));
    out += lower;
    put32(out, static_cast<uint32_t>(value.size()));
    out += value;
  }
  return out;
}

Result<HeaderBlock> parse_header_block(std::string_view block) {
  if (block.size() < 4) return Status::BadRequest("spdy: truncated header block");
  uint32_t count = get32(block, 0);
  size_t at = 4;
  HeaderBlock headers;
  // Each pair takes at least 8 bytes, which bounds a hostile count.
  if (count > (block.size() - 4) / 8) return Status::BadRequest("spdy: bad header count");
  headers.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    std::string parts[2];
    for (auto& part : parts) {
      if (block.size() - at < 4) return Status::BadRequest("spdy: truncated header block");
      uint32_t len = get32(block, at);
      at += 4;
      if (block.size() - at < len) return Status::BadRequest("spdy: truncated header block");
      part.assign(block.substr(at, len));
      at += len;
    }
    if (parts[0].empty()) return Status::BadRequest("spdy: empty header name");
    std::transform(parts[0].begin(), parts[0].end(), parts[0].begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    headers.emplace_back(std::move(parts[0]), std::move(parts[1]));
  }
  if (at != block.size()) return Status::BadRequest("spdy: trailing bytes after header block");
  return headers;
}

// ---- FrameWriter ----

struct FrameWriter::Deflater {
  z_stream z{};
  bool ok = false;
  Deflater() {
    ok = deflateInit(&z, Z_BEST_COMPRESSION) == Z_OK;
    if (ok) {
      std::string_view dict = header_dictionary();
      ok = deflateSetDictionary(&z, reinterpret_cast<const Bytef*>(dict.data()),
                                static_cast<uInt>(dict.size())) == Z_OK;
    }
  }
  ~Deflater() { deflateEnd(&z); }
};

FrameWriter::FrameWriter() : deflater_(std::make_unique<Deflater>()) {}
FrameWriter::~FrameWriter() = default;

std::string FrameWriter::compress_headers(const HeaderBlock& headers) {
  std::string plain = serialize_header_block(headers);
  std::string out;
  // A broken deflater (allocation failure at construction) cannot produce a valid block;
  // the caller's frame is then rejected by the peer, which ends the session.
  if (!deflater_->ok) return out;
  z_stream& z = deflater_->z;
  z.next_in = reinterpret_cast<Bytef*>(plain.data());
  z.avail_in = static_cast<uInt>(plain.size());
  char chunk[4096];
  do {
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof(chunk);
    int rc = deflate(&z, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
    out.append(chunk, sizeof(chunk) - z.avail_out);
  } while (z.avail_out == 0);
  return out;
}

std::string FrameWriter::control(FrameType type, uint8_t flags, std::string_view payload) {
  std::string out;
  out.reserve(8 + payload.size());
  put32(out, 0x80000000u | static_cast<uint32_t>(kVersion) << 16 | static_cast<uint16_t>(type));
  put32(out, static_cast<uint32_t>(flags) << 24 | static_cast<uint32_t>(payload.size()));
  out += payload;
  return out;
}

std::string FrameWriter::syn_stream(uint32_t stream_id, const HeaderBlock& headers, uint8_t flags,
                                    uint32_t associated_stream_id, uint8_t priority) {
  std::string p;
  put32(p, stream_id & 0x7fffffff);
  put32(p, associated_stream_id & 0x7fffffff);
  p.push_back(static_cast<char>((priority & 0x7) << 5));
  p.push_back(0);  // credential slot
  p += compress_headers(headers);
  return control(FrameType::kSynStream, flags, p);
}

std::string FrameWriter::syn_reply(uint32_t stream_id, const HeaderBlock& headers, uint8_t flags) {
  std::string p;
  put32(p, stream_id & 0x7fffffff);
  p += compress_headers(headers);
  return control(FrameType::kSynReply, flags, p);
}

std::string FrameWriter::headers(uint32_t stream_id, const HeaderBlock& headers, uint8_t flags) {
  std::string p;
  put32(p, stream_id & 0x7fffffff);
  p += compress_headers(headers);
  return control(FrameType::kHeaders, flags, p);
}

std::string FrameWriter::rst_stream(uint32_t stream_id, RstStatus status) {
  std::string p;
  put32(p, stream_id & 0x7fffffff);
  put32(p, static_cast<uint32_t>(status));
  return control(FrameType::kRstStream, 0, p);
}

std::string FrameWriter::settings(const std::vector<Setting>& settings, uint8_t flags) {
  std::string p;
  put32(p, static_cast<uint32_t>(settings.size()));
  for (const Setting& s : settings) {
    put32(p, static_cast<uint32_t>(s.flags) << 24 | (s.id & 0xffffff));
    put32(p, s.value);
  }
  return control(FrameType::kSettings, flags, p);
}

std::string FrameWriter::ping(uint32_t id) {
  std::string p;
  put32(p, id);
  return control(FrameType::kPing, 0, p);
}

std::string FrameWriter::goaway(uint32_t last_good_stream_id, GoAwayStatus status) {
  std::string p;
  put32(p, last_good_stream_id & 0x7fffffff);
  put32(p, static_cast<uint32_t>(status));
  return control(FrameType::kGoAway, 0, p);
}

std::string FrameWriter::window_update(uint32_t stream_id, uint32_t delta) {
  std::string p;
  put32(p, stream_id & 0x7fffffff);
  put32(p, delta & 0x7fffffff);
  return control(FrameType::kWindowUpdate, 0, p);
}

std::string FrameWriter::data(uint32_t stream_id, std::string_view data, uint8_t flags) {
  std::string out;
  out.reserve(8 + data.size());
  put32(out, stream_id & 0x7fffffff);
  put32(out, static_cast<uint32_t>(flags) << 24 | static_cast<uint32_t>(data.size()));
  out += data;
  return out;
}

// ---- FrameReader ----

struct FrameReader::Inflater {
  z_stream z{};
  bool ok = false;
  Inflater() { ok = inflateInit(&z) == Z_OK; }
  ~Inflater() { inflateEnd(&z); }
};

FrameReader::FrameReader(size_t max_header_bytes)
    : max_header_bytes_(max_header_bytes), inflater_(std::make_unique<Inflater>()) {}
FrameReader::~FrameReader() = default;

void FrameReader::feed(std::string_view bytes) {
  // Drop consumed bytes before growing, so the buffer stays about one frame long.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ >= 64 * 1024)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_ += bytes;
}

Result<HeaderBlock> FrameReader::decompress_headers(std::string_view compressed) {
  if (!inflater_->ok) return Status::Internal("spdy: zlib inflater unavailable");
  z_stream& z = inflater_->z;
  std::string plain;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  z.avail_in = static_cast<uInt>(compressed.size());
  char chunk[4096];
  while (true) {
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof(chunk);
    int rc = inflate(&z, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      std::string_view dict = header_dictionary();
      if (inflateSetDictionary(&z, reinterpret_cast<const Bytef*>(dict.data()),
                               static_cast<uInt>(dict.size())) != Z_OK) {
        return Status::BadRequest("spdy: header block uses an unknown dictionary");
      }
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) {
      return Status::BadRequest(std::string("spdy: bad compressed header block: ") +
                                (z.msg ? z.msg : "zlib error"));
    }
    plain.append(chunk, sizeof(chunk) - z.avail_out);
    if (plain.size() > max_header_bytes_) {
      return Status::BadRequest("spdy: header block too large");
    }
    if (z.avail_out != 0 || rc == Z_STREAM_END) break;
  }
  if (z.avail_in != 0) return Status::BadRequest("spdy: header block not fully consumed");
  return parse_header_block(plain);
}

Result<std::optional<Frame>> FrameReader::next() {
  while (true) {
    std::string_view in(buf_.data() + pos_, buf_.size() - pos_);
    if (in.size() < 8) return std::optional<Frame>();
    uint32_t w0 = get32(in, 0);
    uint32_t w1 = get32(in, 4);
    uint8_t flags = static_cast<uint8_t>(w1 >> 24);
    uint32_t length = w1 & 0xffffff;
    if (in.size() - 8 < length) return std::optional<Frame>();
    std::string_view p = in.substr(8, length);
    pos_ += 8 + length;

    Frame f;
    f.flags = flags;
    if ((w0 & 0x80000000u) == 0) {
      f.type = FrameType::kData;
      f.stream_id = w0 & 0x7fffffff;
      if (f.stream_id == 0) return Status::BadRequest("spdy: data frame on stream 0");
      f.data.assign(p);
      return std::optional<Frame>(std::move(f));
    }
    uint16_t version = static_cast<uint16_t>((w0 >> 16) & 0x7fff);
    if (version != kVersion) {
      return Status::BadRequest("spdy: unsupported version " + std::to_string(version));
    }
    uint16_t type = static_cast<uint16_t>(w0 & 0xffff);
    f.type = static_cast<FrameType>(type);
    auto need = [&](size_t n) -> Status {
      if (p.size() < n) {
        return Status::BadRequest("spdy: control frame type " + std::to_string(type) +
                                  " too short");
      }
      return Status::Ok();
    };
    switch (f.type) {
      case FrameType::kSynStream: {
        if (Status s = need(10); !s.ok()) return s;
        f.stream_id = get32(p, 0) & 0x7fffffff;
        f.associated_stream_id = get32(p, 4) & 0x7fffffff;
        f.priority = static_cast<uint8_t>(static_cast<unsigned char>(p[8]) >> 5);
        auto headers = decompress_headers(p.substr(10));
        if (!headers.ok()) return headers.status();
        f.headers = std::move(*headers);
        if (f.stream_id == 0) return Status::BadRequest("spdy: SYN_STREAM for stream 0");
        return std::optional<Frame>(std::move(f));
      }
      case FrameType::kSynReply:
      case FrameType::kHeaders: {
        if (Status s = need(4); !s.ok()) return s;
        f.stream_id = get32(p, 0) & 0x7fffffff;
        auto headers = decompress_headers(p.substr(4));
        if (!headers.ok()) return headers.status();
        f.headers = std::move(*headers);
        return std::optional<Frame>(std::move(f));
      }
      case FrameType::kRstStream:
        if (Status s = need(8); !s.ok()) return s;
        f.stream_id = get32(p, 0) & 0x7fffffff;
        f.status = get32(p, 4);
        return std::optional<Frame>(std::move(f));
      case FrameType::kSettings: {
        if (Status s = need(4); !s.ok()) return s;
        uint32_t n = get32(p, 0);
        if (n > (p.size() - 4) / 8) return Status::BadRequest("spdy: truncated SETTINGS");
        for (uint32_t i = 0; i < n; ++i) {
          uint32_t id = get32(p, 4 + 8 * i);
          f.settings.push_back(
              Setting{static_cast<uint8_t>(id >> 24), id & 0xffffff, get32(p, 8 + 8 * i)});
        }
        return std::optional<Frame>(std::move(f));
      }
      case FrameType::kPing:
        if (Status s = need(4); !s.ok()) return s;
        f.ping_id = get32(p, 0);
        return std::optional<Frame>(std::move(f));
      case FrameType::kGoAway:
        if (Status s = need(8); !s.ok()) return s;
        f.stream_id = get32(p, 0) & 0x7fffffff;
        f.status = get32(p, 4);
        return std::optional<Frame>(std::move(f));
      case FrameType::kWindowUpdate:
        if (Status s = need(8); !s.ok()) return s;
        f.stream_id = get32(p, 0) & 0x7fffffff;
        f.delta_window = get32(p, 4) & 0x7fffffff;
        return std::optional<Frame>(std::move(f));
      default:
        // Unknown control frames (NOOP, CREDENTIAL, ...) are ignored, as SPDY requires.
        continue;
    }
  }
}

}  // namespace skiff::agent::portforward::spdy
