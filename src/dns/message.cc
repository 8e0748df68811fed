#include "dns/message.h"

#include <map>
#include <utility>

namespace skiff::dns {

namespace {

constexpr size_t kMaxNameLength = 255;  // octets on the wire, the root's zero included
constexpr size_t kMaxLabelLength = 63;
constexpr size_t kMaxPointerOffset = 0x3FFF;
constexpr size_t kOptRecordSize = 11;  // root name, type, class, ttl, rdlength 0

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool u8(uint8_t* v) {
    if (pos_ + 1 > data_.size()) return false;
    *v = static_cast<uint8_t>(data_[pos_++]);
    return true;
  }
  bool u16(uint16_t* v) {
    if (pos_ + 2 > data_.size()) return false;
    *v = static_cast<uint16_t>((static_cast<uint8_t>(data_[pos_]) << 8) |
                               static_cast<uint8_t>(data_[pos_ + 1]));
    pos_ += 2;
    return true;
  }
  bool u32(uint32_t* v) {
    uint16_t hi = 0, lo = 0;
    if (!u16(&hi) || !u16(&lo)) return false;
    *v = (static_cast<uint32_t>(hi) << 16) | lo;
    return true;
  }
  bool skip(size_t n) {
    if (pos_ + n > data_.size()) return false;
    pos_ += n;
    return true;
  }
  // A possibly compressed name. Pointers must point strictly before the label that holds
  // them, which bounds the walk.
  bool name(Name* out) {
    out->clear();
    size_t pos = pos_;
    size_t wire_length = 1;
    bool jumped = false;
    while (true) {
      if (pos >= data_.size()) return false;
      uint8_t len = static_cast<uint8_t>(data_[pos]);
      if ((len & 0xC0) == 0xC0) {
        if (pos + 1 >= data_.size()) return false;
        size_t target = ((len & 0x3F) << 8) | static_cast<uint8_t>(data_[pos + 1]);
        if (target >= pos) return false;
        if (!jumped) pos_ = pos + 2;
        jumped = true;
        pos = target;
        continue;
      }
      if ((len & 0xC0) != 0) return false;  // the 0x40 and 0x80 label types are obsolete
      if (len == 0) {
        if (!jumped) pos_ = pos + 1;
        return true;
      }
      wire_length += len + 1;
      if (wire_length > kMaxNameLength || pos + 1 + len > data_.size()) return false;
      out->emplace_back(data_.substr(pos + 1, len));
      pos += 1 + len;
    }
  }
  size_t remaining() const { return data_.size() - pos_; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(uint16_t v) {
    u8(static_cast<uint8_t>(v >> 8));
    u8(static_cast<uint8_t>(v & 0xFF));
  }
  void u32(uint32_t v) {
    u16(static_cast<uint16_t>(v >> 16));
    u16(static_cast<uint16_t>(v & 0xFFFF));
  }
  void set_u16(size_t at, uint16_t v) {
    out_[at] = static_cast<char>(v >> 8);
    out_[at + 1] = static_cast<char>(v & 0xFF);
  }
  // Writes a name, pointing at an earlier copy of its longest known suffix when `compress`.
  void name(const Name& n, bool compress) {
    for (size_t i = 0; i < n.size(); ++i) {
      std::string key = suffix_key(n, i);
      if (compress) {
        auto it = offsets_.find(key);
        if (it != offsets_.end()) {
          u16(static_cast<uint16_t>(0xC000 | it->second));
          return;
        }
      }
      if (out_.size() <= kMaxPointerOffset) offsets_.emplace(std::move(key), out_.size());
      const std::string& label = n[i];
      size_t len = std::min(label.size(), kMaxLabelLength);
      u8(static_cast<uint8_t>(len));
      out_.append(label, 0, len);
    }
    u8(0);
  }
  size_t size() const { return out_.size(); }

  struct Mark {
    size_t size;
    std::map<std::string, size_t> offsets;
  };
  Mark mark() const { return {out_.size(), offsets_}; }
  void rollback(Mark m) {
    out_.resize(m.size);
    offsets_ = std::move(m.offsets);
  }
  std::string take() { return std::move(out_); }

 private:
  // The lower-case wire form of the name's labels from i on: equal keys compress to each
  // other.
  static std::string suffix_key(const Name& n, size_t i) {
    std::string k;
    for (; i < n.size(); ++i) {
      k.push_back(static_cast<char>(n[i].size()));
      for (char c : n[i]) k.push_back(lower(c));
    }
    return k;
  }

  std::string out_;
  std::map<std::string, size_t> offsets_;
};

void write_header(Writer& w, const Header& h, uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar) {
  w.u16(h.id);
  uint16_t flags = 0;
  if (h.qr) flags |= 0x8000;
  flags |= static_cast<uint16_t>((h.opcode & 0xF) << 11);
  if (h.aa) flags |= 0x0400;
  if (h.tc) flags |= 0x0200;
  if (h.rd) flags |= 0x0100;
  if (h.ra) flags |= 0x0080;
  flags |= h.rcode & 0xF;
  w.u16(flags);
  w.u16(qd);
  w.u16(an);
  w.u16(ns);
  w.u16(ar);
}

void write_record(Writer& w, const Record& r) {
  w.name(r.name, true);
  w.u16(r.type);
  w.u16(r.klass);
  w.u32(r.ttl);
  size_t length_at = w.size();
  w.u16(0);
  size_t start = w.size();
  switch (r.type) {
    case kTypeA:
      for (uint8_t b : r.a) w.u8(b);
      break;
    case kTypeCNAME:
    case kTypeNS:
    case kTypePTR:
      w.name(r.target, true);
      break;
    case kTypeSRV:
      w.u16(r.priority);
      w.u16(r.weight);
      w.u16(r.port);
      w.name(r.target, false);
      break;
    case kTypeSOA:
      w.name(r.target, true);
      w.name(r.soa_rname, true);
      w.u32(r.soa_serial);
      w.u32(r.soa_refresh);
      w.u32(r.soa_retry);
      w.u32(r.soa_expire);
      w.u32(r.soa_minimum);
      break;
    default:
      break;
  }
  w.set_u16(length_at, static_cast<uint16_t>(w.size() - start));
}

void write_opt(Writer& w, const Edns& e) {
  w.u8(0);  // root
  w.u16(kTypeOPT);
  w.u16(e.udp_size);
  w.u8(e.extended_rcode);
  w.u8(e.version);
  w.u16(e.dnssec_ok ? 0x8000 : 0);
  w.u16(0);
}

}  // namespace

Name name_from_text(std::string_view text) {
  Name out;
  size_t start = 0;
  while (start < text.size()) {
    size_t dot = text.find('.', start);
    if (dot == std::string_view::npos) dot = text.size();
    if (dot > start) out.emplace_back(text.substr(start, dot - start));
    start = dot + 1;
  }
  return out;
}

std::string name_to_text(const Name& name) {
  if (name.empty()) return ".";
  std::string out;
  for (const auto& l : name) out += l + ".";
  return out;
}

std::string lookup_key(const Name& name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (i > 0) out.push_back('.');
    for (char c : name[i]) out.push_back(lower(c));
  }
  return out;
}

