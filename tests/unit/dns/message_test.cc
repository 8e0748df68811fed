#include "dns/message.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace skiff::dns {
namespace {

std::string query_bytes(uint16_t id, const std::string& name, uint16_t type) {
  std::string out;
  auto u16 = [&](uint16_t v) {
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v & 0xFF));
  };
  u16(id);
  u16(0x0100);  // RD
  u16(1);
  u16(0);
  u16(0);
  u16(0);
  for (const auto& l : name_from_text(name)) {
    out.push_back(static_cast<char>(l.size()));
    out += l;
  }
  out.push_back(0);
  u16(type);
  u16(kClassIN);
  return out;
}

TEST(Names, TextRoundTrip) {
  EXPECT_EQ(name_from_text("web.default.svc.cluster.local."),
            (Name{"web", "default", "svc", "cluster", "local"}));
  EXPECT_EQ(name_from_text("."), Name{});
  EXPECT_EQ(name_to_text(Name{"a", "b"}), "a.b.");
  EXPECT_EQ(name_to_text(Name{}), ".");
  EXPECT_EQ(lookup_key(Name{"WeB", "Default"}), "web.default");
}

TEST(ParseQuery, ReadsQuestionAndEdns) {
  std::string q = query_bytes(0x1234, "Web.default.svc.cluster.local", kTypeA);
  // Additional: an OPT record with a 4096-byte payload and DO set.
  q[11] = 1;
  q += std::string("\x00\x00\x29\x10\x00\x00\x00\x80\x00\x00\x00", 11);
  Query parsed;
  ASSERT_EQ(parse_query(q, &parsed), ParseOutcome::kOk);
  EXPECT_EQ(parsed.header.id, 0x1234);
  EXPECT_TRUE(parsed.header.rd);
  ASSERT_EQ(parsed.questions.size(), 1u);
  EXPECT_EQ(parsed.questions[0].name[0], "Web");
  EXPECT_EQ(parsed.questions[0].type, kTypeA);
  EXPECT_TRUE(parsed.edns.present);
  EXPECT_EQ(parsed.edns.udp_size, 4096);
  EXPECT_TRUE(parsed.edns.dnssec_ok);
}

TEST(ParseQuery, RejectsMalformedInput) {
  Query parsed;
  EXPECT_EQ(parse_query("", &parsed), ParseOutcome::kDrop);
  EXPECT_EQ(parse_query(std::string(11, '\0'), &parsed), ParseOutcome::kDrop);
  std::string q = query_bytes(7, "a.b", kTypeA);
  // A response is never answered.
  std::string response = q;
  response[2] = static_cast<char>(0x81);
  EXPECT_EQ(parse_query(response, &parsed), ParseOutcome::kDrop);
  // Cut inside the question.
  EXPECT_EQ(parse_query(q.substr(0, q.size() - 3), &parsed), ParseOutcome::kFormatError);
  EXPECT_EQ(parsed.header.id, 7);
  // A compression pointer to itself (a loop) and one pointing forward.
  std::string loop = q.substr(0, 12) + std::string("\xC0\x0C\x00\x01\x00\x01", 6);
  EXPECT_EQ(parse_query(loop, &parsed), ParseOutcome::kFormatError);
  std::string forward = q.substr(0, 12) + std::string("\xC0\x20\x00\x01\x00\x01", 6);
  EXPECT_EQ(parse_query(forward, &parsed), ParseOutcome::kFormatError);
  // A label longer than 63 (the 0x40 label type).
  std::string long_label = q.substr(0, 12) + std::string("\x40", 1) + std::string(64, 'a') +
                           std::string("\x00\x00\x01\x00\x01", 5);
  EXPECT_EQ(parse_query(long_label, &parsed), ParseOutcome::kFormatError);
  // A name over 255 octets.
  std::string long_name = q.substr(0, 12);
  for (int i = 0; i < 5; ++i) long_name += std::string("\x3F", 1) + std::string(63, 'a');
  long_name += std::string("\x00\x00\x01\x00\x01", 5);
  EXPECT_EQ(parse_query(long_name, &parsed), ParseOutcome::kFormatError);
  // Two OPT records.
  std::string two_opts = q;
  two_opts[11] = 2;
  two_opts += std::string("\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00", 11);
  two_opts += std::string("\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00", 11);
  EXPECT_EQ(parse_query(two_opts, &parsed), ParseOutcome::kFormatError);
  // Claimed records that are not there.
  std::string missing = q;
  missing[7] = 3;
  EXPECT_EQ(parse_query(missing, &parsed), ParseOutcome::kFormatError);
}

TEST(ParseQuery, SurvivesRandomBytes) {
  std::mt19937 rng(42);
  Query parsed;
  for (int i = 0; i < 5000; ++i) {
    std::string junk(rng() % 300, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    if (junk.size() > 2) junk[2] = static_cast<char>(junk[2] & 0x7F);  // a query, mostly
    parse_query(junk, &parsed);
    // Also mutations of a valid query.
    std::string q = query_bytes(1, "web.default.svc.cluster.local", kTypeSRV);
    q[rng() % q.size()] = static_cast<char>(rng());
    parse_query(q, &parsed);
  }
}

TEST(Encode, CompressesRepeatedNames) {
  Response r;
  r.header.id = 9;
  r.questions.push_back({name_from_text("web.default.svc.cluster.local"), kTypeA, kClassIN});
  for (int i = 0; i < 3; ++i) {
    Record a;
    a.name = name_from_text("web.default.svc.cluster.local");
    a.ttl = 5;
    a.a = {10, 42, 0, static_cast<uint8_t>(i)};
    r.answers.push_back(a);
  }
  std::string wire = encode(r, 512);
  // Header 12 + question (31 + 4) + 3 answers of (2-byte pointer + 10 + 4).
  EXPECT_EQ(wire.size(), 12u + 35u + 3u * 16u);
  EXPECT_EQ(static_cast<uint8_t>(wire[12 + 35]), 0xC0);
  EXPECT_EQ(static_cast<uint8_t>(wire[12 + 35 + 1]), 12);
  EXPECT_EQ(static_cast<uint8_t>(wire[2]) & 0x80, 0x80);  // QR
  EXPECT_EQ(static_cast<uint8_t>(wire[7]), 3);            // ANCOUNT
}

TEST(Encode, TruncatesToWholeRecordsWithTc) {
  Response r;
  r.questions.push_back({name_from_text("big.default.svc.cluster.local"), kTypeA, kClassIN});
  for (int i = 0; i < 100; ++i) {
    Record a;
    a.name = r.questions[0].name;
    a.a = {10, 42, 1, static_cast<uint8_t>(i)};
    r.answers.push_back(a);
  }
  std::string wire = encode(r, 512);
  EXPECT_LE(wire.size(), 512u);
  EXPECT_EQ(static_cast<uint8_t>(wire[2]) & 0x02, 0x02);  // TC
  size_t answers = (static_cast<uint8_t>(wire[6]) << 8) | static_cast<uint8_t>(wire[7]);
  EXPECT_EQ(answers, (512u - 12u - 35u) / 16u);
  EXPECT_EQ(wire.size(), 12u + 35u + answers * 16u);

  std::string whole = encode(r, 65535);
  EXPECT_EQ(static_cast<uint8_t>(whole[2]) & 0x02, 0);
  EXPECT_EQ(whole.size(), 12u + 35u + 100u * 16u);
}

}  // namespace
}  // namespace skiff::dns
