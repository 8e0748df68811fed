#include "apiserver/pki/pki.h"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <filesystem>
#include <regex>

#include "test_support.h"

namespace skiff::apiserver::pki {
namespace {

using testing::Cert;
using testing::mode_of;
using testing::options_in;
using testing::parse_cert;
using testing::read_all;
using testing::TempDir;

constexpr int64_t kDay = 24 * 3600;

// Verifies `leaf` against `ca` alone, for `purpose`, at the current time.
bool verifies(X509* leaf, X509* ca, int purpose) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx, purpose);
  bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok;
}

bool has_dns(X509* cert, const std::string& name) {
  return X509_check_host(cert, name.c_str(), name.size(), X509_CHECK_FLAG_NO_WILDCARDS, nullptr) ==
         1;
}

bool has_ip(X509* cert, const std::string& ip) {
  return X509_check_ip_asc(cert, ip.c_str(), 0) == 1;
}

std::string subject_field(X509* cert, int nid) {
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), nid, buf, sizeof(buf));
  return buf;
}

TEST(EnsurePkiTest, FirstStartCreatesEverythingWithPrivateModes) {
  TempDir dir;
  PkiOptions opts = options_in(dir);
  Pki pki;
  ASSERT_TRUE(ensure_pki(opts, &pki).ok());

  EXPECT_EQ(mode_of(opts.data_dir), 0700);
  EXPECT_EQ(mode_of(opts.data_dir + "/tls"), 0700);
  for (const std::string& path : {pki.ca_key_path, pki.serving_key_path, pki.admin_key_path,
                                  pki.sa_key_path, pki.token_path}) {
    EXPECT_EQ(mode_of(path), 0600) << path;
  }
  for (const std::string& path :
       {pki.ca_cert_path, pki.serving_cert_path, pki.admin_cert_path, pki.sa_pub_path}) {
    EXPECT_EQ(mode_of(path), 0644) << path;
  }
  EXPECT_EQ(pki.token_path, opts.data_dir + "/token");
  EXPECT_EQ(pki.ca_cert_path, opts.data_dir + "/tls/ca.crt");
  EXPECT_EQ(read_all(pki.ca_cert_path), pki.ca_cert_pem);
  EXPECT_EQ(read_all(pki.ca_key_path), pki.ca_key_pem);
  EXPECT_EQ(read_all(pki.serving_cert_path), pki.serving_cert_pem);
  EXPECT_EQ(read_all(pki.serving_key_path), pki.serving_key_pem);
  EXPECT_EQ(read_all(pki.admin_cert_path), pki.admin_cert_pem);
  EXPECT_EQ(read_all(pki.admin_key_path), pki.admin_key_pem);
  EXPECT_EQ(read_all(pki.sa_key_path), pki.sa_key_pem);
  EXPECT_EQ(read_all(pki.sa_pub_path), pki.sa_pub_pem);
  EXPECT_EQ(read_all(pki.token_path), pki.join_token + "\n");
  EXPECT_NE(pki.keys, nullptr);

  // No temporary file is left behind.
  for (const auto& entry : std::filesystem::directory_iterator(opts.data_dir + "/tls")) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }
}

TEST(EnsurePkiTest, JoinTokenIsK3sSecureFormatOverTheCaFileBytes) {
  TempDir dir;
  Pki pki;
  ASSERT_TRUE(ensure_pki(options_in(dir), &pki).ok());
  std::smatch m;
  ASSERT_TRUE(
      std::regex_match(pki.join_token, m, std::regex("K10([0-9a-f]{64})::server:([0-9a-f]{32})")))
      << pki.join_token;
  EXPECT_EQ(m[1].str(), testing::sha256_hex(read_all(pki.ca_cert_path)));
  EXPECT_TRUE(ca_matches_hash(pki.ca_cert_pem, m[1].str()));
}

TEST(EnsurePkiTest, SecondStartReusesEverythingByteForByte) {
  TempDir dir;
  PkiOptions opts = options_in(dir);
  Pki first;
  ASSERT_TRUE(ensure_pki(opts, &first).ok());
  Pki second;
  ASSERT_TRUE(ensure_pki(opts, &second).ok());
  EXPECT_EQ(second.ca_cert_pem, first.ca_cert_pem);
  EXPECT_EQ(second.ca_key_pem, first.ca_key_pem);
  EXPECT_EQ(second.join_token, first.join_token);
  EXPECT_EQ(second.serving_cert_pem, first.serving_cert_pem);
  EXPECT_EQ(second.serving_key_pem, first.serving_key_pem);
  EXPECT_EQ(second.admin_cert_pem, first.admin_cert_pem);
  EXPECT_EQ(second.sa_key_pem, first.sa_key_pem);
  EXPECT_EQ(second.sa_pub_pem, first.sa_pub_pem);
  EXPECT_EQ(read_all(second.token_path), first.join_token + "\n");
}

