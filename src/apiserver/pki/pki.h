// The server's credentials, as K3s keeps them: a cluster CA, the API server's serving
// certificate, the admin client certificate and kubeconfig, the service-account signing key,
// and the node join token. Also the two ways a client proves who it is: a client certificate
// (CN = user, O = groups) and a service-account token (a JWT signed with the SA key).
//
// Files, under <data_dir> (directories created 0700 and tls/ kept 0700; private keys and the
// token 0600, certificates and sa.pub 0644; every file is written to a temporary name created
// owner-only, given its final mode, fsynced and renamed into place, so a crash leaves old or
// new content and no private file is ever readable by others, even briefly):
//   tls/ca.crt, tls/ca.key                      cluster CA (ECDSA P-256, self-signed, 10 years)
//   tls/serving-kube-apiserver.{crt,key}        serving certificate (1 year, serverAuth)
//   tls/client-admin.{crt,key}                  CN=system:admin, O=system:masters (1 year)
//   tls/sa.key, tls/sa.pub                      service-account token signing key pair
//   token                                       K10<sha256 hex of ca.crt>::server:<secret>
//
// Thread-safety: every function may be called from any thread concurrently, except that
// ensure_pki must not run concurrently with itself on the same data_dir (one server owns a
// data_dir). A Pki is immutable after ensure_pki returns and may be shared between threads.
//
// No OpenSSL header is needed to use this one; the two functions that take OpenSSL objects
// take them through OpenSSL's own forward-declared struct tags (X509 is x509_st, SSL_CTX is
// ssl_ctx_st).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

struct x509_st;     // OpenSSL X509
struct ssl_ctx_st;  // OpenSSL SSL_CTX

namespace skiff::apiserver::pki {

// The issuer of service-account tokens, and their default audience (as kube-apiserver's
// --service-account-issuer defaults to for in-cluster API access).
inline constexpr char kServiceAccountIssuer[] = "https://kubernetes.default.svc.cluster.local";
// Clock skew tolerated on exp, nbf and iat (go-jose's DefaultLeeway, which Kubernetes uses).
inline constexpr int64_t kTokenLeewaySeconds = 60;

struct PkiOptions {
  // Required. Created (0700, with missing parents 0700) when missing.
  std::string data_dir;
  // DNS name (or IP) of this machine put in the serving certificate; "" means gethostname().
  std::string host_name;
  // Service CIDR(s), comma-separated for dual stack. The first IP of each ("10.43.0.1" for
  // "10.43.0.0/16") is the `kubernetes` Service's ClusterIP and goes into the serving
  // certificate. "" adds none.
  std::string service_cidr = "10.43.0.0/16";
  // The address the API server binds. A specific IP is added to the serving certificate;
  // "", "0.0.0.0" and "::" add nothing. Anything else is Invalid.
  std::string bind_address;
  // Extra subject alternative names (--tls-san): each an IP (v4, v6, or [v6]) or a DNS name
  // (wildcard "*.example.com" allowed), told apart automatically.
  std::vector<std::string> tls_sans;
  // The join secret (--token): a bare secret, "server:<secret>" or a full K10 token for this
  // CA. "" keeps the secret of an existing token file, or generates one on first start. A
  // non-empty value replaces the secret in an existing token file.
  std::string token;
  // Seconds since the Unix epoch used for validity periods and renewal; 0 means the system
  // clock. Tests inject it.
  int64_t now = 0;
};

// Parsed keys cached by ensure_pki so that signing and verifying do not re-parse PEM on every
// request. Opaque; defined in the implementation.
struct PkiKeys;

struct Pki {
  std::string data_dir;
  std::string tls_dir;  // <data_dir>/tls

  std::string ca_cert_path;
  std::string ca_key_path;
  std::string ca_cert_pem;  // exactly the bytes of ca.crt (the join token hashes them)
  std::string ca_key_pem;

  std::string serving_cert_path;
  std::string serving_key_path;
  std::string serving_cert_pem;
  std::string serving_key_pem;
  // The subject alternative names of the serving certificate, DNS names as written and IPs
  // in canonical text form, in certificate order.
  std::vector<std::string> serving_sans;

