#include "apiserver/pki/certificates.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "apiserver/pki/pki.h"
#include "test_support.h"

namespace skiff::apiserver::pki {
namespace {

using testing::Cert;
using testing::options_in;
using testing::parse_cert;
using testing::TempDir;

class CertificatesTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(ensure_pki(options_in(dir_), &pki_).ok()); }

  TempDir dir_;
  Pki pki_;
};

std::string der_of(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  std::string out(reinterpret_cast<char*>(der), size_t(len));
  OPENSSL_free(der);
  return out;
}

TEST(ClassifySanTest, TellsIpsFromDnsNames) {
  struct Case {
    const char* in;
    SubjectAltName::Kind kind;
    const char* value;
  };
  const Case cases[] = {
      {"10.0.0.1", SubjectAltName::Kind::kIp, "10.0.0.1"},
      {"2001:DB8:0:0::1", SubjectAltName::Kind::kIp, "2001:db8::1"},
      {"[::1]", SubjectAltName::Kind::kIp, "::1"},
      {" Example.COM ", SubjectAltName::Kind::kDns, "example.com"},
      {"*.apps.example.com", SubjectAltName::Kind::kDns, "*.apps.example.com"},
      {"my_host", SubjectAltName::Kind::kDns, "my_host"},
      {"10.0.0.256", SubjectAltName::Kind::kDns, "10.0.0.256"},  // a name, as Go reads it
  };
  for (const Case& c : cases) {
    auto san = classify_san(c.in);
    ASSERT_TRUE(san.ok()) << c.in << ": " << san.status().to_string();
    EXPECT_EQ(san->kind, c.kind) << c.in;
    EXPECT_EQ(san->value, c.value) << c.in;
  }
  for (const char* bad : {"", "  ", "a b", "-a.example", "a-.example", "*", "*.", "a.*",
                          "[10.0.0.1]", "fe80::1%eth0", "a/b", "ü.example", "a..b"}) {
    EXPECT_EQ(classify_san(bad).status().code(), StatusCode::kInvalid) << bad;
  }
}

TEST_F(CertificatesTest, UserFromCertificateReadsCnAndEveryO) {
  Cert admin = parse_cert(pki_.admin_cert_pem);
  for (auto user : {user_from_certificate(admin.get()), user_from_certificate(pki_.admin_cert_pem),
                    user_from_certificate(std::string_view(der_of(admin.get())))}) {
    ASSERT_TRUE(user.ok()) << user.status().to_string();
    EXPECT_EQ(user->name, "system:admin");
    EXPECT_EQ(user->groups, std::vector<std::string>{"system:masters"});
    EXPECT_EQ(user->uid, "");
  }

  CertificateRequest req;
  req.common_name = "system:node:" + std::string(200, 'n');  // beyond X.520's 64
  req.organizations = {"system:nodes", "team-a"};
  auto issued = issue_certificate(pki_, req, int64_t(std::time(nullptr)));
  ASSERT_TRUE(issued.ok()) << issued.status().to_string();
  auto user = user_from_certificate(issued->cert_pem);
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->name, req.common_name);
  EXPECT_EQ(user->groups, req.organizations);
}

