// SPDY/3.1 framing (the subset Kubernetes streaming uses): frame encoding and decoding and
// the zlib-compressed name/value header blocks.
//
// Wire format (all integers big-endian):
//   control frame: 1 | version(15) | type(16) | flags(8) | length(24) | payload
//   data frame:    0 | stream-id(31)          | flags(8) | length(24) | payload
// Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are `count(32) {len(32) name len(32) value}*`,
// compressed with zlib primed with the SPDY/3 dictionary; each direction of a session keeps
// one compression context for its whole life, and each block ends with a sync flush. Names
// are lowercase; several values of one name are joined with NUL.
//
// FrameWriter and FrameReader are not thread-safe; a session owns one of each.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace skiff::agent::portforward::spdy {

inline constexpr uint16_t kVersion = 3;
// Both the initial per-stream window and the initial session window of SPDY/3.1.
inline constexpr int64_t kDefaultWindow = 64 * 1024;
// The largest payload a frame can carry (24-bit length).
inline constexpr uint32_t kMaxFrameLength = (1u << 24) - 1;

enum class FrameType : uint16_t {
  kData = 0,  // not a wire value: data frames carry no type
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

// Flags.
inline constexpr uint8_t kFlagFin = 0x01;             // data, SYN_STREAM, SYN_REPLY, HEADERS
inline constexpr uint8_t kFlagUnidirectional = 0x02;  // SYN_STREAM

// RST_STREAM status codes.
enum class RstStatus : uint32_t {
  kProtocolError = 1,
  kInvalidStream = 2,
  kRefusedStream = 3,
  kUnsupportedVersion = 4,
  kCancel = 5,
  kInternalError = 6,
  kFlowControlError = 7,
  kStreamInUse = 8,
  kStreamAlreadyClosed = 9,
  kFrameTooLarge = 11,
};

// GOAWAY status codes.
enum class GoAwayStatus : uint32_t { kOk = 0, kProtocolError = 1, kInternalError = 2 };

// SETTINGS ids (SPDY/3).
inline constexpr uint32_t kSettingsMaxConcurrentStreams = 4;
inline constexpr uint32_t kSettingsInitialWindowSize = 7;

struct Setting {
  uint8_t flags = 0;
  uint32_t id = 0;  // 24 bits
  uint32_t value = 0;
};

// Name/value pairs in wire order; names lowercase.
using HeaderBlock = std::vector<std::pair<std::string, std::string>>;

// The first value of `name` in `headers`, or nullopt.
std::optional<std::string> header_value(const HeaderBlock& headers, std::string_view name);

// One decoded frame. Which fields are meaningful depends on `type`:
//   kData:         stream_id, flags, data
//   kSynStream:    stream_id, associated_stream_id, priority, flags, headers
//   kSynReply, kHeaders: stream_id, flags, headers
//   kRstStream:    stream_id, status
//   kSettings:     flags, settings
//   kPing:         ping_id
//   kGoAway:       stream_id (last good stream id), status
//   kWindowUpdate: stream_id (0 = the session), delta_window
struct Frame {
  FrameType type = FrameType::kData;
  uint8_t flags = 0;
  uint32_t stream_id = 0;
  uint32_t associated_stream_id = 0;
  uint8_t priority = 0;
  HeaderBlock headers;
  uint32_t status = 0;
  uint32_t ping_id = 0;
  uint32_t delta_window = 0;
  std::vector<Setting> settings;
  std::string data;
};

// The SPDY/3 header-compression dictionary (1423 bytes).
std::string_view header_dictionary();

// Encodes frames, compressing header blocks with one zlib context for its whole life.
class FrameWriter {
 public:
  FrameWriter();
  ~FrameWriter();
  FrameWriter(const FrameWriter&) = delete;
  FrameWriter& operator=(const FrameWriter&) = delete;

  // Each returns the complete encoded frame. Stream ids are 31-bit; larger values are masked.
  std::string syn_stream(uint32_t stream_id, const HeaderBlock& headers, uint8_t flags = 0,
                         uint32_t associated_stream_id = 0, uint8_t priority = 0);
  std::string syn_reply(uint32_t stream_id, const HeaderBlock& headers, uint8_t flags = 0);
  std::string headers(uint32_t stream_id, const HeaderBlock& headers, uint8_t flags = 0);
  std::string rst_stream(uint32_t stream_id, RstStatus status);
  std::string settings(const std::vector<Setting>& settings, uint8_t flags = 0);
  std::string ping(uint32_t id);
  std::string goaway(uint32_t last_good_stream_id, GoAwayStatus status);
  std::string window_update(uint32_t stream_id, uint32_t delta);
  // REQUIRES: data.size() <= kMaxFrameLength.
  std::string data(uint32_t stream_id, std::string_view data, uint8_t flags = 0);

  // The compressed form of a header block (advances the compression context).
  std::string compress_headers(const HeaderBlock& headers);

 private:
  std::string control(FrameType type, uint8_t flags, std::string_view payload);
  struct Deflater;
  std::unique_ptr<Deflater> deflater_;
};

// Decodes frames from a byte stream fed in arbitrary pieces.
class FrameReader {
 public:
  // Header blocks that inflate to more than `max_header_bytes` are rejected.
  explicit FrameReader(size_t max_header_bytes = 256 * 1024);
  ~FrameReader();
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  // Appends received bytes.
  void feed(std::string_view bytes);

  // The next complete frame, nullopt when more bytes are needed. BadRequest for bytes that
  // are not SPDY/3 (wrong version, a malformed frame or header block); the stream cannot
  // be resumed after an error. Control frames of unknown types are skipped.
  Result<std::optional<Frame>> next();

  // Bytes fed and not yet decoded.
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  Result<HeaderBlock> decompress_headers(std::string_view compressed);
  std::string buf_;
  size_t pos_ = 0;
  size_t max_header_bytes_;
  struct Inflater;
  std::unique_ptr<Inflater> inflater_;
};

// Parses an uncompressed header block.
Result<HeaderBlock> parse_header_block(std::string_view block);
// Serializes an uncompressed header block.
std::string serialize_header_block(const HeaderBlock& headers);

}  // namespace skiff::agent::portforward::spdy