  std::string admin_cert_path;
  std::string admin_key_path;
  std::string admin_cert_pem;
  std::string admin_key_pem;

  std::string sa_key_path;
  std::string sa_pub_path;
  std::string sa_key_pem;  // private key, PKCS#8 PEM
  std::string sa_pub_pem;  // SubjectPublicKeyInfo PEM

  std::string token_path;
  std::string join_token;  // K10<hash>::server:<secret>

  // Set by ensure_pki. When null (a Pki assembled by hand), functions parse the PEM members
  // on each call instead; when set, it must have been built from these same PEM members.
  std::shared_ptr<const PkiKeys> keys;
};

// Creates on first start, and reuses afterwards, every credential listed at the top.
// Re-issues (with the same CA, a fresh key) a leaf certificate that is missing, unreadable,
// not matching its key, not signed by the CA, within 90 days of expiry, or (serving) whose
// SAN set differs from the wanted one, or (admin) whose subject differs. Never replaces the
// CA or the SA key once both halves exist: doing so would invalidate every issued credential.
// Returns OK and fills *out; Invalid for bad options (service_cidr, bind_address, tls_sans,
// token); Internal when the disk holds an inconsistent CA (a certificate without its key, or
// a key that does not match), an unparsable CA or SA key or token file, or on I/O and
// OpenSSL failures, with the path in the message.
Status ensure_pki(const PkiOptions& opts, Pki* out);

// Writes a kubeconfig for cluster "skiff", user "admin" and context "skiff" (the current
// context) that reaches server_url (must start with "https://") trusting pki.ca_cert_pem and
// authenticating with the admin certificate, all three embedded as base64. Missing parent
// directories are created (0700); the file is written atomically with mode 0600.
// Returns Invalid for a bad server_url or a Pki without the needed PEMs; Internal on I/O.
Status write_kubeconfig(const std::string& path, const std::string& server_url, const Pki& pki);

// Makes a TLS server context serve the API: the serving certificate and key, client
// certificates requested and, when presented, verified against the CA with purpose
// sslclient (clientAuth); a client without a certificate is still accepted (it may bring a
// bearer token). Sets TLS 1.2 as the minimum. Returns Internal on OpenSSL failure.
Status configure_server_tls(ssl_ctx_st* ctx, const Pki& pki);

// A certificate to issue from the cluster CA, e.g. a node's kubelet client certificate
// (CN "system:node:<name>", O "system:nodes") or a kubelet serving certificate.
struct CertificateRequest {
  std::string common_name;                 // required
  std::vector<std::string> organizations;  // become groups for a client certificate
  std::vector<std::string> sans;           // IPs or DNS names, told apart as in tls_sans
  bool client_auth = true;                 // extendedKeyUsage clientAuth
  bool server_auth = false;                // extendedKeyUsage serverAuth
  int64_t validity_seconds = 365LL * 24 * 3600;
};

struct IssuedCertificate {
  std::string cert_pem;
  std::string key_pem;  // a fresh ECDSA P-256 key, PKCS#8 PEM
};

// Issues a certificate signed by pki's CA, valid from now - 5 minutes (tolerating clock skew
// between machines) for validity_seconds. Returns Invalid for a bad request, Internal on
// OpenSSL failure or when pki has no usable CA key.
Result<IssuedCertificate> issue_certificate(const Pki& pki, const CertificateRequest& req,
                                            int64_t now);

// Who a request comes from, as Kubernetes' user.Info.
struct UserInfo {
  std::string name;
  std::vector<std::string> groups;
  std::string uid;
  std::map<std::string, std::vector<std::string>> extra;
};

// The identity in a client certificate, as Kubernetes' x509 authenticator derives it: the
// subject's CN is the name, each O (in order) a group, no uid. The certificate must already
// have been verified by the TLS layer (configure_server_tls does that); this only reads it.
// `cert` is what SSL_get0_peer_certificate returns (not consumed; may be null).
// Returns Unauthorized when cert is null or has no CN, or a CN/O that is not clean UTF-8.
Result<UserInfo> user_from_certificate(const x509_st* cert);
// The same for a certificate given as DER bytes or PEM text (told apart by "-----BEGIN").
// Returns BadRequest for bytes that are not a certificate.
Result<UserInfo> user_from_certificate(std::string_view der_or_pem);

// Signs claims (a JSON object) as a compact JWS with the SA key: ES256 for an ECDSA P-256
// key (what ensure_pki generates), RS256 for an RSA key. The header is {"alg", "kid"} where
// kid is Kubernetes' key id: base64url(SHA-256(DER SubjectPublicKeyInfo)).
// Returns Invalid when claims is not an object (or holds invalid UTF-8), Internal when the
// SA key is missing or unusable.
Result<std::string> sign_token(const nlohmann::json& claims, const Pki& pki);

// Verifies a service-account token signed by pki's SA key and returns its claims: the
// signature; alg equal to the key's algorithm (so "none" and alg confusion are rejected); kid,
// when present, equal to the key's; no "crit" header; iss == kServiceAccountIssuer; exp
// present and now <= exp + leeway; nbf and iat, when present, <= now + leeway; sub equal to
// "system:serviceaccount:<ns>:<name>" from "kubernetes.io"; when `audiences` is non-empty,
// at least one of them in aud. Whether the service account (and bound pod) still exist
// with the claimed UIDs is the caller's check. Any input is safe (size and nesting bounded).
// Returns Unauthorized (with a reason a client may see) for any token that fails.
Result<nlohmann::json> verify_token(std::string_view jwt, const Pki& pki, int64_t now,
                                    const std::vector<std::string>& audiences = {});

// The object a service-account token is bound to, besides the service account itself.
struct BoundPod {
  std::string name;
  std::string uid;
  std::string node_name;  // optional: adds "kubernetes.io".node when set
  std::string node_uid;
};

// Kubernetes' claims for a service-account token issued at `now`:
//   iss, sub "system:serviceaccount:<ns>:<name>", aud (audiences, or [issuer] when empty),
//   exp = now + expiration_seconds, iat = nbf = now, jti (a random UUID),
//   "kubernetes.io": {namespace, serviceaccount: {name, uid}, pod?: {name, uid},
//                     node?: {name, uid}}.
nlohmann::json service_account_claims(const std::string& ns, const std::string& sa_name,
                                      const std::string& sa_uid,
                                      const std::vector<std::string>& audiences,
                                      int64_t expiration_seconds, int64_t now,
                                      const std::optional<BoundPod>& pod = std::nullopt);

// The identity of verified service-account claims, as Kubernetes' SA authenticator gives it:
// name = sub, groups system:serviceaccounts and system:serviceaccounts:<ns>, uid = the
// service account's uid, extra authentication.kubernetes.io/{pod-name, pod-uid, node-name,
// node-uid, credential-id}. (system:authenticated is added by the caller, for every
// authenticator alike.) Returns Unauthorized when the claims lack the kubernetes.io layout.
Result<UserInfo> user_from_service_account_claims(const nlohmann::json& claims);

// A K3s join token. Accepted forms (as K3s parses them):
//   K10<64 hex>::<user>:<secret>   secure: the agent can check the server's CA
//   K10::<user>:<secret>           no CA hash
//   <secret>                       short: user "", secret is the whole string
struct JoinToken {
  std::string ca_hash;   // lowercase hex, "" when the token carries none
  std::string username;  // "server" in tokens written by ensure_pki
  std::string secret;
};

// Returns BadRequest for an empty token, a K10 token with a CA hash that is not 64 hex
// digits, missing credentials or an empty secret, or any control character or whitespace.
Result<JoinToken> parse_join_token(std::string_view token);

// Whether a joining node's token grants access: it parses, its secret equals the server's
// (compared in constant time), its user is "server" or "" (short form), and its CA hash,
// when present, is that of pki.ca_cert_pem.
bool check_join_token(std::string_view presented, const Pki& pki);

// Whether a CA bundle fetched from a server (/cacerts) is the one a token names: the
// SHA-256 of its exact bytes, hex (either case), equals `hex`. A joining agent calls this
// before trusting the bundle.
bool ca_matches_hash(const std::string& ca_pem, const std::string& hex);

}  // namespace skiff::apiserver::pki