TEST_F(CertificatesTest, UserFromCertificateRejectsWhatIsNotAnIdentity) {
  EXPECT_EQ(user_from_certificate(static_cast<const x509_st*>(nullptr)).status().code(),
            StatusCode::kUnauthorized);
  EXPECT_EQ(user_from_certificate(std::string_view("")).status().code(), StatusCode::kBadRequest);
  EXPECT_EQ(user_from_certificate(std::string_view("\x30\x82\x01")).status().code(),
            StatusCode::kBadRequest);
  EXPECT_EQ(user_from_certificate(std::string_view("-----BEGIN CERTIFICATE-----\nAAAA\n"))
                .status()
                .code(),
            StatusCode::kBadRequest);
  EXPECT_EQ(user_from_certificate(std::string_view(std::string(100000, 'x'))).status().code(),
            StatusCode::kBadRequest);

  // A certificate without a CN authenticates nobody.
  Cert ca = parse_cert(pki_.ca_cert_pem);
  testing::Key ca_key = testing::parse_key(pki_.ca_key_pem);
  X509* bare = X509_new();
  X509_set_version(bare, X509_VERSION_3);
  X509_NAME* name = X509_get_subject_name(bare);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("system:masters"), -1, -1, 0);
  X509_set_issuer_name(bare, X509_get_subject_name(ca.get()));
  X509_set_pubkey(bare, ca_key.get());
  X509_gmtime_adj(X509_getm_notBefore(bare), 0);
  X509_gmtime_adj(X509_getm_notAfter(bare), 3600);
  ASSERT_GT(X509_sign(bare, ca_key.get(), EVP_sha256()), 0);
  EXPECT_EQ(user_from_certificate(bare).status().code(), StatusCode::kUnauthorized);

  // Nor does one with two.
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("alice"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("system:admin"), -1, -1, 0);
  EXPECT_EQ(user_from_certificate(bare).status().code(), StatusCode::kUnauthorized);
  X509_free(bare);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST_F(CertificatesTest, IssuedCertificatesChainToTheCaWithTheAskedUsages) {
  CertificateRequest req;
  req.common_name = "system:node:worker-1";
  req.organizations = {"system:nodes"};
  req.sans = {"worker-1", "10.0.0.5"};
  req.client_auth = true;
  req.server_auth = true;
  auto issued = issue_certificate(pki_, req, int64_t(std::time(nullptr)));
  ASSERT_TRUE(issued.ok()) << issued.status().to_string();
  Cert cert = parse_cert(issued->cert_pem);
  Cert ca = parse_cert(pki_.ca_cert_pem);
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_check_issued(ca.get(), cert.get()), X509_V_OK);
  EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_CLIENT, 0), 1);
  EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_SERVER, 0), 1);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.0.0.5", 0), 1);
  testing::Key key = testing::parse_key(issued->key_pem);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);

  // A Pki without the parsed-key cache works the same.
  Pki uncached = pki_;
  uncached.keys = nullptr;
  EXPECT_TRUE(issue_certificate(uncached, req, int64_t(std::time(nullptr))).ok());
}

TEST_F(CertificatesTest, BadCertificateRequestsAreInvalid) {
  int64_t now = int64_t(std::time(nullptr));
  CertificateRequest req;
  EXPECT_EQ(issue_certificate(pki_, req, now).status().code(), StatusCode::kInvalid);
  req.common_name = "bad\nname";
  EXPECT_EQ(issue_certificate(pki_, req, now).status().code(), StatusCode::kInvalid);
  req.common_name = "\xff\xfe";
  EXPECT_EQ(issue_certificate(pki_, req, now).status().code(), StatusCode::kInvalid);
  req.common_name = "ok";
  req.organizations = {""};
  EXPECT_EQ(issue_certificate(pki_, req, now).status().code(), StatusCode::kInvalid);
  req.organizations = {};
  req.sans = {"not a name"};
  EXPECT_EQ(issue_certificate(pki_, req, now).status().code(), StatusCode::kInvalid);
  req.sans = {};
  req.validity_seconds = 0;
  EXPECT_EQ(issue_certificate(pki_, req, now).status().code(), StatusCode::kInvalid);
  req.validity_seconds = 3600;
  Pki no_ca;
  EXPECT_EQ(issue_certificate(no_ca, req, now).status().code(), StatusCode::kInternal);
}

// Drives a TLS handshake between `server` and `client` over an in-memory BIO pair. Returns
// the server's SSL (for inspecting the peer) or null when either side fails.
struct Handshake {
  SSL* server = nullptr;
  SSL* client = nullptr;
  bool ok = false;
  ~Handshake() {
    SSL_free(server);
    SSL_free(client);
  }
};