TEST(EnsurePkiTest, ServingCertVerifiesAgainstCaAndCarriesEverySan) {
  TempDir dir;
  PkiOptions opts = options_in(dir);
  opts.bind_address = "192.168.5.10";
  opts.service_cidr = "10.43.0.0/16, fd00:43::/112";
  opts.tls_sans = {"api.example.com", "203.0.113.9", "[2001:db8::7]", "  Mixed.Case.Example "};
  Pki pki;
  ASSERT_TRUE(ensure_pki(opts, &pki).ok());
  Cert ca = parse_cert(pki.ca_cert_pem);
  Cert serving = parse_cert(pki.serving_cert_pem);
  ASSERT_TRUE(ca && serving);
  EXPECT_TRUE(verifies(serving.get(), ca.get(), X509_PURPOSE_SSL_SERVER));
  EXPECT_FALSE(verifies(serving.get(), ca.get(), X509_PURPOSE_SSL_CLIENT));

  for (const char* name :
       {"localhost", "node-1.example", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local", "api.example.com", "mixed.case.example"}) {
    EXPECT_TRUE(has_dns(serving.get(), name)) << name;
  }
  for (const char* ip : {"127.0.0.1", "::1", "10.43.0.1", "fd00:43::1", "192.168.5.10",
                         "203.0.113.9", "2001:db8::7"}) {
    EXPECT_TRUE(has_ip(serving.get(), ip)) << ip;
  }
  EXPECT_FALSE(has_dns(serving.get(), "other.example.com"));
  EXPECT_FALSE(has_ip(serving.get(), "10.43.0.2"));
  EXPECT_EQ(pki.serving_sans.size(), 15u);
}

TEST(EnsurePkiTest, ServiceIpIsTheFirstAddressEvenWithHostBitsSet) {
  TempDir dir;
  PkiOptions opts = options_in(dir);
  opts.service_cidr = "10.96.7.9/12";
  Pki pki;
  ASSERT_TRUE(ensure_pki(opts, &pki).ok());
  Cert serving = parse_cert(pki.serving_cert_pem);
  EXPECT_TRUE(has_ip(serving.get(), "10.96.0.1"));
}

TEST(EnsurePkiTest, WildcardBindAddressAddsNoIp) {
  TempDir dir;
  PkiOptions opts = options_in(dir);
  opts.bind_address = "0.0.0.0";
  Pki pki;
  ASSERT_TRUE(ensure_pki(opts, &pki).ok());
  EXPECT_EQ(std::count(pki.serving_sans.begin(), pki.serving_sans.end(), "0.0.0.0"), 0);
}

TEST(EnsurePkiTest, NewTlsSanReissuesServingCertWithSameCa) {
  TempDir dir;
  PkiOptions opts = options_in(dir);
  Pki first;
  ASSERT_TRUE(ensure_pki(opts, &first).ok());

  opts.tls_sans = {"api.example.com"};
  Pki second;
  ASSERT_TRUE(ensure_pki(opts, &second).ok());
  EXPECT_EQ(second.ca_cert_pem, first.ca_cert_pem);
  EXPECT_EQ(second.join_token, first.join_token);
  EXPECT_EQ(second.admin_cert_pem, first.admin_cert_pem);
  EXPECT_NE(second.serving_cert_pem, first.serving_cert_pem);
  EXPECT_NE(second.serving_key_pem, first.serving_key_pem);
  Cert ca = parse_cert(second.ca_cert_pem);
  Cert serving = parse_cert(second.serving_cert_pem);
  EXPECT_TRUE(verifies(serving.get(), ca.get(), X509_PURPOSE_SSL_SERVER));
  EXPECT_TRUE(has_dns(serving.get(), "api.example.com"));

  // Same SANs in another order and case: kept.
  opts.tls_sans = {"API.example.com", "api.example.com"};
  Pki third;
  ASSERT_TRUE(ensure_pki(opts, &third).ok());
  EXPECT_EQ(third.serving_cert_pem, second.serving_cert_pem);

  // Dropping the SAN re-issues again.
  opts.tls_sans = {};
  Pki fourth;
  ASSERT_TRUE(ensure_pki(opts, &fourth).ok());
  EXPECT_NE(fourth.serving_cert_pem, third.serving_cert_pem);
  EXPECT_FALSE(has_dns(parse_cert(fourth.serving_cert_pem).get(), "api.example.com"));
}

TEST(EnsurePkiTest, AdminCertificateIsSystemAdminInSystemMasters) {
  TempDir dir;
  Pki pki;
  ASSERT_TRUE(ensure_pki(options_in(dir), &pki).ok());
  Cert ca = parse_cert(pki.ca_cert_pem);
  Cert admin = parse_cert(pki.admin_cert_pem);
  ASSERT_TRUE(admin);
  EXPECT_EQ(subject_field(admin.get(), NID_commonName), "system:admin");
  EXPECT_EQ(subject_field(admin.get(), NID_organizationName), "system:masters");
  EXPECT_TRUE(verifies(admin.get(), ca.get(), X509_PURPOSE_SSL_CLIENT));
  EXPECT_FALSE(verifies(admin.get(), ca.get(), X509_PURPOSE_SSL_SERVER));
  testing::Key key = testing::parse_key(pki.admin_key_pem);
  EXPECT_EQ(X509_check_private_key(admin.get(), key.get()), 1);
}

TEST(EnsurePkiTest, CaIsSelfSignedForTenYears) {
  TempDir dir;
  PkiOptions opts = options_in(dir);
  opts.now = 1'700'000'000;
  Pki pki;
  ASSERT_TRUE(ensure_pki(opts, &pki).ok());
  Cert ca = parse_cert(pki.ca_cert_pem);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(X509_check_issued(ca.get(), ca.get()), X509_V_OK);
  time_t nine_years = time_t(opts.now + 9 * 365 * kDay);
  EXPECT_EQ(X509_cmp_time(X509_get0_notAfter(ca.get()), &nine_years), 1);
}

TEST(EnsurePkiTest, LeavesNearExpiryAreRenewedWithTheSameCa) {
  TempDir dir;
  PkiOptions opts = options_in(dir);
  opts.now = int64_t(std::time(nullptr));
  Pki first;
  ASSERT_TRUE(ensure_pki(opts, &first).ok());

  opts.now += 200 * kDay;  // 165 days left: kept
  Pki second;
  ASSERT_TRUE(ensure_pki(opts, &second).ok());
  EXPECT_EQ(second.serving_cert_pem, first.serving_cert_pem);

  opts.now += 100 * kDay;  // 65 days left: renewed
  Pki third;
  ASSERT_TRUE(ensure_pki(opts, &third).ok());
  EXPECT_NE(third.serving_cert_pem, first.serving_cert_pem);
  EXPECT_NE(third.admin_cert_pem, first.admin_cert_pem);
  EXPECT_EQ(third.ca_cert_pem, first.ca_cert_pem);
  EXPECT_EQ(third.sa_key_pem, first.sa_key_pem);
  EXPECT_EQ(third.join_token, first.join_token);
}

TEST(EnsurePkiTest, DamagedLeafIsReissued) {
  TempDir dir;
  PkiOptions opts = options_in(dir);
  Pki first;
  ASSERT_TRUE(ensure_pki(opts, &first).ok());
  testing::write_all(first.serving_cert_path, "garbage");
  testing::write_all(first.admin_key_path, "");
  Pki second;
  ASSERT_TRUE(ensure_pki(opts, &second).ok());
  EXPECT_NE(second.serving_cert_pem, first.serving_cert_pem);
  EXPECT_NE(second.admin_cert_pem, first.admin_cert_pem);
  EXPECT_EQ(second.ca_cert_pem, first.ca_cert_pem);
  Cert ca = parse_cert(second.ca_cert_pem);
  EXPECT_TRUE(
      verifies(parse_cert(second.serving_cert_pem).get(), ca.get(), X509_PURPOSE_SSL_SERVER));
}

TEST(EnsurePkiTest, LeafFromAnotherCaIsReissued) {
  TempDir a, b;
  Pki pa, pb;
  ASSERT_TRUE(ensure_pki(options_in(a), &pa).ok());
  ASSERT_TRUE(ensure_pki(options_in(b), &pb).ok());
  testing::write_all(pa.serving_cert_path, pb.serving_cert_pem);
  testing::write_all(pa.serving_key_path, pb.serving_key_pem);
  Pki again;
  ASSERT_TRUE(ensure_pki(options_in(a), &again).ok());
  EXPECT_NE(again.serving_cert_pem, pb.serving_cert_pem);
  EXPECT_TRUE(verifies(parse_cert(again.serving_cert_pem).get(),
                       parse_cert(again.ca_cert_pem).get(), X509_PURPOSE_SSL_SERVER));
}

TEST(EnsurePkiTest, CaCertificateWithoutKeyIsAnError) {
  TempDir dir;
  PkiOptions opts = options_in(dir);
  Pki first;
  ASSERT_TRUE(ensure_pki(opts, &first).ok());
  std::filesystem::remove(first.ca_key_path);
  Pki second;
  Status s = ensure_pki(opts, &second);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("ca.key"), std::string::npos) << s.message();
  EXPECT_EQ(read_all(first.ca_cert_path), first.ca_cert_pem);  // left alone
}

