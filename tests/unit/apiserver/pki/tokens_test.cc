#include <gtest/gtest.h>
#include <openssl/rsa.h>

#include <ctime>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "apiserver/pki/crypto.h"
#include "apiserver/pki/pki.h"
#include "common/base64.h"
#include "test_support.h"

namespace skiff::apiserver::pki {
namespace {

using json = nlohmann::json;
using testing::options_in;
using testing::TempDir;

constexpr int64_t kNow = 1'750'000'000;

class TokensTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(ensure_pki(options_in(dir_), &pki_).ok()); }

  json claims(int64_t expiration = 3600) {
    return service_account_claims("default", "builder", "5d2c0b6e-uid", {}, expiration, kNow);
  }

  std::string token(const json& c) {
    auto t = sign_token(c, pki_);
    EXPECT_TRUE(t.ok()) << t.status().to_string();
    return t.ok() ? *t : std::string();
  }

  TempDir dir_;
  Pki pki_;
};

std::vector<std::string> split(const std::string& jwt) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = jwt.find('.', start);
    parts.push_back(jwt.substr(start, dot == std::string::npos ? dot : dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

json decode(const std::string& segment) {
  Result<std::string> text = base64url_decode_strict(segment);
  return text.ok() ? json::parse(*text, nullptr, false) : json();
}

TEST(ServiceAccountClaimsTest, FollowKubernetesLayout) {
  json c = service_account_claims("kube-system", "coredns", "uid-1", {"api", "vault"}, 3607, kNow,
                                  BoundPod{"coredns-abc", "pod-uid", "node-1", "node-uid"});
  EXPECT_EQ(c["iss"], kServiceAccountIssuer);
  EXPECT_EQ(c["sub"], "system:serviceaccount:kube-system:coredns");
  EXPECT_EQ(c["aud"], json::array({"api", "vault"}));
  EXPECT_EQ(c["exp"], kNow + 3607);
  EXPECT_EQ(c["iat"], kNow);
  EXPECT_EQ(c["nbf"], kNow);
  ASSERT_TRUE(c["jti"].is_string());
  EXPECT_EQ(c["jti"].get<std::string>().size(), 36u);
  const json& k = c["kubernetes.io"];
  EXPECT_EQ(k["namespace"], "kube-system");
  EXPECT_EQ(k["serviceaccount"], json({{"name", "coredns"}, {"uid", "uid-1"}}));
  EXPECT_EQ(k["pod"], json({{"name", "coredns-abc"}, {"uid", "pod-uid"}}));
  EXPECT_EQ(k["node"], json({{"name", "node-1"}, {"uid", "node-uid"}}));

  json unbound = service_account_claims("ns", "sa", "u", {}, 600, kNow);
  EXPECT_EQ(unbound["aud"], json::array({kServiceAccountIssuer}));
  EXPECT_FALSE(unbound["kubernetes.io"].contains("pod"));
  EXPECT_FALSE(unbound["kubernetes.io"].contains("node"));
  EXPECT_NE(unbound["jti"], service_account_claims("ns", "sa", "u", {}, 600, kNow)["jti"]);
}

TEST_F(TokensTest, SignedTokenVerifiesAndReturnsItsClaims) {
  json c = claims();
  std::string jwt = token(c);
  auto verified = verify_token(jwt, pki_, kNow + 10);
  ASSERT_TRUE(verified.ok()) << verified.status().to_string();
  EXPECT_EQ(*verified, c);

  std::vector<std::string> parts = split(jwt);
  ASSERT_EQ(parts.size(), 3u);
  json header = decode(parts[0]);
  EXPECT_EQ(header["alg"], "ES256");
  // kid is Kubernetes' key id, recomputed here from sa.pub.
  testing::Key key = testing::parse_key(pki_.sa_key_pem);
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key.get(), &der);
  std::string digest = sha256(std::string_view(reinterpret_cast<char*>(der), size_t(len)));
  OPENSSL_free(der);
  EXPECT_EQ(header["kid"], base64url_encode(digest));
  EXPECT_EQ(base64url_decode_strict(parts[2])->size(), 64u);  // r || s

  Pki uncached = pki_;
  uncached.keys = nullptr;
  EXPECT_TRUE(verify_token(jwt, uncached, kNow).ok());
}

TEST_F(TokensTest, VerifyingNeedsOnlyThePublicKey) {
  std::string jwt = token(claims());
  Pki public_only;
  public_only.sa_pub_pem = pki_.sa_pub_pem;
  EXPECT_TRUE(verify_token(jwt, public_only, kNow).ok());
  EXPECT_EQ(sign_token(claims(), public_only).status().code(), StatusCode::kInternal);
}

TEST_F(TokensTest, TamperedPayloadIsRejected) {
  std::vector<std::string> parts = split(token(claims()));
  json forged = claims();
  forged["sub"] = "system:serviceaccount:kube-system:admin";
  forged["kubernetes.io"]["namespace"] = "kube-system";
  forged["kubernetes.io"]["serviceaccount"]["name"] = "admin";
  std::string jwt = parts[0] + "." + base64url_encode(forged.dump()) + "." + parts[2];
  EXPECT_EQ(verify_token(jwt, pki_, kNow).status().code(), StatusCode::kUnauthorized);
}

TEST_F(TokensTest, TamperedSignatureIsRejected) {
  std::string jwt = token(claims());
  std::string sig = *base64url_decode_strict(split(jwt)[2]);
  for (size_t i : {size_t(0), size_t(31), size_t(32), size_t(63)}) {
    std::string bad = sig;
    bad[i] = char(bad[i] ^ 1);
    std::vector<std::string> parts = split(jwt);
    std::string forged = parts[0] + "." + parts[1] + "." + base64url_encode(bad);
    EXPECT_EQ(verify_token(forged, pki_, kNow).status().code(), StatusCode::kUnauthorized) << i;
  }
  std::vector<std::string> parts = split(jwt);
  EXPECT_FALSE(verify_token(parts[0] + "." + parts[1] + ".", pki_, kNow).ok());
  EXPECT_FALSE(
      verify_token(parts[0] + "." + parts[1] + "." + base64url_encode(sig + "x"), pki_, kNow).ok());
}

TEST_F(TokensTest, TokenFromAnotherClusterIsRejected) {
  TempDir other_dir;
  Pki other;
  ASSERT_TRUE(ensure_pki(options_in(other_dir), &other).ok());
  auto jwt = sign_token(claims(), other);
  ASSERT_TRUE(jwt.ok());
  EXPECT_EQ(verify_token(*jwt, pki_, kNow).status().code(), StatusCode::kUnauthorized);
}

TEST_F(TokensTest, ExpiryAndNotBeforeHonourTheLeeway) {
  std::string jwt = token(claims(600));
  EXPECT_TRUE(verify_token(jwt, pki_, kNow + 600).ok());
  EXPECT_TRUE(verify_token(jwt, pki_, kNow + 600 + kTokenLeewaySeconds).ok());
  auto expired = verify_token(jwt, pki_, kNow + 600 + kTokenLeewaySeconds + 1);
  EXPECT_EQ(expired.status().code(), StatusCode::kUnauthorized);
  EXPECT_NE(expired.status().message().find("expired"), std::string::npos);

  EXPECT_TRUE(verify_token(jwt, pki_, kNow - kTokenLeewaySeconds).ok());
  EXPECT_EQ(verify_token(jwt, pki_, kNow - kTokenLeewaySeconds - 1).status().code(),
            StatusCode::kUnauthorized);
}

TEST_F(TokensTest, ClaimsMustBeThoseOfAServiceAccountToken) {
  auto rejected = [&](const json& c) {
    return verify_token(token(c), pki_, kNow).status().code() == StatusCode::kUnauthorized;
  };
  json c = claims();
  c["iss"] = "https://evil.example";
  EXPECT_TRUE(rejected(c));
  c = claims();
  c.erase("iss");
  EXPECT_TRUE(rejected(c));
  c = claims();
  c.erase("exp");
  EXPECT_TRUE(rejected(c));
  c = claims();
  c["exp"] = "tomorrow";
  EXPECT_TRUE(rejected(c));
  c = claims();
  c["exp"] = 1e300;
  EXPECT_TRUE(rejected(c));
  c = claims();
  c["exp"] = std::numeric_limits<uint64_t>::max();
  EXPECT_TRUE(rejected(c));
  c = claims();
  c["exp"] = std::numeric_limits<int64_t>::min();
  EXPECT_TRUE(rejected(c));
  c = claims();
  c["exp"] = double(kNow + 100) + 0.5;  // fractional NumericDate: accepted
  EXPECT_FALSE(rejected(c));
  c = claims();
  c["iat"] = kNow + 3600;
  EXPECT_TRUE(rejected(c));
  c = claims();
  c["nbf"] = json::array();
  EXPECT_TRUE(rejected(c));
  c = claims();
  c["sub"] = "system:serviceaccount:other:builder";
  EXPECT_TRUE(rejected(c));
  c = claims();
  c.erase("kubernetes.io");
  EXPECT_TRUE(rejected(c));
  c = claims();
  c["kubernetes.io"]["serviceaccount"] = "builder";
  EXPECT_TRUE(rejected(c));
  c = claims();
  c["kubernetes.io"]["namespace"] = "";
  EXPECT_TRUE(rejected(c));
}

TEST_F(TokensTest, AudiencesAreCheckedWhenAsked) {
  std::string jwt =
      *sign_token(service_account_claims("ns", "sa", "u", {"vault", "api"}, 600, kNow), pki_);
  EXPECT_TRUE(verify_token(jwt, pki_, kNow).ok());
  EXPECT_TRUE(verify_token(jwt, pki_, kNow, {"api"}).ok());
  EXPECT_TRUE(verify_token(jwt, pki_, kNow, {"other", "vault"}).ok());
  EXPECT_EQ(verify_token(jwt, pki_, kNow, {"other"}).status().code(), StatusCode::kUnauthorized);

  json single = service_account_claims("ns", "sa", "u", {}, 600, kNow);
  single["aud"] = "api";  // a single string is a valid aud too
  EXPECT_TRUE(verify_token(*sign_token(single, pki_), pki_, kNow, {"api"}).ok());
  single.erase("aud");
  EXPECT_FALSE(verify_token(*sign_token(single, pki_), pki_, kNow, {"api"}).ok());
}

TEST_F(TokensTest, OnlyTheKeysOwnAlgorithmIsAccepted) {
  std::vector<std::string> parts = split(token(claims()));
  for (const char* alg : {"none", "None", "HS256", "RS256", "ES384", ""}) {
    json header = {{"alg", alg}};
    std::string h = base64url_encode(header.dump());
    EXPECT_EQ(verify_token(h + "." + parts[1] + ".", pki_, kNow).status().code(),
              StatusCode::kUnauthorized)
        << alg;
    EXPECT_EQ(verify_token(h + "." + parts[1] + "." + parts[2], pki_, kNow).status().code(),
              StatusCode::kUnauthorized)
        << alg;
  }
  json header = decode(parts[0]);
  header["kid"] = "someone-else";
  EXPECT_FALSE(
      verify_token(base64url_encode(header.dump()) + "." + parts[1] + "." + parts[2], pki_, kNow)
          .ok());
  header = decode(parts[0]);
  header["crit"] = json::array({"exp"});
  EXPECT_FALSE(
      verify_token(base64url_encode(header.dump()) + "." + parts[1] + "." + parts[2], pki_, kNow)
          .ok());
}

TEST_F(TokensTest, MalformedTokensAreRejectedWithoutCrashing) {
  std::string deep = std::string(1000, '[') + std::string(1000, ']');
  std::vector<std::string> parts = split(token(claims()));
  const std::string inputs[] = {
      "",
      ".",
      "..",
      "...",
      "a.b.c",
      "a.b.c.d",
      parts[0],
      parts[0] + "." + parts[1],
      parts[0] + "." + parts[1] + "." + parts[2] + ".",
      parts[0] + "=." + parts[1] + "." + parts[2],
      parts[0] + "." + parts[1] + "=." + parts[2],
      parts[0] + "." + parts[1] + "." + parts[2] + "=",
      "!!!." + parts[1] + "." + parts[2],
      base64url_encode("[]") + "." + parts[1] + "." + parts[2],
      base64url_encode("{\"alg\":") + "." + parts[1] + "." + parts[2],
      base64url_encode(deep) + "." + parts[1] + "." + parts[2],
      parts[0] + "." + base64url_encode(deep) + "." + parts[2],
      std::string(1 << 20, 'a') + "." + parts[1] + "." + parts[2],
      std::string("\0.\0.\0", 5),
  };
  for (const std::string& in : inputs) {
    auto r = verify_token(in, pki_, kNow);
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthorized) << in.substr(0, 80);
  }
}

