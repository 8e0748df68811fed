// DNS messages on the wire (RFC 1035, EDNS0 per RFC 6891): what the cluster DNS needs to read
// queries and write answers.
//
// Parsing never trusts its input: every length and pointer is bounds-checked, compression
// pointers may only point backwards (so they cannot loop), names are limited to 255 octets
// and labels to 63. Encoding compresses owner names and the names inside CNAME, NS, PTR and
// SOA data (never SRV targets, as RFC 2782 asks), and truncates to a size limit by dropping
// whole records and setting TC.
//
// Thread-safety: pure functions and plain values.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace skiff::dns {

// A domain name as its labels, in the case they were received ("www", "Example", "com"). The
// root is the empty vector.
using Name = std::vector<std::string>;

// "a.b.c" or "a.b.c." -> {"a", "b", "c"}; "" and "." give the root.
Name name_from_text(std::string_view text);
// {"a", "b", "c"} -> "a.b.c." ; the root is ".".
std::string name_to_text(const Name& name);
// The name in lower case (ASCII only, as DNS compares names), dot-separated, without the
// trailing dot: the form lookups use.
std::string lookup_key(const Name& name);

enum Type : uint16_t {
  kTypeA = 1,
  kTypeNS = 2,
  kTypeCNAME = 5,
  kTypeSOA = 6,
  kTypePTR = 12,
  kTypeTXT = 16,
  kTypeAAAA = 28,
  kTypeSRV = 33,
  kTypeOPT = 41,
  kTypeIXFR = 251,
  kTypeAXFR = 252,
  kTypeANY = 255,
};

inline constexpr uint16_t kClassIN = 1;
inline constexpr uint16_t kClassANY = 255;

enum Rcode : uint8_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNXDomain = 3,
  kNotImp = 4,
  kRefused = 5,
};
// Extended RCODE BADVERS (RFC 6891): its upper 8 bits travel in the OPT record.
inline constexpr uint16_t kBadVers = 16;

inline constexpr size_t kHeaderSize = 12;
// Largest UDP answer to a client that sent no EDNS0 record.
inline constexpr size_t kClassicUdpSize = 512;

struct Header {
  uint16_t id = 0;
  bool qr = false;
  uint8_t opcode = 0;
  bool aa = false;
  bool tc = false;
  bool rd = false;
  bool ra = false;
  uint8_t rcode = 0;  // the lower 4 bits of the (extended) RCODE
};

struct Question {
  Name name;
  uint16_t type = 0;
  uint16_t klass = kClassIN;
};

// An EDNS0 OPT pseudo-record's fields.
struct Edns {
  bool present = false;
  uint16_t udp_size = 0;  // the requester's UDP payload size
  uint8_t version = 0;
  uint8_t extended_rcode = 0;  // upper 8 bits of a 12-bit RCODE
  bool dnssec_ok = false;
};

// A parsed query.
struct Query {
  Header header;
  std::vector<Question> questions;
  Edns edns;
};

enum class ParseOutcome {
  kOk,
  kDrop,        // not worth an answer: shorter than a header, or a response (QR set)
  kFormatError  // answer FORMERR with the header's id
};

// Parses a query. On kFormatError, out->header holds the id and flags that could be read.
ParseOutcome parse_query(std::string_view packet, Query* out);

// A resource record to send.
struct Record {
  Name name;
  uint16_t type = kTypeA;
  uint16_t klass = kClassIN;
  uint32_t ttl = 0;
  std::array<uint8_t, 4> a{};  // A
  Name target;                 // CNAME, NS, PTR, SRV; SOA mname
  uint16_t priority = 0;       // SRV
  uint16_t weight = 0;         // SRV
  uint16_t port = 0;           // SRV
  Name soa_rname;              // SOA
  uint32_t soa_serial = 0, soa_refresh = 0, soa_retry = 0, soa_expire = 0, soa_minimum = 0;
};

struct Response {
  Header header;  // qr is set by encode; tc too when records are dropped
  std::vector<Question> questions;
  std::vector<Record> answers;
  std::vector<Record> authority;
  std::vector<Record> additional;  // without the OPT record, which `edns` describes
  Edns edns;                       // present: an OPT record is appended
};

// The message on the wire, at most `max_size` bytes (the header, the question and the OPT
// record must fit in it). When the whole message does not fit, the additional section is
// dropped first (without TC: those records are extras); if it still does not fit, the
// authority section is dropped too, as many answers as fit are kept, and TC is set.
std::string encode(const Response& response, size_t max_size);

}  // namespace skiff::dns