TEST(EnsurePkiTest, MismatchedCaKeyIsAnError) {
  TempDir a, b;
  Pki pa, pb;
  ASSERT_TRUE(ensure_pki(options_in(a), &pa).ok());
  ASSERT_TRUE(ensure_pki(options_in(b), &pb).ok());
  testing::write_all(pa.ca_key_path, pb.ca_key_pem);
  Pki again;
  EXPECT_EQ(ensure_pki(options_in(a), &again).code(), StatusCode::kInternal);
}

TEST(EnsurePkiTest, CaKeyWithoutCertificateStartsANewCa) {
  TempDir dir;
  PkiOptions opts = options_in(dir);
  Pki first;
  ASSERT_TRUE(ensure_pki(opts, &first).ok());
  std::filesystem::remove(first.ca_cert_path);
  Pki second;
  ASSERT_TRUE(ensure_pki(opts, &second).ok());
  EXPECT_NE(second.ca_cert_pem, first.ca_cert_pem);
  // The token keeps its secret but names the new CA; leaves follow the new CA.
  EXPECT_NE(second.join_token, first.join_token);
  EXPECT_EQ(second.join_token.substr(second.join_token.find("::")),
            first.join_token.substr(first.join_token.find("::")));
  EXPECT_TRUE(ca_matches_hash(second.ca_cert_pem, second.join_token.substr(3, 64)));
  EXPECT_TRUE(verifies(parse_cert(second.serving_cert_pem).get(),
                       parse_cert(second.ca_cert_pem).get(), X509_PURPOSE_SSL_SERVER));
}