ParseOutcome parse_query(std::string_view packet, Query* out) {
  *out = Query{};
  Reader r(packet);
  uint16_t id = 0, flags = 0, qd = 0, an = 0, ns = 0, ar = 0;
  if (!r.u16(&id) || !r.u16(&flags) || !r.u16(&qd) || !r.u16(&an) || !r.u16(&ns) || !r.u16(&ar)) {
    return ParseOutcome::kDrop;
  }
  Header& h = out->header;
  h.id = id;
  h.qr = (flags & 0x8000) != 0;
  h.opcode = static_cast<uint8_t>((flags >> 11) & 0xF);
  h.aa = (flags & 0x0400) != 0;
  h.tc = (flags & 0x0200) != 0;
  h.rd = (flags & 0x0100) != 0;
  h.ra = (flags & 0x0080) != 0;
  h.rcode = static_cast<uint8_t>(flags & 0xF);
  if (h.qr) return ParseOutcome::kDrop;

  for (uint16_t i = 0; i < qd; ++i) {
    Question q;
    if (!r.name(&q.name) || !r.u16(&q.type) || !r.u16(&q.klass)) {
      return ParseOutcome::kFormatError;
    }
    out->questions.push_back(std::move(q));
  }
  // Answer and authority records are not expected in a query, but are skipped correctly.
  const uint32_t records = static_cast<uint32_t>(an) + ns + ar;
  for (uint32_t i = 0; i < records; ++i) {
    Name name;
    uint16_t type = 0, klass = 0, rdlength = 0;
    uint32_t ttl = 0;
    if (!r.name(&name) || !r.u16(&type) || !r.u16(&klass) || !r.u32(&ttl) || !r.u16(&rdlength) ||
        !r.skip(rdlength)) {
      return ParseOutcome::kFormatError;
    }
    const bool additional = i >= static_cast<uint32_t>(an) + ns;
    if (type != kTypeOPT) continue;
    // One OPT, in the additional section, owned by the root (RFC 6891 6.1.1).
    if (!additional || out->edns.present || !name.empty()) return ParseOutcome::kFormatError;
    out->edns.present = true;
    out->edns.udp_size = klass;
    out->edns.extended_rcode = static_cast<uint8_t>(ttl >> 24);
    out->edns.version = static_cast<uint8_t>((ttl >> 16) & 0xFF);
    out->edns.dnssec_ok = (ttl & 0x8000) != 0;
  }
  // Trailing bytes after the last record are tolerated (some stacks pad).
  return ParseOutcome::kOk;
}