void handshake(SSL_CTX* sctx, SSL_CTX* cctx, Handshake* h) {
  h->server = SSL_new(sctx);
  h->client = SSL_new(cctx);
  BIO* sbio = nullptr;
  BIO* cbio = nullptr;
  ASSERT_EQ(BIO_new_bio_pair(&sbio, 0, &cbio, 0), 1);
  SSL_set_bio(h->server, sbio, sbio);
  SSL_set_bio(h->client, cbio, cbio);
  SSL_set_accept_state(h->server);
  SSL_set_connect_state(h->client);
  SSL_set_tlsext_host_name(h->client, "localhost");
  SSL_set1_host(h->client, "localhost");
  bool server_done = false;
  bool client_done = false;
  for (int i = 0; i < 50 && !(server_done && client_done); ++i) {
    if (!client_done) {
      int rc = SSL_do_handshake(h->client);
      int err = SSL_get_error(h->client, rc);
      if (rc == 1) {
        client_done = true;
      } else if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        break;
      }
    }
    if (!server_done) {
      int rc = SSL_do_handshake(h->server);
      int err = SSL_get_error(h->server, rc);
      if (rc == 1) {
        server_done = true;
      } else if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        break;
      }
    }
  }
  // Under TLS 1.3 the server checks the client's certificate after the client has finished;
  // one read on the server settles it.
  if (server_done && client_done) {
    char byte;
    SSL_write(h->client, "x", 1);
    h->ok = SSL_read(h->server, &byte, 1) == 1;
  }
  ERR_clear_error();
}

SSL_CTX* client_ctx(const std::string& ca_pem, const std::string& cert_pem,
                    const std::string& key_pem) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  Cert ca = parse_cert(ca_pem);
  X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca.get());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (!cert_pem.empty()) {
    Cert cert = parse_cert(cert_pem);
    testing::Key key = testing::parse_key(key_pem);
    SSL_CTX_use_certificate(ctx, cert.get());
    SSL_CTX_use_PrivateKey(ctx, key.get());
  }
  return ctx;
}

TEST_F(CertificatesTest, ServerTlsAcceptsClientCertificatesFromTheCaAndNoCertificate) {
  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  ASSERT_TRUE(configure_server_tls(sctx, pki_).ok());

  {
    SSL_CTX* cctx = client_ctx(pki_.ca_cert_pem, pki_.admin_cert_pem, pki_.admin_key_pem);
    Handshake h;
    handshake(sctx, cctx, &h);
    EXPECT_TRUE(h.ok);
    auto user = user_from_certificate(SSL_get0_peer_certificate(h.server));
    ASSERT_TRUE(user.ok()) << user.status().to_string();
    EXPECT_EQ(user->name, "system:admin");
    SSL_CTX_free(cctx);
  }
  {
    SSL_CTX* cctx = client_ctx(pki_.ca_cert_pem, "", "");
    Handshake h;
    handshake(sctx, cctx, &h);
    EXPECT_TRUE(h.ok);
    EXPECT_EQ(SSL_get0_peer_certificate(h.server), nullptr);
    SSL_CTX_free(cctx);
  }
  {
    // A client certificate from another cluster's CA is refused.
    TempDir other_dir;
    Pki other;
    ASSERT_TRUE(ensure_pki(options_in(other_dir), &other).ok());
    SSL_CTX* cctx = client_ctx(pki_.ca_cert_pem, other.admin_cert_pem, other.admin_key_pem);
    Handshake h;
    handshake(sctx, cctx, &h);
    EXPECT_FALSE(h.ok);
    SSL_CTX_free(cctx);
  }
  {
    // The serving certificate (serverAuth only) is not accepted as a client certificate.
    SSL_CTX* cctx = client_ctx(pki_.ca_cert_pem, pki_.serving_cert_pem, pki_.serving_key_pem);
    Handshake h;
    handshake(sctx, cctx, &h);
    EXPECT_FALSE(h.ok);
    SSL_CTX_free(cctx);
  }
  SSL_CTX_free(sctx);
}

TEST_F(CertificatesTest, ServerTlsReportsABrokenPki) {
  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  Pki broken = pki_;
  broken.serving_key_pem = pki_.admin_key_pem;
  EXPECT_EQ(configure_server_tls(sctx, broken).code(), StatusCode::kInternal);
  EXPECT_EQ(configure_server_tls(nullptr, pki_).code(), StatusCode::kInternal);
  EXPECT_EQ(ERR_peek_error(), 0u);
  SSL_CTX_free(sctx);
}

}  // namespace
}  // namespace skiff::apiserver::pki
