#include "confgate/network/tls.h"

#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace confgate::network {
namespace {

// TLS 1.2 ciphers with forward secrecy and AEAD only; TLS 1.3 suites are OpenSSL's defaults.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string OpenSslReason() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) {
    return "unknown OpenSSL error";
  }
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

bool Readable(const std::string& path) { return std::ifstream(path).good(); }

// Loads and checks one certificate/key pair into `context`.
absl::Status LoadPair(ssl_ctx_st* context, const config::TlsFiles& files,
                      const std::string& field_path) {
  if (!Readable(files.certificate)) {
    return absl::InvalidArgumentError(absl::StrCat(field_path, ".certificate: line ", files.line,
                                                   ": cannot read ", files.certificate));
  }
  if (!Readable(files.private_key)) {
    return absl::InvalidArgumentError(absl::StrCat(field_path, ".private_key: line ", files.line,
                                                   ": cannot read ", files.private_key));
  }
  if (SSL_CTX_use_certificate_chain_file(context, files.certificate.c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(field_path, ".certificate: line ", files.line,
                                                   ": ", files.certificate, ": ", OpenSslReason()));
  }
  if (SSL_CTX_use_PrivateKey_file(context, files.private_key.c_str(), SSL_FILETYPE_PEM) != 1) {
    std::string reason = OpenSslReason();
    if (absl::StrContains(reason, "key values mismatch")) {
      reason = absl::StrCat("does not match the certificate ", files.certificate);
    }
    return absl::InvalidArgumentError(absl::StrCat(field_path, ".private_key: line ", files.line,
                                                   ": ", files.private_key, ": ", reason));
  }
  if (SSL_CTX_check_private_key(context) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(field_path, ".private_key: line ", files.line, ": ", files.private_key,
                     " does not match the certificate ", files.certificate));
  }
  X509* leaf = SSL_CTX_get0_certificate(context);
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field_path, ".certificate: line ", files.line,
                                                   ": ", files.certificate, " has expired"));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
    return absl::InvalidArgumentError(absl::StrCat(field_path, ".certificate: line ", files.line,
                                                   ": ", files.certificate, " is not valid yet"));
  }
  return absl::OkStatus();
}

std::vector<std::string> CertificateNames(X509* certificate) {
  std::vector<std::string> names;
  auto* sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
      if (name->type == GEN_DNS) {
        const unsigned char* data = ASN1_STRING_get0_data(name->d.dNSName);
        names.emplace_back(reinterpret_cast<const char*>(data),
                           ASN1_STRING_length(name->d.dNSName));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    char common_name[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, common_name,
                                  sizeof(common_name)) > 0) {
      names.emplace_back(common_name);
    }
  }
  for (std::string& name : names) {
    name = absl::AsciiStrToLower(name);
  }
  return names;
}

bool NameMatches(const std::string& pattern, const std::string& name) {
  if (pattern == name) {
    return true;
  }
  // "*.example.com" covers exactly one label.
  if (absl::StartsWith(pattern, "*.")) {
    size_t dot = name.find('.');
    return dot != std::string::npos && name.substr(dot) == pattern.substr(1);
  }
  return false;
}

int SelectHttp11(SSL*, const unsigned char** out, unsigned char* out_length,
                 const unsigned char* in, unsigned int in_length, void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, kHttp11, sizeof(kHttp11), in, in_length) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // we speak only http/1.1
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

TicketKeys& TicketKeys::Process() {
  static TicketKeys* keys = new TicketKeys();
  return *keys;
}

TicketKeys::TicketKeys() { Rotate(); }

void TicketKeys::Rotate() {
  Key next;
  RAND_bytes(next.name, sizeof(next.name));
  RAND_bytes(next.aes, sizeof(next.aes));
  RAND_bytes(next.hmac, sizeof(next.hmac));
  MutexLock lock(&mu_);
  previous_ = current_;
  has_previous_ = true;
  current_ = next;
}

std::string TicketKeys::current_name() const {
  MutexLock lock(&mu_);
  return std::string(reinterpret_cast<const char*>(current_.name), kNameBytes);
}

bool TicketKeys::Knows(const std::string& name) const {
  MutexLock lock(&mu_);
  return name == std::string(reinterpret_cast<const char*>(current_.name), kNameBytes) ||
         (has_previous_ &&
          name == std::string(reinterpret_cast<const char*>(previous_.name), kNameBytes));
}

// OpenSSL's ticket callback: seal with the current key, open with the current or previous.
struct TicketCallback {
  static int Run(SSL*, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
                 EVP_MAC_CTX* mac, int encrypt) {
    TicketKeys& keys = TicketKeys::Process();
    TicketKeys::Key key;
    int result = 1;
    {
      MutexLock lock(&keys.mu_);
      if (encrypt) {
        key = keys.current_;
        std::memcpy(key_name, key.name, sizeof(key.name));
      } else if (std::memcmp(key_name, keys.current_.name, sizeof(key.name)) == 0) {
        key = keys.current_;
      } else if (keys.has_previous_ &&
                 std::memcmp(key_name, keys.previous_.name, sizeof(key.name)) == 0) {
        key = keys.previous_;
        result = 2;  // valid, but issue a ticket under the current key
      } else {
        return 0;  // unknown (rotated out): full handshake
      }
    }
    if (encrypt && RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) {
      return -1;
    }
    char digest[] = "sha256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac, sizeof(key.hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_END};
    if (EVP_MAC_CTX_set_params(mac, params) != 1) {
      return -1;
    }
    int ok = encrypt ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes, iv)
                     : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes, iv);
    return ok == 1 ? result : -1;
  }
};