TEST(EnsurePkiTest, LooseModesAreTightened) {
  TempDir dir;
  PkiOptions opts = options_in(dir);
  Pki first;
  ASSERT_TRUE(ensure_pki(opts, &first).ok());
  ASSERT_EQ(::chmod(first.ca_key_path.c_str(), 0644), 0);
  ASSERT_EQ(::chmod(first.token_path.c_str(), 0640), 0);
  ASSERT_EQ(::chmod(first.tls_dir.c_str(), 0755), 0);
  Pki second;
  ASSERT_TRUE(ensure_pki(opts, &second).ok());
  EXPECT_EQ(mode_of(first.ca_key_path), 0600);
  EXPECT_EQ(mode_of(first.token_path), 0600);
  EXPECT_EQ(mode_of(first.tls_dir), 0700);
}

TEST(EnsurePkiTest, MissingOrForeignSaPubIsRederivedFromSaKey) {
  TempDir a, b;
  Pki pa, pb;
  ASSERT_TRUE(ensure_pki(options_in(a), &pa).ok());
  ASSERT_TRUE(ensure_pki(options_in(b), &pb).ok());
  std::filesystem::remove(pa.sa_pub_path);
  Pki again;
  ASSERT_TRUE(ensure_pki(options_in(a), &again).ok());
  EXPECT_EQ(again.sa_pub_pem, pa.sa_pub_pem);
  EXPECT_EQ(read_all(pa.sa_pub_path), pa.sa_pub_pem);

  testing::write_all(pa.sa_pub_path, pb.sa_pub_pem);
  ASSERT_TRUE(ensure_pki(options_in(a), &again).ok());
  EXPECT_EQ(again.sa_pub_pem, pa.sa_pub_pem);
  EXPECT_EQ(again.sa_key_pem, pa.sa_key_pem);
}

