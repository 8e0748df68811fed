#include "agent/portforward/spdy.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <vector>

namespace skiff::agent::portforward::spdy {
namespace {

// Feeds `bytes` one byte at a time and returns every frame decoded.
std::vector<Frame> decode_bytewise(FrameReader& reader, const std::string& bytes) {
  std::vector<Frame> frames;
  for (char c : bytes) {
    reader.feed(std::string_view(&c, 1));
    while (true) {
      auto f = reader.next();
      EXPECT_TRUE(f.ok()) << f.status().to_string();
      if (!f.ok() || !f->has_value()) break;
      frames.push_back(std::move(**f));
    }
  }
  return frames;
}

TEST(SpdyDictionary, IsTheSpdy3DictionaryByIdAndSize) {
  std::string_view d = header_dictionary();
  EXPECT_EQ(d.size(), 1423u);
  // zlib identifies a preset dictionary by its Adler-32; SPDY/3's is 0xe3c6a7c2.
  uLong id = adler32(adler32(0, nullptr, 0), reinterpret_cast<const Bytef*>(d.data()),
                     static_cast<uInt>(d.size()));
  EXPECT_EQ(id, 0xe3c6a7c2u);
  EXPECT_EQ(d.substr(0, 11), std::string_view("\0\0\0\7options", 11));
  EXPECT_EQ(d.substr(d.size() - 6), "enq=0.");
}

TEST(SpdyHeaders, CompressedBlockNamesTheSpdyDictionary) {
  FrameWriter w;
  std::string block = w.compress_headers({{"streamtype", "data"}});
  ASSERT_GE(block.size(), 6u);
  // zlib header with FDICT set, then the dictionary id.
  EXPECT_EQ(static_cast<unsigned char>(block[1]) & 0x20, 0x20);
  EXPECT_EQ(block.substr(2, 4), std::string("\xe3\xc6\xa7\xc2", 4));
}

TEST(SpdyHeaders, BlocksShareOneCompressionContextPerDirection) {
  FrameWriter w;
  FrameReader r;
  HeaderBlock h{{"streamtype", "error"}, {"port", "8080"}, {"requestid", "0"}};
  std::string first = w.syn_stream(1, h);
  std::string second = w.syn_stream(3, h);
  // The second block refers back to the first through the shared window.
  EXPECT_LT(second.size(), first.size());
  auto frames = decode_bytewise(r, first + second);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].headers, h);
  EXPECT_EQ(frames[1].headers, h);
  EXPECT_EQ(frames[1].stream_id, 3u);

  // A reader that missed the first block cannot decode the second one.
  FrameReader fresh;
  fresh.feed(second);
  EXPECT_FALSE(fresh.next().ok());
}

TEST(SpdyHeaders, UppercaseNamesAreLoweredAndMultiValuesKept) {
  FrameWriter w;
  FrameReader r;
  auto frames = decode_bytewise(r, w.syn_reply(5, {{"X-Thing", std::string("a\0b", 3)}}));
  ASSERT_EQ(frames.size(), 1u);
  ASSERT_EQ(frames[0].headers.size(), 1u);
  EXPECT_EQ(frames[0].headers[0].first, "x-thing");
  EXPECT_EQ(header_value(frames[0].headers, "x-thing"), "a");
  EXPECT_EQ(header_value(frames[0].headers, "missing"), std::nullopt);
}

TEST(SpdyFrames, EveryFrameTypeRoundTrips) {
  FrameWriter w;
  FrameReader r;
  std::string bytes;
  bytes += w.syn_stream(7, {{"port", "80"}}, kFlagFin, 5, 3);
  bytes += w.syn_reply(7, {}, kFlagFin);
  bytes += w.headers(7, {{"a", "b"}});
  bytes += w.rst_stream(7, RstStatus::kCancel);
  bytes += w.settings({{0, kSettingsInitialWindowSize, 1 << 20}, {1, 4, 100}});
  bytes += w.ping(9);
  bytes += w.goaway(7, GoAwayStatus::kProtocolError);
  bytes += w.window_update(7, 12345);
  bytes += w.data(7, "hello", kFlagFin);
  bytes += w.data(9, "");
  auto f = decode_bytewise(r, bytes);
  ASSERT_EQ(f.size(), 10u);
  EXPECT_EQ(f[0].type, FrameType::kSynStream);
  EXPECT_EQ(f[0].stream_id, 7u);
  EXPECT_EQ(f[0].associated_stream_id, 5u);
  EXPECT_EQ(f[0].priority, 3);
  EXPECT_EQ(f[0].flags, kFlagFin);
  EXPECT_EQ(header_value(f[0].headers, "port"), "80");
  EXPECT_EQ(f[1].type, FrameType::kSynReply);
  EXPECT_TRUE(f[1].headers.empty());
  EXPECT_EQ(f[1].flags, kFlagFin);
  EXPECT_EQ(f[2].type, FrameType::kHeaders);
  EXPECT_EQ(header_value(f[2].headers, "a"), "b");
  EXPECT_EQ(f[3].type, FrameType::kRstStream);
  EXPECT_EQ(f[3].status, static_cast<uint32_t>(RstStatus::kCancel));
  EXPECT_EQ(f[4].type, FrameType::kSettings);
  ASSERT_EQ(f[4].settings.size(), 2u);
  EXPECT_EQ(f[4].settings[0].id, kSettingsInitialWindowSize);
  EXPECT_EQ(f[4].settings[0].value, 1u << 20);
  EXPECT_EQ(f[4].settings[1].flags, 1);
  EXPECT_EQ(f[5].type, FrameType::kPing);
  EXPECT_EQ(f[5].ping_id, 9u);
  EXPECT_EQ(f[6].type, FrameType::kGoAway);
  EXPECT_EQ(f[6].stream_id, 7u);
  EXPECT_EQ(f[6].status, static_cast<uint32_t>(GoAwayStatus::kProtocolError));
  EXPECT_EQ(f[7].type, FrameType::kWindowUpdate);
  EXPECT_EQ(f[7].delta_window, 12345u);
  EXPECT_EQ(f[8].type, FrameType::kData);
  EXPECT_EQ(f[8].data, "hello");
  EXPECT_EQ(f[8].flags, kFlagFin);
  EXPECT_EQ(f[9].data, "");
  EXPECT_EQ(f[9].stream_id, 9u);
}