absl::StatusOr<std::shared_ptr<ServerTls>> ServerTls::Create(
    const config::ListenerTlsConfig& config, const std::string& field_path) {
  std::shared_ptr<ServerTls> tls(new ServerTls());
  for (size_t i = 0; i < config.certificates.size(); ++i) {
    SSL_CTX* context = SSL_CTX_new(TLS_server_method());
    tls->certificates_.push_back(Certificate{context, {}});
    SSL_CTX_set_min_proto_version(context,
                                  config.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(context, kTls12Ciphers);
    SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    // Session resumption with tickets under the process's rotating keys.
    SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(context, &TicketCallback::Run);
    SSL_CTX_set_alpn_select_cb(context, &SelectHttp11, nullptr);
    std::string path = config.certificates.size() == 1
                           ? field_path
                           : absl::StrCat(field_path, ".certificates[", i, "]");
    absl::Status loaded = LoadPair(context, config.certificates[i], path);
    if (!loaded.ok()) {
      return loaded;
    }
    tls->certificates_.back().names = CertificateNames(SSL_CTX_get0_certificate(context));
  }
  if (tls->certificates_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field_path, ": no certificate"));
  }
  for (const Certificate& certificate : tls->certificates_) {
    SSL_CTX_set_tlsext_servername_callback(certificate.context, &ServerTls::OnServerName);
    SSL_CTX_set_tlsext_servername_arg(certificate.context, tls.get());
  }
  return tls;
}

ServerTls::~ServerTls() {
  for (const Certificate& certificate : certificates_) {
    SSL_CTX_free(certificate.context);
  }
}

ssl_st* ServerTls::NewSession() const { return SSL_new(certificates_[0].context); }

const ServerTls::Certificate* ServerTls::Select(const std::string& server_name) const {
  for (const Certificate& certificate : certificates_) {
    for (const std::string& name : certificate.names) {
      if (NameMatches(name, server_name)) {
        return &certificate;
      }
    }
  }
  return &certificates_[0];
}

int ServerTls::OnServerName(ssl_st* ssl, int*, void* arg) {
  auto* self = static_cast<ServerTls*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name != nullptr) {
    const Certificate* chosen = self->Select(absl::AsciiStrToLower(name));
    SSL_set_SSL_CTX(ssl, chosen->context);
  }
  return SSL_TLSEXT_ERR_OK;
}

absl::StatusOr<std::shared_ptr<ClientTls>> ClientTls::Create(
    const config::UpstreamTlsConfig& config, const std::string& field_path) {
  std::shared_ptr<ClientTls> tls(new ClientTls());
  tls->context_ = SSL_CTX_new(TLS_client_method());
  tls->server_name_ = config.server_name;
  tls->verify_ = !config.insecure_skip_verify;
  // An upstream that asks to renegotiate (TLS 1.2) is refused, as our listeners refuse clients.
  SSL_CTX_set_options(tls->context_, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_min_proto_version(tls->context_, TLS1_2_VERSION);
  SSL_CTX_set_cipher_list(tls->context_, kTls12Ciphers);
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(tls->context_, kHttp11, sizeof(kHttp11));
  if (tls->verify_) {
    if (!Readable(config.ca_file)) {
      return absl::InvalidArgumentError(absl::StrCat(field_path, ".ca_file: line ", config.line,
                                                     ": cannot read ", config.ca_file));
    }
    if (SSL_CTX_load_verify_locations(tls->context_, config.ca_file.c_str(), nullptr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(field_path, ".ca_file: line ", config.line,
                                                     ": ", config.ca_file, ": ", OpenSslReason()));
    }
    SSL_CTX_set_verify(tls->context_, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(tls->context_, SSL_VERIFY_NONE, nullptr);
  }
  if (config.client_certificate.has_value()) {
    absl::Status loaded = LoadPair(tls->context_, *config.client_certificate, field_path);
    if (!loaded.ok()) {
      return loaded;
    }
  }
  return tls;
}

ClientTls::~ClientTls() { SSL_CTX_free(context_); }

ssl_st* ClientTls::NewSession(const std::string& host) const {
  SSL* ssl = SSL_new(context_);
  const std::string& name = server_name_.empty() ? host : server_name_;
  in6_addr ip6;
  in_addr ip4;
  bool literal =
      inet_pton(AF_INET, name.c_str(), &ip4) == 1 || inet_pton(AF_INET6, name.c_str(), &ip6) == 1;
  if (!literal) {
    SSL_set_tlsext_host_name(ssl, name.c_str());  // SNI is for names only
  }
  if (verify_) {
    if (literal) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    } else {
      SSL_set1_host(ssl, name.c_str());
    }
  }
  return ssl;
}

std::vector<config::ConfigError> CheckTlsFiles(const config::Config& config) {
  std::vector<config::ConfigError> errors;
  auto add = [&](const absl::Status& status) {
    if (!status.ok()) {
      errors.push_back(config::ConfigError{"", 0, std::string(status.message())});
    }
  };
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    if (config.listeners[i].tls.has_value()) {
      add(ServerTls::Create(*config.listeners[i].tls, absl::StrCat("listeners[", i, "].tls"))
              .status());
    }
  }
  for (const config::UpstreamConfig& upstream : config.upstreams) {
    if (upstream.tls.has_value()) {
      add(ClientTls::Create(*upstream.tls, absl::StrCat("upstreams.", upstream.name, ".tls"))
              .status());
    }
  }
  return errors;
}

}  // namespace confgate::network