TEST_F(TokensTest, DeeplyNestedClaimsAreRejectedEvenWhenSigned) {
  json c = claims();
  json nested = json::object();
  for (int i = 0; i < 200; ++i) nested = json{{"x", std::move(nested)}};
  c["extra"] = std::move(nested);
  auto r = verify_token(token(c), pki_, kNow);
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthorized);
}

TEST_F(TokensTest, RandomMutationsNeverVerify) {
  std::string jwt = token(claims());
  std::mt19937 rng(12345);
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
  for (int i = 0; i < 2000; ++i) {
    std::string m = jwt;
    int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % m.size();
      switch (rng() % 3) {
        case 0:
          m[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          m.erase(pos, 1 + rng() % 8);
          break;
        default:
          m.insert(pos, 1, alphabet[rng() % alphabet.size()]);
      }
      if (m.empty()) m = "x";
    }
    if (m == jwt) continue;
    EXPECT_FALSE(verify_token(m, pki_, kNow).ok()) << m;
  }
}

TEST_F(TokensTest, OnePkiSignsAndVerifiesFromManyThreads) {
  std::vector<std::thread> threads;
  std::vector<int> verified(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        auto jwt = sign_token(claims(), pki_);
        if (jwt.ok() && verify_token(*jwt, pki_, kNow).ok()) ++verified[size_t(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(verified, std::vector<int>(4, 25));
}

TEST_F(TokensTest, RsaServiceAccountKeysSignRs256) {
  EVP_PKEY* rsa = EVP_RSA_gen(2048);
  ASSERT_NE(rsa, nullptr);
  auto pem = private_key_to_pem(rsa);
  EVP_PKEY_free(rsa);
  ASSERT_TRUE(pem.ok());
  Pki with_rsa;
  with_rsa.sa_key_pem = *pem;
  std::string jwt = *sign_token(claims(), with_rsa);
  EXPECT_EQ(decode(split(jwt)[0])["alg"], "RS256");
  EXPECT_TRUE(verify_token(jwt, with_rsa, kNow).ok());
  EXPECT_FALSE(verify_token(jwt, pki_, kNow).ok());
  EXPECT_FALSE(verify_token(token(claims()), with_rsa, kNow).ok());
}

TEST_F(TokensTest, SigningRejectsWhatIsNotAClaimsObject) {
  EXPECT_EQ(sign_token(json::array(), pki_).status().code(), StatusCode::kInvalid);
  EXPECT_EQ(sign_token(json("x"), pki_).status().code(), StatusCode::kInvalid);
  json bad_utf8 = claims();
  bad_utf8["sub"] = std::string("\xff\xfe");
  EXPECT_EQ(sign_token(bad_utf8, pki_).status().code(), StatusCode::kInvalid);
  EXPECT_EQ(sign_token(claims(), Pki{}).status().code(), StatusCode::kInternal);
}

TEST_F(TokensTest, ServiceAccountUserInfo) {
  json c = service_account_claims("apps", "deployer", "sa-uid", {}, 600, kNow,
                                  BoundPod{"web-0", "pod-uid", "node-a", "node-uid"});
  auto user = user_from_service_account_claims(*verify_token(token(c), pki_, kNow));
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->name, "system:serviceaccount:apps:deployer");
  EXPECT_EQ(user->groups,
            (std::vector<std::string>{"system:serviceaccounts", "system:serviceaccounts:apps"}));
  EXPECT_EQ(user->uid, "sa-uid");
  using Values = std::vector<std::string>;
  EXPECT_EQ(user->extra["authentication.kubernetes.io/pod-name"], Values{"web-0"});
  EXPECT_EQ(user->extra["authentication.kubernetes.io/pod-uid"], Values{"pod-uid"});
  EXPECT_EQ(user->extra["authentication.kubernetes.io/node-name"], Values{"node-a"});
  EXPECT_EQ(user->extra["authentication.kubernetes.io/node-uid"], Values{"node-uid"});
  EXPECT_EQ(user->extra["authentication.kubernetes.io/credential-id"],
            Values{"JTI=" + c["jti"].get<std::string>()});

  EXPECT_FALSE(user_from_service_account_claims(json::object()).ok());
  EXPECT_FALSE(user_from_service_account_claims(json::array()).ok());
}

TEST_F(TokensTest, JoinTokenParsesEveryK3sForm) {
  std::string hash = pki_.join_token.substr(3, 64);
  auto secure = parse_join_token(pki_.join_token);
  ASSERT_TRUE(secure.ok());
  EXPECT_EQ(secure->ca_hash, hash);
  EXPECT_EQ(secure->username, "server");
  EXPECT_EQ(secure->secret, pki_.join_token.substr(pki_.join_token.rfind(':') + 1));

  auto upper = parse_join_token("K10" + std::string(64, 'A') + "::node:s3cret");
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(upper->ca_hash, std::string(64, 'a'));
  EXPECT_EQ(upper->username, "node");

  auto no_hash = parse_join_token("K10::server:abc");
  ASSERT_TRUE(no_hash.ok());
  EXPECT_EQ(no_hash->ca_hash, "");
  EXPECT_EQ(no_hash->secret, "abc");

  auto colon_in_secret = parse_join_token("K10::server:a:b");
  ASSERT_TRUE(colon_in_secret.ok());
  EXPECT_EQ(colon_in_secret->secret, "a:b");

  auto short_form = parse_join_token("server:abc");  // not K10: all of it is the secret
  ASSERT_TRUE(short_form.ok());
  EXPECT_EQ(short_form->username, "");
  EXPECT_EQ(short_form->secret, "server:abc");

  for (const std::string& bad :
       {std::string(""), std::string("K10"), std::string("K10::"), std::string("K10::server"),
        std::string("K10::server:"), "K10" + std::string(63, 'a') + "::server:x",
        "K10" + std::string(64, 'g') + "::server:x", std::string("a b"), std::string("a\tb"),
        std::string("secret\n"), std::string(5000, 'a'), std::string("x\0y", 3)}) {
    EXPECT_EQ(parse_join_token(bad).status().code(), StatusCode::kBadRequest) << bad;
  }
}

TEST_F(TokensTest, JoinTokenCheckAcceptsTheSecretInAnyFormForThisCaOnly) {
  std::string secret = pki_.join_token.substr(pki_.join_token.rfind(':') + 1);
  std::string hash = pki_.join_token.substr(3, 64);
  EXPECT_TRUE(check_join_token(pki_.join_token, pki_));
  EXPECT_TRUE(check_join_token(secret, pki_));
  EXPECT_TRUE(check_join_token("K10::server:" + secret, pki_));
  EXPECT_TRUE(check_join_token("K10::" + std::string(":") + secret, pki_));

  EXPECT_FALSE(check_join_token("server:" + secret, pki_));  // K3s reads it as the secret
  EXPECT_FALSE(check_join_token("K10" + hash + "::node:" + secret, pki_));
  EXPECT_FALSE(check_join_token("K10" + hash + "::server:" + secret + "x", pki_));
  EXPECT_FALSE(check_join_token("K10" + hash + "::server:" + secret.substr(1), pki_));
  EXPECT_FALSE(check_join_token("K10" + std::string(64, '0') + "::server:" + secret, pki_));
  EXPECT_FALSE(check_join_token("", pki_));
  EXPECT_FALSE(check_join_token(secret, Pki{}));  // a server without a token admits nobody
}

TEST_F(TokensTest, CaHashMatchesOnlyTheExactCaBytes) {
  std::string hash = pki_.join_token.substr(3, 64);
  EXPECT_TRUE(ca_matches_hash(pki_.ca_cert_pem, hash));
  std::string upper = hash;
  for (char& ch : upper) ch = char(std::toupper(uint8_t(ch)));
  EXPECT_TRUE(ca_matches_hash(pki_.ca_cert_pem, upper));
  EXPECT_FALSE(ca_matches_hash(pki_.ca_cert_pem + "\n", hash));
  EXPECT_FALSE(ca_matches_hash(pki_.ca_cert_pem, hash.substr(2)));
  EXPECT_FALSE(ca_matches_hash(pki_.ca_cert_pem, std::string(64, 'z')));
  EXPECT_FALSE(ca_matches_hash(pki_.ca_cert_pem, ""));
  EXPECT_FALSE(ca_matches_hash("", testing::sha256_hex("")));
}

}  // namespace
}  // namespace skiff::apiserver::pki