std::string encode(const Response& response, size_t max_size) {
  Header h = response.header;
  h.qr = true;
  const size_t opt_size = response.edns.present ? kOptRecordSize : 0;

  // Tries the sections as given; keeps whole records while they fit.
  auto attempt = [&](bool with_authority, bool with_additional, bool* complete) {
    Writer w;
    write_header(w, h, 0, 0, 0, 0);
    for (const auto& q : response.questions) {
      w.name(q.name, true);
      w.u16(q.type);
      w.u16(q.klass);
    }
    uint16_t counts[3] = {0, 0, 0};
    const std::vector<Record>* sections[3] = {&response.answers, &response.authority,
                                              &response.additional};
    const bool wanted[3] = {true, with_authority, with_additional};
    *complete = w.size() + opt_size <= max_size;
    for (int s = 0; s < 3 && *complete; ++s) {
      if (!wanted[s]) continue;
      for (const auto& rec : *sections[s]) {
        Writer::Mark m = w.mark();
        write_record(w, rec);
        if (w.size() + opt_size > max_size || counts[s] == 0xFFFF) {
          w.rollback(std::move(m));
          *complete = false;
          break;
        }
        ++counts[s];
      }
    }
    uint16_t ar = counts[2];
    if (response.edns.present && w.size() + opt_size <= max_size) {
      write_opt(w, response.edns);
      ++ar;
    }
    std::string out = w.take();
    if (out.size() > max_size) {
      out.resize(std::max(max_size, kHeaderSize));
    }
    Header final_header = h;
    final_header.tc = h.tc || !*complete;
    Writer head;
    write_header(head, final_header, static_cast<uint16_t>(response.questions.size()), counts[0],
                 counts[1], ar);
    std::string head_bytes = head.take();
    out.replace(0, kHeaderSize, head_bytes);
    return out;
  };

  bool complete = false;
  std::string full = attempt(true, true, &complete);
  if (complete) return full;
  // Extra records are a courtesy: dropping them needs no TC (RFC 2181 9).
  std::string without_additional = attempt(true, false, &complete);
  if (complete) return without_additional;
  std::string cut = attempt(false, false, &complete);
  cut[2] = static_cast<char>(cut[2] | 0x02);  // TC: required records were left out
  return cut;
}

}  // namespace skiff::dns