TEST(EnsurePkiTest, GivenTokenSecretIsUsedAndReplacesTheStoredOne) {
  TempDir dir;
  PkiOptions opts = options_in(dir);
  Pki first;
  ASSERT_TRUE(ensure_pki(opts, &first).ok());

  opts.token = "my-cluster-secret";
  Pki second;
  ASSERT_TRUE(ensure_pki(opts, &second).ok());
  EXPECT_EQ(second.join_token,
            "K10" + testing::sha256_hex(second.ca_cert_pem) + "::server:my-cluster-secret");
  EXPECT_EQ(read_all(second.token_path), second.join_token + "\n");

  // A full token for this CA works too; one for another CA does not.
  opts.token = second.join_token;
  Pki third;
  ASSERT_TRUE(ensure_pki(opts, &third).ok());
  EXPECT_EQ(third.join_token, second.join_token);

  opts.token = "K10" + std::string(64, 'a') + "::server:my-cluster-secret";
  EXPECT_EQ(ensure_pki(opts, &third).code(), StatusCode::kInvalid);

  // Without a token option the stored secret is kept.
  opts.token.clear();
  Pki fourth;
  ASSERT_TRUE(ensure_pki(opts, &fourth).ok());
  EXPECT_EQ(fourth.join_token, second.join_token);
}

TEST(EnsurePkiTest, CorruptTokenFileIsAnErrorNotASilentNewSecret) {
  TempDir dir;
  PkiOptions opts = options_in(dir);
  Pki first;
  ASSERT_TRUE(ensure_pki(opts, &first).ok());
  testing::write_all(first.token_path, "K10abc::server:x\n");
  Pki second;
  EXPECT_EQ(ensure_pki(opts, &second).code(), StatusCode::kInternal);
}

TEST(EnsurePkiTest, BadOptionsAreInvalidAndWriteNothing) {
  struct Case {
    const char* what;
    void (*apply)(PkiOptions*);
  };
  const Case cases[] = {
      {"no data dir", [](PkiOptions* o) { o->data_dir.clear(); }},
      {"cidr without prefix", [](PkiOptions* o) { o->service_cidr = "10.43.0.0"; }},
      {"cidr prefix too long", [](PkiOptions* o) { o->service_cidr = "10.43.0.0/33"; }},
      {"cidr no host bits", [](PkiOptions* o) { o->service_cidr = "10.43.0.0/32"; }},
      {"cidr garbage", [](PkiOptions* o) { o->service_cidr = "ten/8"; }},
      {"cidr bad prefix", [](PkiOptions* o) { o->service_cidr = "10.0.0.0/1x"; }},
      {"bind not an ip", [](PkiOptions* o) { o->bind_address = "localhost"; }},
      {"san with space", [](PkiOptions* o) { o->tls_sans = {"a b.example"}; }},
      {"san empty label", [](PkiOptions* o) { o->tls_sans = {"a..example"}; }},
      {"san bad wildcard", [](PkiOptions* o) { o->tls_sans = {"a.*.example"}; }},
      {"san bracketed name", [](PkiOptions* o) { o->tls_sans = {"[example.com]"}; }},
      {"san too long label", [](PkiOptions* o) { o->tls_sans = {std::string(64, 'a') + ".x"}; }},
      {"host name", [](PkiOptions* o) { o->host_name = "bad_host name"; }},
      {"token with space", [](PkiOptions* o) { o->token = "a b"; }},
      {"token bad hash", [](PkiOptions* o) { o->token = "K10abcd::server:x"; }},
      {"token other user", [](PkiOptions* o) { o->token = "K10::node:x"; }},
  };
  for (const Case& c : cases) {
    TempDir dir;
    PkiOptions opts = options_in(dir);
    c.apply(&opts);
    Pki pki;
    EXPECT_EQ(ensure_pki(opts, &pki).code(), StatusCode::kInvalid) << c.what;
    EXPECT_FALSE(std::filesystem::exists(dir.path() + "/data")) << c.what;
  }
}

TEST(EnsurePkiTest, DataDirThatIsAFileIsAnError) {
  TempDir dir;
  PkiOptions opts = options_in(dir);
  testing::write_all(opts.data_dir, "not a directory");
  Pki pki;
  EXPECT_EQ(ensure_pki(opts, &pki).code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace skiff::apiserver::pki