TEST(SpdyFrames, ControlFrameHeaderLayoutIsSpdy3) {
  FrameWriter w;
  std::string ping = w.ping(1);
  EXPECT_EQ(ping, std::string("\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12));
  std::string data = w.data(3, "ab", kFlagFin);
  EXPECT_EQ(data, std::string("\x00\x00\x00\x03\x01\x00\x00\x02"
                              "ab",
                              10));
  std::string wu = w.window_update(1, 65536);
  EXPECT_EQ(wu,
            std::string("\x80\x03\x00\x09\x00\x00\x00\x08\x00\x00\x00\x01\x00\x01\x00\x00", 16));
}

TEST(SpdyFrames, PartialFramesWaitForMoreBytes) {
  FrameWriter w;
  FrameReader r;
  std::string bytes = w.data(1, std::string(100000, 'x'));
  r.feed(std::string_view(bytes).substr(0, 50000));
  auto f = r.next();
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->has_value());
  r.feed(std::string_view(bytes).substr(50000));
  f = r.next();
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->has_value());
  EXPECT_EQ((*f)->data.size(), 100000u);
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(SpdyFrames, UnknownControlFramesAreSkipped) {
  FrameWriter w;
  FrameReader r;
  // A NOOP (type 5) of SPDY/2 days, with a 3-byte payload.
  std::string noop("\x80\x03\x00\x05\x00\x00\x00\x03xyz", 11);
  r.feed(noop + w.ping(3));
  auto f = r.next();
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->has_value());
  EXPECT_EQ((*f)->type, FrameType::kPing);
}

TEST(SpdyFrames, WrongVersionIsRejected) {
  FrameReader r;
  r.feed(std::string("\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12));
  auto f = r.next();
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kBadRequest);
}

TEST(SpdyFrames, ShortControlFramesAreRejected) {
  FrameReader r;
  r.feed(std::string("\x80\x03\x00\x03\x00\x00\x00\x02\x00\x01", 10));  // RST_STREAM, 2 bytes
  EXPECT_FALSE(r.next().ok());
}

TEST(SpdyFrames, GarbageHeaderBlockIsRejected) {
  FrameReader r;
  std::string p("\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
  p += "not zlib at all";
  std::string frame("\x80\x03\x00\x01", 4);
  frame.push_back(0);
  frame.push_back(0);
  frame.push_back(0);
  frame.push_back(static_cast<char>(p.size()));
  r.feed(frame + p);
  EXPECT_FALSE(r.next().ok());
}

TEST(SpdyFrames, OversizedHeaderBlockIsRejected) {
  FrameWriter w;
  FrameReader r(/*max_header_bytes=*/1024);
  r.feed(w.syn_stream(1, {{"big", std::string(4096, 'a')}}));
  EXPECT_FALSE(r.next().ok());
}

TEST(SpdyHeaderBlock, TruncatedAndHostileCountsAreRejected) {
  EXPECT_FALSE(parse_header_block(std::string("\x00\x00", 2)).ok());
  EXPECT_FALSE(parse_header_block(std::string("\xff\xff\xff\xff", 4)).ok());
  std::string one = serialize_header_block({{"a", "b"}});
  EXPECT_TRUE(parse_header_block(one).ok());
  EXPECT_FALSE(parse_header_block(one.substr(0, one.size() - 1)).ok());
  EXPECT_FALSE(parse_header_block(one + "x").ok());
}

}  // namespace
}  // namespace skiff::agent::portforward::spdy
